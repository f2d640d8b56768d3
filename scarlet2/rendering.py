"""Rendering a scene into its padded model canvas: per-source boxes, batched by kind.

Components whose morphologies share a pytree structure and box size are stacked and rendered
with one ``vmap``; their boxes are added into the canvas by a scan of in-place slice updates.
Peak memory is n_sources x box area, never n_sources x frame area (``tests/test_memory.py``).
"""

from __future__ import annotations

import warnings
from collections import defaultdict

import jax
import jax.numpy as jnp
import numpy as np

from .observation import Geometry
from .parameter import is_parameter, value_of

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


def _group_fields(members):
    """What a group stacks, field by field: the components' spectra, the sources' centre
    offsets, then each Parameter (or array) leaf of the morphology; one leaf per member."""
    morph_leaves = [jax.tree.leaves(c.morphology, is_leaf=is_parameter) for c, _ in members]
    morph_fields = [list(field) for field in zip(*morph_leaves, strict=True)]
    return [[c.spectrum for c, _ in members], [s.offset for _, s in members], *morph_fields]


def render_order(scene):
    """The scene's Parameters in the order the renderer stacks them (group, field, member).

    A flat vector laid out in this order (:mod:`scarlet2.packing`) holds each group's field as
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


def _paste(scratch, images, spectra, starts):
    # a scan of in-place slice updates: ~4x faster than one scatter-add on CPU, and the box
    # count does not grow the program
    nb = scratch.shape[0]
    h, w = images.shape[1:]
    zero = jnp.zeros((), jnp.int32)

    def body(canvas, args):
        image, spectrum, (y, x) = args
        at = (zero, y, x)
        window = jax.lax.dynamic_slice(canvas, at, (nb, h, w))
        return jax.lax.dynamic_update_slice(canvas, window + spectrum[:, None, None] * image, at), None

    return jax.lax.scan(body, scratch, (images, spectra, starts))[0]


@jax.custom_vjp
def paste_boxes(scratch, images, spectra, starts):
    """Add ``spectra[i, b] * images[i]`` into ``scratch`` (bands, H, W) at top-left corners
    ``starts`` (n, 2). The caller makes ``scratch`` large enough that every box lies inside it
    (slices are clamped, never wrapped).

    The operation is linear; its custom VJP cuts the cotangent's windows out in one batched
    slice, where the scan's own transpose would add a full canvas per box.
    """
    return _paste(scratch, images, spectra, starts)


def _paste_fwd(scratch, images, spectra, starts):
    return _paste(scratch, images, spectra, starts), (images, spectra, starts)


def _paste_bwd(res, ct):
    images, spectra, starts = res
    nb = ct.shape[0]
    h, w = images.shape[1:]
    zero = jnp.zeros((), jnp.int32)
    windows = jax.vmap(lambda s: jax.lax.dynamic_slice(ct, (zero, s[0], s[1]), (nb, h, w)))(starts)
    # over the 5 bands a fused product + sum is fastest; over the box's pixels a dot is (A/B on
    # HSC, one thread: 0.65 -> 0.62 ms per iteration; an einsum for d_images was slower)
    d_images = jnp.sum(windows * spectra[:, :, None, None], axis=1)
    # HIGHEST: full float32 on accelerators too (their default dot may round to tf32/bf16)
    d_spectra = jnp.einsum("ibhw,ihw->ib", windows, images, precision=jax.lax.Precision.HIGHEST)
    return ct, d_images, d_spectra, None


paste_boxes.defvjp(_paste_fwd, _paste_bwd)


def render_canvas(scene, geometry: Geometry, dtype=jnp.float32, stack=stack_values):
    """The model in the padded canvas (frame bands x canvas), before any observation's PSF.

    ``stack(leaves)`` stacks one field of a group (default :func:`stack_values`); a fit passes
    :meth:`scarlet2.packing.FlatView.stack`, which cuts the field out of the flat parameter
    vector in one slice.

    Boxes are pasted into a scratch canvas with a border wide enough for the largest box
    around any frame pixel, so boxes reaching beyond the canvas are cut, never wrapped; the
    scratch (the frame and the geometry's kept margin, ``Geometry.kept_shape``, plus that
    border) is cropped and zero-padded to the canvas at the end. Source origins are inside the
    frame (checked when a Source or Scene is made); the clip below only keeps the slices in
    bounds.
    """
    nb = scene.frame.n_bands
    groups = _groups(scene)
    (H, W), (kh, kw) = geometry.canvas_shape, geometry.kept_shape
    (py, px), (ny, nx) = geometry.pad, geometry.frame_shape
    half = max((max(box) // 2 for _, box in groups), default=0)
    border = max(0, half + 1 - min(py, px))
    scratch = jnp.zeros((nb, kh + 2 * border, kw + 2 * border), dtype)
    pad = jnp.asarray([py + border, px + border], jnp.int32)
    hi = jnp.asarray([ny - 1, nx - 1], jnp.int32)
    for (_, box), members in groups.items():
        spectra, offsets, *morph_fields = (stack(field) for field in _group_fields(members))
        spectra, offsets = spectra.astype(dtype), offsets.astype(dtype)
        # the stacked values stand in for the Parameters: morphologies read them via value_of
        treedef = jax.tree.structure(members[0][0].morphology, is_leaf=is_parameter)
        morphs = jax.tree.unflatten(treedef, morph_fields)
        origins = jnp.clip(jnp.stack([s.origin for _, s in members]), 0, hi)
        half = jnp.asarray([box[0] // 2, box[1] // 2], jnp.int32)
        images = render_boxes(morphs, half.astype(dtype) + offsets, box, scene.frame.psf)
        scratch = paste_boxes(scratch, images.astype(dtype), spectra, origins - half + pad)
    # light beyond the kept margin is cut (it would wrap into the frame); the rest stays zero
    canvas = scratch[:, border : border + kh, border : border + kw]
    return jnp.pad(canvas, ((0, 0), (0, H - kh), (0, W - kw))) if (kh, kw) != (H, W) else canvas


def render_source(scene, index: int):
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


#: :func:`scarlet2.fit` warns when a fitted source's :func:`box_leakage` bound exceeds this.
BOX_LEAKAGE_WARNING = 0.2


class BoxLeakageWarning(UserWarning):
    """A source's profile reaches well beyond its box (see :func:`box_leakage`)."""


def warn_box_leakage(scene, leak, threshold: float = BOX_LEAKAGE_WARNING):
    """Warn, naming the sources, when ``leak`` (from :func:`box_leakage`) exceeds ``threshold``."""
    bad = [i for i, lk in enumerate(leak) if lk > threshold]
    if bad:
        what = ", ".join(f"source {i} ({leak[i]:.0%} beyond its {max(scene.sources[i].box)}-px box)" for i in bad)
        warnings.warn(
            f"{what}: a box's FFT wraps that light around inside the box, so these model images are "
            "wrong although their fluxes add up; refit scarlet2.grow_boxes(scene) or give larger boxes",
            BoxLeakageWarning,
            stacklevel=3,
        )


def box_leakage(scene) -> np.ndarray:
    """Per source (in ``scene.sources`` order), an upper bound on the fraction of its flux that
    its profiles put beyond its box (flux-weighted over components and bands; 0 for
    backgrounds, point sources and pixel arrays).

    A box is rendered by an FFT of its own size, so light beyond it wraps around into the box
    instead of being cut: a box well below its profile's size (a galaxy whose r_e grew in the
    fit, a high-n wing) makes a wrong image with the right total flux.
    """
    out = np.zeros(len(scene.sources))
    for i, s in enumerate(scene.sources):
        comps = getattr(s, "components", ())
        if not comps or not hasattr(s, "box"):
            continue
        out[i] = box_leakage_at(s, min(s.box))
    return out


def grow_boxes(scene, max_leakage: float = 0.05, max_box: int | None = None):
    """The scene with each source's box enlarged to the smallest standard size whose
    :func:`box_leakage` bound is at most ``max_leakage`` (boxes only grow; pixel-array
    morphologies keep theirs). ``max_box`` caps the size (default: the standard size covering
    twice the frame). A fit of the result compiles anew for the new box sizes.
    """
    from .fourier import BOX_SIZES, box_size

    cap = max_box or box_size(2 * max(scene.frame.shape) + 1)
    leak = box_leakage(scene)
    sources = []
    for s, lk in zip(scene.sources, leak, strict=True):
        comps = getattr(s, "components", ())
        if lk <= max_leakage or any(hasattr(c.morphology, "array") for c in comps):
            sources.append(s)
            continue
        box = max(s.box)
        for size in (b for b in BOX_SIZES if max(s.box) < b <= cap):
            box = size
            if box_leakage_at(s, size) <= max_leakage:
                break
        sources.append(s.with_box(box))
    return scene.replace_sources(sources)


def box_leakage_at(source, box: int) -> float:
    """:func:`box_leakage` of one source if its box were ``box`` pixels."""
    comps = source.components
    fluxes = np.array([max(float(np.sum(c.flux(xp=np))), 0.0) for c in comps])
    leaks = np.array([c.morphology.flux_outside(box / 2) for c in comps])
    return float(fluxes @ leaks / fluxes.sum()) if fluxes.sum() > 0 else float(leaks.max())


def render_sky(scene):
    """Sum of the scene's :class:`~scarlet2.Background` levels per frame band (zeros if none)."""
    from .source import Background

    levels = [value_of(s.spectrum) for s in scene.sources if isinstance(s, Background)]
    return sum(levels) if levels else jnp.zeros(scene.frame.n_bands, jnp.float32)
