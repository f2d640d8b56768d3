"""All free parameters of a scene as one flat unconstrained vector.

The optimizer then updates one array instead of hundreds of leaves, and each constraint's
transform runs once over all parameters that share it: the vector is laid out in contiguous
segments, one per constraint (elementwise constraints, and 2-vector ellipticities), so a
segment is a static slice, transformed once and split into its parameters. This keeps the
compiled program's size (and compile time) nearly independent of the number of sources. The
layout is static, derived from the scene's structure at trace time.
"""

from __future__ import annotations

import dataclasses

import equinox as eqx
import jax.numpy as jnp
import numpy as np

from .constraints import Interval, Positive, Real, UnitDisk
from .parameter import _replace_free, free_parameters, free_slots

_ELEMENTWISE = (Real, Positive, Interval)


@dataclasses.dataclass(frozen=True)
class _Segment:
    constraint: object
    start: int
    stop: int
    slots: tuple[int, ...]  # indices into free_slots(scene), in vector order
    rows_of_two: bool  # UnitDisk over (m, 2) rows


@dataclasses.dataclass(frozen=True)
class _Layout:
    segments: tuple[_Segment, ...]
    shapes: tuple[tuple[int, ...], ...]  # unconstrained shape per slot
    offsets: tuple[int, ...]  # start of each slot in the vector
    size: int


def _layout(free) -> _Layout:
    """Group slots by transform (first appearance order) and lay the groups out contiguously."""
    shapes = tuple(tuple(p.constraint.unconstrained_shape(p.value.shape)) for p in free)
    groups: dict = {}
    for i, p in enumerate(free):
        c = p.constraint
        shared = isinstance(c, _ELEMENTWISE) or (isinstance(c, UnitDisk) and p.value.shape == (2,))
        groups.setdefault(c if shared else ("own", i), []).append(i)
    segments, offsets, pos = [], [0] * len(free), 0
    for key, members in groups.items():
        start = pos
        for i in members:
            offsets[i] = pos
            pos += int(np.prod(shapes[i], dtype=int))
        c = free[members[0]].constraint
        segments.append(_Segment(c, start, pos, tuple(members), isinstance(c, UnitDisk) and key == c))
    return _Layout(tuple(segments), shapes, tuple(offsets), pos)


def _sizes(layout, members):
    return [int(np.prod(layout.shapes[i], dtype=int)) for i in members]


def pack(scene) -> jnp.ndarray:
    """The flat unconstrained vector of a scene's free parameters (one entry per shared slot)."""
    free = [rep for rep, _ in free_slots(scene)]
    if not free:
        return jnp.zeros(0, jnp.float32)
    layout = _layout(free)
    parts = []
    for seg in layout.segments:
        values = [free[i].value for i in seg.slots]
        if seg.rows_of_two:
            parts.append(seg.constraint.inverse(jnp.stack(values)).ravel())
        elif len(values) == 1:
            parts.append(jnp.ravel(seg.constraint.inverse(values[0])))
        else:  # elementwise: one transform over the concatenated values
            parts.append(seg.constraint.inverse(jnp.concatenate([jnp.ravel(v) for v in values])))
    return jnp.concatenate(parts)


def pack_host(scene, dtype=np.float32) -> np.ndarray:
    """:func:`pack` on the host with numpy inverse transforms (no compiled program); falls back
    to a jitted :func:`pack` when a constraint has no numpy form."""
    free = [rep for rep, _ in free_slots(scene)]
    layout = _layout(free)
    out = np.empty(layout.size, dtype)
    for i, p in enumerate(free):
        v = p.constraint.inverse_numpy(np.asarray(p.value))
        if v is None:
            return np.asarray(_pack_jit(scene), dtype)
        out[layout.offsets[i] : layout.offsets[i] + v.size] = np.ravel(v)
    return out


@eqx.filter_jit
def _pack_jit(scene):
    return pack(scene)


def pack_stepsizes(scene, dtype=np.float32) -> np.ndarray:
    """Per-element step sizes aligned with :func:`pack` (host-side)."""
    free = [rep for rep, _ in free_slots(scene)]
    layout = _layout(free)
    out = np.empty(layout.size, dtype)
    for i, p in enumerate(free):
        n = int(np.prod(layout.shapes[i], dtype=int))
        step = np.broadcast_to(np.asarray(p.stepsize, dtype), layout.shapes[i])
        out[layout.offsets[i] : layout.offsets[i] + n] = step.ravel()
    return out


def _split(seg_values, layout, seg):
    """Cut a transformed segment into its slots' values (one split op, transposed as one concat)."""
    sizes = _sizes(layout, seg.slots)
    pieces = jnp.split(seg_values, np.cumsum(sizes)[:-1]) if len(sizes) > 1 else [seg_values]
    return pieces


def unpack(scene, u):
    """``scene`` with its free parameters set from the flat unconstrained vector ``u``."""
    slots = free_slots(scene)
    free = [rep for rep, _ in slots]
    layout = _layout(free)
    values = [None] * len(free)
    for seg in layout.segments:
        part = u[seg.start : seg.stop]
        if seg.rows_of_two:
            out = seg.constraint.forward(part.reshape(-1, 2))
            for k, i in enumerate(seg.slots):
                values[i] = out[k]
            continue
        if len(seg.slots) == 1:
            i = seg.slots[0]
            out = part.reshape(layout.shapes[i])
            values[i] = out if isinstance(seg.constraint, Real) else seg.constraint.forward(out)
            continue
        out = part if isinstance(seg.constraint, Real) else seg.constraint.forward(part)
        for i, piece in zip(seg.slots, _split(out, layout, seg), strict=True):
            values[i] = piece.reshape(free[i].value.shape)
    return _set_slots(scene, slots, values, u.dtype)


def _set_slots(scene, slots, values, dtype):
    """Set the values; they take the wider of the parameter's storage dtype and the fit's
    ``dtype``, so a float64 fit renders and returns float64 values (float32 stays float32)."""
    every = free_parameters(scene)
    new = [None] * len(every)
    for (_, members), v in zip(slots, values, strict=True):
        for i in members:
            dt = jnp.result_type(every[i].value.dtype, dtype)
            new[i] = eqx.tree_at(lambda p: p.value, every[i], jnp.asarray(v, dt))
    return _replace_free(scene, iter(new))


def unpack_host(scene, u):
    """:func:`unpack` on the host with numpy transforms: no compiled program for the final
    scene (its many output buffers cost as much compile time as a fit chunk). Falls back to
    a jitted :func:`unpack` when a constraint has no numpy form."""
    slots = free_slots(scene)
    free = [rep for rep, _ in slots]
    layout = _layout(free)
    dtype = getattr(u, "dtype", np.dtype(np.float32))
    u = np.asarray(u, np.float64)
    values = []
    for i, p in enumerate(free):
        n = int(np.prod(layout.shapes[i], dtype=int))
        v = p.constraint.forward_numpy(u[layout.offsets[i] : layout.offsets[i] + n].reshape(layout.shapes[i]))
        if v is None:
            return _unpack_jit(scene, jnp.asarray(u, dtype))
        values.append(v)
    return _set_slots(scene, slots, values, dtype)


@eqx.filter_jit
def _unpack_jit(scene, u):
    return unpack(scene, u)
