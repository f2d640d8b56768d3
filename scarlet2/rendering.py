"""Rendering a scene into its padded model canvas: per-source boxes, batched by kind.

Components whose morphologies share a pytree structure and box size are stacked and rendered
with one ``vmap``; their boxes are scatter-added into the canvas. Peak memory is
n_sources x box area, never n_sources x frame area.
"""

from __future__ import annotations

from collections import defaultdict

import jax
import jax.numpy as jnp

from .observation import Geometry
from .parameter import value_of

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


def _groups(scene):
    """Group (component, source) pairs by morphology structure, then by box size (static, at
    trace time). Returns {(structure, box): [(component, source), ...]}."""
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
    return groups


def _stack(trees):
    return jax.tree.map(lambda *xs: jnp.stack(xs), *trees)


def render_boxes(morphs, spectra, centers, box, model_psf):
    """(n, bands, h, w) boxes for stacked morphologies, spectra (n, bands) and box-local centres."""
    imgs = jax.vmap(lambda m, c: m.render(box, c, model_psf))(morphs, centers)
    return spectra[:, :, None, None] * imgs[:, None]


def scatter_boxes(canvas, boxes, corners):
    """Add boxes (n, b, h, w) into canvas (b, H, W) at integer top-left ``corners`` (n, 2);
    pixels falling outside the canvas are dropped."""
    _, h, w = boxes.shape[1:]
    H, W = canvas.shape[1:]
    yy = corners[:, 0, None, None] + jnp.arange(h)[None, :, None]
    xx = corners[:, 1, None, None] + jnp.arange(w)[None, None, :]
    yy = jnp.where((yy >= 0) & (yy < H), yy, H)  # out of range -> dropped (never wraps)
    xx = jnp.where((xx >= 0) & (xx < W), xx, W)
    yy, xx = jnp.broadcast_arrays(yy, xx)
    vals = jnp.moveaxis(boxes, 1, 0)  # (b, n, h, w)
    return canvas.at[:, yy, xx].add(vals, mode="drop")


def render_canvas(scene, geometry: Geometry, dtype=jnp.float32):
    """The model in the padded canvas (frame bands x canvas), before any observation's PSF."""
    nb = scene.frame.n_bands
    canvas = jnp.zeros((nb,) + geometry.canvas_shape, dtype)
    pad = jnp.asarray(geometry.pad, jnp.int32)
    for (_, box), members in _groups(scene).items():
        comps = [c for c, _ in members]
        srcs = [s for _, s in members]
        morphs = _stack([c.morphology for c in comps])
        spectra = jnp.stack([value_of(c.spectrum) for c in comps]).astype(dtype)
        origins = jnp.stack([s.origin for s in srcs])
        offsets = jnp.stack([value_of(s.offset) for s in srcs]).astype(dtype)
        half = jnp.asarray([box[0] // 2, box[1] // 2], jnp.int32)
        boxes = render_boxes(morphs, spectra, half.astype(dtype) + offsets, box, scene.frame.psf)
        canvas = scatter_boxes(canvas, boxes.astype(dtype), origins - half + pad)
    return canvas


def render_source(scene, index: int):
    """One source in its own box in the model frame: (bands, h, w) and the box's top-left pixel.

    The box sum is the source's total flux per band (the model frame's PSF has unit flux).
    """
    src = scene.sources[index]
    box = src.box
    half = jnp.asarray([box[0] // 2, box[1] // 2], jnp.int32)
    center = half.astype(jnp.float32) + value_of(src.offset)
    img = sum(
        value_of(c.spectrum)[:, None, None] * c.morphology.render(box, center, scene.frame.psf)[None]
        for c in src.components
    )
    return img, src.origin - half


def render_sky(scene):
    """Sum of the scene's :class:`~scarlet2.Background` levels per frame band (zeros if none)."""
    from .source import Background

    levels = [value_of(s.spectrum) for s in scene.sources if isinstance(s, Background)]
    return sum(levels) if levels else jnp.zeros(scene.frame.n_bands, jnp.float32)
