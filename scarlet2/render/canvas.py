"""Rendering a scene into its padded model canvas: per-source boxes, batched by kind.

Components whose morphologies share a pytree structure and box size are stacked and rendered
with one ``vmap``; their boxes are added into the canvas by a scan of in-place slice updates.
Peak memory is n_sources x box area, never n_sources x frame area (``tests/test_memory.py``).
"""

from __future__ import annotations

from collections import defaultdict

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

from ..model.parameter import is_parameter, parameters, value_of
from ..model.scene import Scene
from ..model.source import Background
from ..ops.paste import paste_boxes
from .geometry import Geometry

#: Cost of one more vmapped group, in rendered pixels: each group adds ops (dispatch, compile),
#: padding a box to its group's size adds pixels. Groups minimise pixels + this per group.
GROUP_OVERHEAD_PIXELS = 20000


def _partition(boxes):
    """Split boxes (sorted, largest first) into contiguous groups minimising
    sum(n_g * box_g area) + GROUP_OVERHEAD_PIXELS * n_groups (exact, O(n^2) dynamic programme)."""
    n = len(boxes)
    area = [b[0] * b[1] for b in boxes]
    best = [0.0] + [float("inf")] * n  # best[i]: cost of the first i boxes
    cut = [0] * (n + 1)
    for i in range(1, n + 1):
        for j in range(i):  # group boxes j..i-1, padded to boxes[j] (the largest)
            cost = best[j] + (i - j) * area[j] + GROUP_OVERHEAD_PIXELS
            if cost < best[i]:
                best[i], cut[i] = cost, j
    spans, i = [], n
    while i > 0:
        spans.append((cut[i], i))
        i = cut[i]
    return spans[::-1]


def has_free(source) -> bool:
    """Whether any of a source's Parameters is free (static, at trace time)."""
    return any(not p.fixed for p in parameters(source))


def moves(source) -> bool:
    """Whether a free parameter changes the source's shape or position (static): a source whose
    only free parameters are its components' spectra is linear in them, and its images through
    an observation can be rendered once (:mod:`.parts`)."""
    spectra = {id(c.spectrum) for c in getattr(source, "components", ())}
    return any(not p.fixed and id(p) not in spectra for p in parameters(source))


#: Which sources :func:`render_canvas` renders: every one, those with a free parameter, the
#: held ones (all parameters fixed), the moving ones (:func:`moves`) or the linear ones (free
#: spectra only).
_SELECT = {
    "all": lambda s: True,
    "free": has_free,
    "held": lambda s: not has_free(s),
    "moving": moves,
    "linear": lambda s: has_free(s) and not moves(s),
}


def _groups(scene, select: str = "all"):
    """Group (component, source) pairs by morphology structure, then by box size (static, at
    trace time). Returns {(structure, box): [(component, source), ...]}.

    Groups are formed over every source and then cut to the ``select``-ed ones, so a component
    is rendered in the same box whichever part of the scene is rendered (a profile's image
    depends slightly on its box): the parts add up to the whole scene's canvas.
    """
    by_kind = defaultdict(list)
    for s in scene.sources:
        for c in getattr(s, "components", ()):
            fixed_shape = hasattr(c.morphology, "array")  # free-form arrays keep their own box
            by_kind[(jax.tree.structure(c.morphology), s.box if fixed_shape else None)].append((c, s))
    groups = {}
    for (structure, fixed_box), members in by_kind.items():
        if fixed_box is not None:
            groups[(structure, fixed_box)] = members
            continue
        members = sorted(members, key=lambda cs: -max(cs[1].box))
        boxes = [(max(m[1].box),) * 2 for m in members]
        for j, i in _partition(boxes):
            groups[(structure, boxes[j])] = members[j:i]
    keep = select if callable(select) else _SELECT[select]
    picked = {key: [m for m in members if keep(m[1])] for key, members in groups.items()}
    return {key: members for key, members in picked.items() if members}


def _group_fields(members):
    """What a group stacks, field by field: the components' spectra, the sources' centre
    offsets, then each Parameter (or array) leaf of the morphology; one leaf per member."""
    morph_leaves = [jax.tree.leaves(c.morphology, is_leaf=is_parameter) for c, _ in members]
    morph_fields = [list(field) for field in zip(*morph_leaves, strict=True)]
    return [[c.spectrum for c, _ in members], [s.offset for _, s in members], *morph_fields]


def render_order(scene):
    """The scene's Parameters in the order the renderer stacks them (group, field, member).

    A flat vector laid out in this order (:mod:`scarlet2.infer.packing`) holds each group's field as
    one contiguous slice, so stacking it is a slice, and its gradient one pad, not one op per
    member.
    """
    order = []
    for members in _groups(scene).values():
        for field in _group_fields(members):
            order.extend(leaf for leaf in field if is_parameter(leaf))
    return order


def stack_values(leaves):
    """Default stacking of a group field: the members' values, stacked."""
    return jnp.stack([value_of(x) for x in leaves])


def render_boxes(morphs, centers, box, model_psf):
    """(n, h, w) unit-flux boxes for stacked morphologies and box-local centres (n, 2)."""
    return jax.vmap(lambda m, c: m.render(box, c, model_psf))(morphs, centers)


def group_boxes(scene, box, members, dtype=jnp.float32, stack=stack_values):
    """One group of :func:`_groups` rendered (traceable): its members' unit-flux images (n, h, w),
    spectra (n, frame bands) and the frame pixels of their boxes' top-left corners (n, 2).

    Source origins are inside the frame (checked when a Source or Scene is made); the clip only
    keeps traced values in bounds.
    """
    spectra, offsets, *morph_fields = (stack(field) for field in _group_fields(members))
    spectra, offsets = spectra.astype(dtype), offsets.astype(dtype)
    # the stacked values stand in for the Parameters: morphologies read them via value_of
    treedef = jax.tree.structure(members[0][0].morphology, is_leaf=is_parameter)
    morphs = jax.tree.unflatten(treedef, morph_fields)
    hi = jnp.asarray([n - 1 for n in scene.frame.shape], jnp.int32)
    origins = jnp.clip(jnp.stack([s.origin for _, s in members]), 0, hi)
    half = jnp.asarray([box[0] // 2, box[1] // 2], jnp.int32)
    images = render_boxes(morphs, half.astype(dtype) + offsets, box, scene.frame.psf)
    return images.astype(dtype), spectra, origins - half


def render_canvas(scene, geometry: Geometry, dtype=jnp.float32, stack=stack_values, select: str = "all"):
    """The model in the padded canvas (frame bands x canvas), before any observation's PSF.

    ``select`` renders only some sources (``"free"``, ``"held"``, ``"moving"``, ``"linear"``:
    :data:`_SELECT`); ``"free"`` and ``"held"`` add up to the whole.

    ``stack(leaves)`` stacks one field of a group (default :func:`stack_values`); a fit passes
    :meth:`scarlet2.infer.packing.FlatView.stack`, which cuts the field out of the flat parameter
    vector in one slice.

    Boxes are pasted into a scratch canvas with a border wide enough for the largest box
    around any frame pixel, so boxes reaching beyond the canvas are cut, never wrapped; the
    scratch (the frame and the geometry's kept margin, ``Geometry.kept_shape``, plus that
    border) is cropped and zero-padded to the canvas at the end.
    """
    nb = scene.frame.n_bands
    groups = _groups(scene, select)
    border, pad, shape = _scratch(groups, geometry, nb)
    scratch = jnp.zeros(shape, dtype)
    for (_, box), members in groups.items():
        images, spectra, corners = group_boxes(scene, box, members, dtype, stack)
        scratch = paste_boxes(scratch, images, spectra, corners + pad)
    return _crop(scratch, geometry, border)


def _scratch(groups, geometry: Geometry, nb: int):
    """The scratch canvas's border, the offset of the frame in it and its shape."""
    (kh, kw), (py, px) = geometry.kept_shape, geometry.pad
    half = max((max(box) // 2 for _, box in groups), default=0)
    border = max(0, half + 1 - min(py, px))
    return border, jnp.asarray([py + border, px + border], jnp.int32), (nb, kh + 2 * border, kw + 2 * border)


def _crop(scratch, geometry: Geometry, border: int):
    # light beyond the kept margin is cut (it would wrap into the frame); the rest stays zero
    (H, W), (kh, kw) = geometry.canvas_shape, geometry.kept_shape
    canvas = scratch[..., border : border + kh, border : border + kw]
    pad = ((0, 0),) * (canvas.ndim - 2) + ((0, H - kh), (0, W - kw))
    return jnp.pad(canvas, pad) if (kh, kw) != (H, W) else canvas


def selected_sources(scene, select: str = "all"):
    """The sources with components that ``select`` (:data:`_SELECT`, or a predicate of a
    source) picks (static)."""
    keep = select if callable(select) else _SELECT[select]
    return [s for s in scene.sources if getattr(s, "components", ()) and keep(s)]


def selected_components(scene, select: str = "all"):
    """The (component, source) pairs of the selected sources in the order in which
    :func:`unit_canvases` returns them (static)."""
    return [m for members in _groups(scene, select).values() for m in members]


def unit_canvases(scene, geometry: Geometry, dtype=jnp.float32, select: str = "linear", stack=stack_values):
    """One single-band canvas per component of the selected sources, its unit-flux image where
    :func:`render_canvas` puts it: (n components, H, W), in :func:`selected_components` order
    (traceable; ``stack`` as in :func:`render_canvas`).

    The model is linear in the components' spectra ``s`` (n, bands): their canvas is
    ``einsum("nb,nyx->byx", s, unit_canvases(...))``, and its transform the same sum of the
    units' transforms (one FFT per component, not per band).
    """
    groups = _groups(scene, select)
    border, pad, shape = _scratch(groups, geometry, 1)
    one_band = jnp.ones((1, 1), dtype)

    def one(image, corner):
        scratch = paste_boxes(jnp.zeros(shape, dtype), image[None], one_band, corner[None] + pad)
        return _crop(scratch, geometry, border)[0]

    out = []
    for (_, box), members in groups.items():
        images, _, corners = group_boxes(scene, box, members, dtype, stack)
        out.append(jax.vmap(one)(images, corners))
    return jnp.concatenate(out) if out else jnp.zeros((0, *geometry.canvas_shape), dtype)


def render_source(scene: Scene, index: int) -> tuple[Float[Array, "bands h w"], Int[Array, 2]]:
    """One source in its own box in the model frame: (bands, h, w) and the box's top-left pixel.

    The box sum is the source's total flux per band (the model frame's PSF has unit flux).
    """
    src = scene.sources[index]
    box = src.box
    half = jnp.asarray([box[0] // 2, box[1] // 2], jnp.int32)
    offset = value_of(src.offset)
    center = half.astype(offset.dtype) + offset
    img = sum(
        value_of(c.spectrum)[:, None, None] * c.morphology.render(box, center, scene.frame.psf)[None]
        for c in src.components
    )
    return img, src.origin - half


def render_sky(scene):
    """Sum of the scene's :class:`~scarlet2.Background` levels per frame band (zeros if none)."""
    levels = [value_of(s.spectrum) for s in scene.sources if isinstance(s, Background)]
    return sum(levels) if levels else jnp.zeros(scene.frame.n_bands, jnp.float32)
