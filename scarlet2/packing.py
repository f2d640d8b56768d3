"""All free parameters of a scene as one flat unconstrained vector.

The optimizer then updates one array instead of hundreds of leaves, and each constraint's
transform runs once over all parameters that share it. This keeps the compiled program's size
(and compile time) nearly independent of the number of sources. The layout is static, derived
from the scene's structure at trace time.
"""

from __future__ import annotations

from collections import defaultdict

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .constraints import Interval, Positive, Real, UnitDisk
from .parameter import _replace_free, free_parameters, free_slots

_ELEMENTWISE = (Real, Positive, Interval)


def _layout(free):
    """Static offsets of each parameter's unconstrained values in the flat vector."""
    shapes = [
        jax.eval_shape(p.constraint.inverse, jax.ShapeDtypeStruct(p.value.shape, p.value.dtype)).shape for p in free
    ]
    sizes = [int(np.prod(s)) for s in shapes]
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
    return shapes, sizes, offsets


def pack(scene) -> jax.Array:
    """The flat unconstrained vector of a scene's free parameters (one entry per shared slot)."""
    free = [rep for rep, _ in free_slots(scene)]
    if not free:
        return jnp.zeros(0, jnp.float32)
    return jnp.concatenate([jnp.ravel(p.to_unconstrained()) for p in free])


def pack_stepsizes(scene, dtype=np.float32) -> np.ndarray:
    """Per-element step sizes aligned with :func:`pack` (host-side)."""
    free = [rep for rep, _ in free_slots(scene)]
    shapes, _, _ = _layout(free)
    steps = [np.broadcast_to(np.asarray(p.stepsize, dtype), s).ravel() for p, s in zip(free, shapes, strict=True)]
    return np.concatenate(steps)


def unpack(scene, u):
    """``scene`` with its free parameters set from the flat unconstrained vector ``u``."""
    slots = free_slots(scene)
    free = [rep for rep, _ in slots]
    shapes, sizes, offsets = _layout(free)
    values = [None] * len(free)
    groups = defaultdict(list)
    for i, p in enumerate(free):
        c = p.constraint
        if isinstance(c, _ELEMENTWISE) or (isinstance(c, UnitDisk) and shapes[i] == (2,)):
            groups[c].append(i)
        else:  # e.g. a simplex: its own transform
            seg = u[offsets[i] : offsets[i + 1]].reshape(shapes[i])
            values[i] = c.forward(seg)
    for c, members in groups.items():
        if isinstance(c, UnitDisk):  # rows of 2: (m, 2) in one transform
            idx = np.stack([np.arange(offsets[i], offsets[i] + 2) for i in members])
            out = c.forward(u[idx])
            for k, i in enumerate(members):
                values[i] = out[k]
            continue
        idx = np.concatenate([np.arange(offsets[i], offsets[i + 1]) for i in members])
        out = u[idx] if isinstance(c, Real) else c.forward(u[idx])
        pos = 0
        for i in members:
            values[i] = out[pos : pos + sizes[i]].reshape(free[i].value.shape)
            pos += sizes[i]
    every = free_parameters(scene)
    new = [None] * len(every)
    for (_, members), v in zip(slots, values, strict=True):
        for i in members:
            new[i] = eqx.tree_at(lambda p: p.value, every[i], v.astype(every[i].value.dtype))
    return _replace_free(scene, iter(new))


def unpack_host(scene, u):
    """:func:`unpack` on the host with numpy transforms: no compiled program for the final
    scene (its many output buffers cost as much compile time as a fit chunk). Falls back to
    a jitted :func:`unpack` when a constraint has no numpy form."""
    slots = free_slots(scene)
    free = [rep for rep, _ in slots]
    shapes, _, offsets = _layout(free)
    u = np.asarray(u, np.float64)
    values = []
    for i, p in enumerate(free):
        v = p.constraint.forward_numpy(u[offsets[i] : offsets[i + 1]].reshape(shapes[i]))
        if v is None:
            return _unpack_jit(scene, jnp.asarray(u, jnp.float32))
        values.append(v)
    every = free_parameters(scene)
    new = [None] * len(every)
    for (_, members), v in zip(slots, values, strict=True):
        for i in members:
            new[i] = eqx.tree_at(lambda p: p.value, every[i], jnp.asarray(v, every[i].value.dtype))
    return _replace_free(scene, iter(new))


@eqx.filter_jit
def _unpack_jit(scene, u):
    return unpack(scene, u)
