"""All free parameters of a scene as one flat unconstrained vector.

The optimizer then updates one array instead of hundreds of leaves, and each constraint's
transform runs once over all parameters that share it: the vector is laid out in contiguous
segments, one per constraint (elementwise constraints, and 2-vector ellipticities), so a
segment is a static slice, transformed once. Inside a segment, parameters follow the order in
which the renderer stacks them (:func:`scarlet2.render.canvas.render_order`): a group's spectra,
sizes, ... are each one contiguous slice (:class:`FlatView`), so neither the model nor its
gradient needs an op per parameter. This keeps the compiled program's size (and compile time)
nearly independent of the number of sources. The layout is static, derived from the scene's
structure at trace time.
"""

from __future__ import annotations

import dataclasses

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jax import lax

from ..model.constraints import Interval, Positive, Real, UnitDisk
from ..model.parameter import free_parameters, free_slots, is_parameter, replace_free, with_value
from ..ops.jit import to_devices
from ..render.canvas import render_order, stack_values

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


def _render_slot_order(scene, slots):
    """Slot indices in the renderer's stacking order, then the slots it does not stack."""
    free = free_parameters(scene)
    slot_of = {}
    for k, (_, members) in enumerate(slots):
        for i in members:
            slot_of[id(free[i])] = k
    stacked = render_order(scene) if hasattr(scene, "sources") else []  # any pytree packs
    order = list(dict.fromkeys(slot_of[id(p)] for p in stacked if id(p) in slot_of))
    seen = set(order)
    return order + [k for k in range(len(slots)) if k not in seen]


def _layout(scene) -> _Layout:
    """Group slots by transform (in render order) and lay the groups out contiguously."""
    slots = free_slots(scene)
    free = [rep for rep, _ in slots]
    shapes = tuple(tuple(p.constraint.unconstrained_shape(p.value.shape)) for p in free)
    groups: dict = {}
    for i in _render_slot_order(scene, slots):
        p = free[i]
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


def pack(scene) -> jnp.ndarray:
    """The flat unconstrained vector of a scene's free parameters (one entry per shared slot)."""
    free = [rep for rep, _ in free_slots(scene)]
    if not free:
        return jnp.zeros(0, jnp.float32)
    layout = _layout(scene)
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
    layout = _layout(scene)
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
    layout = _layout(scene)
    out = np.empty(layout.size, dtype)
    for i, p in enumerate(free):
        n = int(np.prod(layout.shapes[i], dtype=int))
        step = np.broadcast_to(np.asarray(p.stepsize, dtype), layout.shapes[i])
        out[layout.offsets[i] : layout.offsets[i] + n] = step.ravel()
    return out


class FlatView:
    """A scene's free parameters read from the flat unconstrained vector ``u`` (traceable).

    Each segment is transformed once. :attr:`scene` holds every parameter's value as a static
    slice of its segment (slices nobody reads cost nothing: they are dead code, and have no
    gradient); :meth:`stack` cuts a whole group field out in one slice when its parameters are
    adjacent in the vector, which :func:`_layout` arranges for the renderer's groups.
    """

    def __init__(self, scene, u):
        slots = free_slots(scene)
        self._layout = layout = _layout(scene)
        self._segment = {}  # slot -> (segment, transformed segment)
        # one split (its gradient is one concatenate), not a slice per segment (a pad and an
        # add each in the gradient)
        parts = lax.split(u, [seg.stop - seg.start for seg in layout.segments]) if layout.segments else []
        for seg, part in zip(layout.segments, parts, strict=True):
            if seg.rows_of_two:
                out = seg.constraint.forward(part.reshape(-1, 2))
            elif isinstance(seg.constraint, Real):
                out = part
            elif len(seg.slots) == 1:  # own-shaped transforms (simplex, ...)
                out = seg.constraint.forward(part.reshape(layout.shapes[seg.slots[0]]))
            else:
                out = seg.constraint.forward(part)
            for i in seg.slots:
                self._segment[i] = (seg, out)
        values = [self._value(k, rep.value.shape) for k, (rep, _) in enumerate(slots)]
        self.scene, new = _set_slots(scene, slots, values, u.dtype, with_new=True)
        self._slot_of = {id(new[i]): k for k, (_, members) in enumerate(slots) for i in members}
        self._shape = [rep.value.shape for rep, _ in slots]
        self._dtype = [jnp.result_type(rep.value.dtype, u.dtype) for rep, _ in slots]

    def _value(self, k, shape):
        # lax.slice, not indexing: one primitive each, cheap to trace (there is one per slot)
        seg, out = self._segment[k]
        if len(seg.slots) == 1 and not seg.rows_of_two:
            return out.reshape(shape)
        a = self._layout.offsets[k] - seg.start
        if seg.rows_of_two:
            return lax.index_in_dim(out, a // 2, keepdims=False)
        return lax.slice_in_dim(out, a, a + int(np.prod(shape, dtype=int))).reshape(shape)

    def stack(self, leaves):
        """``leaves`` (Parameters of :attr:`scene`, or arrays) stacked along a new first axis.

        When their distinct slots are adjacent in one segment (the layout puts a group's
        fields so), this is one slice of the vector; a slot repeated (components of one source
        share its centre) is copied out by a constant 0/1 selection, whose gradient is a sum.
        """
        ks = [self._slot_of.get(id(x)) if is_parameter(x) else None for x in leaves]
        if None in ks:
            return stack_values(leaves)
        uniq = list(dict.fromkeys(ks))
        seg, out = self._segment[uniq[0]]
        shape = self._shape[uniq[0]]
        size = int(np.prod(shape, dtype=int))
        offsets = [self._layout.offsets[k] for k in uniq]
        adjacent = all(self._segment[k][0] is seg and self._shape[k] == shape for k in uniq) and all(
            b - a == size for a, b in zip(offsets, offsets[1:], strict=False)
        )
        if not adjacent or (len(seg.slots) == 1 and not seg.rows_of_two):
            return stack_values(leaves)
        a, m = offsets[0] - seg.start, len(uniq)
        if seg.rows_of_two:
            rows = lax.slice_in_dim(out, a // 2, a // 2 + m)
        else:
            rows = lax.slice_in_dim(out, a, a + size * m).reshape((m, *shape))
        if m < len(ks):
            select = np.zeros((len(ks), m) + (1,) * len(shape), rows.dtype)
            select[np.arange(len(ks)), [uniq.index(k) for k in ks]] = 1
            rows = jnp.sum(select * rows[None], axis=1)
        return rows.astype(self._dtype[uniq[0]])


def unpack(scene, u):
    """``scene`` with its free parameters set from the flat unconstrained vector ``u``."""
    return FlatView(scene, u).scene


def _set_slots(scene, slots, values, dtype, with_new=False):
    """Set the values; they take the wider of the parameter's storage dtype and the fit's
    ``dtype``, so a float64 fit renders and returns float64 values (float32 stays float32)."""
    every = free_parameters(scene)
    new = [None] * len(every)
    pairs = [(i, v) for (_, members), v in zip(slots, values, strict=True) for i in members]
    dtypes = [jnp.result_type(every[i].value.dtype, dtype) for i, _ in pairs]
    for (i, _), array in zip(pairs, to_devices([v for _, v in pairs], dtypes), strict=True):
        new[i] = with_value(every[i], array)
    out = replace_free(scene, iter(new))
    return (out, new) if with_new else out


def with_values(scene, values, dtype):
    """``scene`` with each free slot (in ``free_slots`` order) set to its constrained value in
    ``values`` (traceable): a posterior draw as a scene."""
    return _set_slots(scene, free_slots(scene), values, dtype)


def unpack_host(scene, u):
    """:func:`unpack` on the host with numpy transforms: no compiled program for the final
    scene (its many output buffers cost as much compile time as a fit chunk). Falls back to
    a jitted :func:`unpack` when a constraint has no numpy form."""
    slots = free_slots(scene)
    free = [rep for rep, _ in slots]
    layout = _layout(scene)
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


def log_det_jacobian(scene, u):
    """log |d (constrained values) / du| of the flat vector ``u`` (:func:`pack`'s layout), summed
    over every free slot: what a density over the constrained parameters gains when it is
    sampled in the unconstrained space (traceable)."""
    layout = _layout(scene)
    if not layout.segments:
        return jnp.zeros((), u.dtype)
    parts = lax.split(u, [seg.stop - seg.start for seg in layout.segments])
    total = jnp.zeros((), u.dtype)
    for seg, part in zip(layout.segments, parts, strict=True):
        if isinstance(seg.constraint, Real):
            continue
        if seg.rows_of_two:
            total = total + seg.constraint.log_abs_det_jacobian(part.reshape(-1, 2))
        elif len(seg.slots) == 1:
            total = total + seg.constraint.log_abs_det_jacobian(part.reshape(layout.shapes[seg.slots[0]]))
        else:
            total = total + seg.constraint.log_abs_det_jacobian(part)
    return total
