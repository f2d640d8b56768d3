"""The model split by what a sampler moves: parts rendered once through each observation.

When only some parameters are free (a sampler of one source among held neighbours, or of
fluxes only), most of the model does not change from one likelihood call to the next:

- *held* sources (no free parameter) add a constant image per observation;
- *linear* sources (only their components' spectra free) add ``sum_k s_k[b] U_k[b]``, where
  ``U_k`` is component k's image through the observation with a spectrum of ones;
- only *moving* sources (a free shape or position) go through the canvas and the PSF.

:func:`fixed_parts` renders the first two once, through every observation's own renderer (so
any pixel grid), and :func:`render_parts` adds them to the moving sources' images: per call,
the observation step runs only when something moves, and then on one single-band canvas per
moving component where they are fewer than the bands (a sampled star: one forward FFT, not
one per band). Moving point sources skip the canvas altogether where every observation is on
the frame's grid: each is its observation's PSF moved into place in a small stamp
(:mod:`.points`). The images are those of the full renderer up to rounding (convolution and
resampling are linear) and the light a point's stamp leaves out.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array

from ..ops.jit import compiled, platform
from .canvas import (
    has_free,
    moves,
    render_canvas,
    render_sky,
    selected_components,
    selected_sources,
    stack_values,
    unit_canvases,
)
from .convolve import add_sky, take_bands
from .points import PointTransfer, is_point, point_images, point_transfer

#: The linear components' images take n x bands x pixels of every observation; above this many
#: bytes in all they are rendered on every call instead (as moving sources).
UNIT_BYTES = 2**28


class Parts(eqx.Module):
    """Per renderer: the held sources as observed (bands, y, x; no sky), the linear
    components' unit-spectrum images (n, bands, y, x), or None where there are none, and the
    stamp of a moving point (None for all renderers when some renderer has none)."""

    held: tuple[Array | None, ...]
    units: tuple[Array | None, ...]
    linear: bool = eqx.field(static=True)  # whether the units are used (else linear sources move)
    points: tuple[PointTransfer, ...] | None = None


def fixed_parts(scene, renderers) -> Parts | None:
    """The held and linear parts of ``scene`` through each renderer (``core, renderers =
    prepare(scene, observations)``), or None when every source moves (nothing to gain)."""
    held, linear = selected_sources(scene, "held"), selected_sources(scene, "linear")
    if not held and not linear:
        return None
    n = len(selected_components(scene, "linear"))
    size = sum(n * r.data.size * r.data.dtype.itemsize for r in renderers)
    use_linear = bool(linear) and size <= UNIT_BYTES
    if not held and not use_linear:
        return None
    parts = compiled(_render_fixed, platform(renderers[0].data))(scene, renderers, bool(held), use_linear)
    if selected_sources(scene, _moving_points(use_linear)):
        transfers = tuple(point_transfer(r, scene.frame.psf) for r in renderers)
        if all(t is not None for t in transfers):
            parts = Parts(parts.held, parts.units, parts.linear, transfers)
    return parts


def _moving(linear: bool):
    """Which sources a call renders: those that move, or every free one when the linear
    components' images are not kept."""
    return moves if linear else has_free


def _moving_points(linear: bool):
    base = _moving(linear)
    return lambda s: base(s) and is_point(s)


def _moving_shapes(linear: bool):
    base = _moving(linear)
    return lambda s: base(s) and not is_point(s)


def _render_fixed(scene, renderers, with_held: bool, with_linear: bool):
    geometry, dtype = renderers[0].geometry, renderers[0].data.dtype
    held_canvas = render_canvas(scene, geometry, dtype, select="held") if with_held else None
    units = unit_canvases(scene, geometry, dtype, "linear") if with_linear else None
    ones = jnp.ones((1, scene.frame.n_bands), dtype)
    held, unit = [], []
    for r in renderers:
        held.append(None if held_canvas is None else r(held_canvas))
        # one component at a time: a vmap would hold every component's transforms at once
        unit.append(None if units is None else jax.lax.map(lambda u, r=r: r.components(u[None], ones), units))
    return Parts(tuple(held), tuple(unit), with_linear)


def render_parts(scene, renderers, parts: Parts, stack=stack_values):
    """Each renderer's model image (bands, y, x) of ``scene``, its fixed parts taken from
    ``parts`` (traceable; ``stack`` as in :func:`~.canvas.render_canvas`).

    Moving components fewer than an observation's bands go through it as single-band unit
    canvases (one forward transform each, ``renderer.components``); more, as one canvas.
    """
    geometry, dtype = renderers[0].geometry, renderers[0].data.dtype
    moving = _moving(parts.linear) if parts.points is None else _moving_shapes(parts.linear)
    comps = selected_components(scene, moving)
    points = [] if parts.points is None else selected_components(scene, _moving_points(parts.linear))
    if points:
        point_spectra = stack([c.spectrum for c, _ in points]).astype(dtype)
        hi = jnp.asarray([n - 1 for n in scene.frame.shape], jnp.int32)
        origins = jnp.clip(jnp.stack([s.origin for _, s in points]), 0, hi)
        centers = origins.astype(dtype) + stack([s.offset for _, s in points]).astype(dtype)
    canvas = units = None
    if comps and any(len(comps) >= len(r.band_index) for r in renderers):
        canvas = render_canvas(scene, geometry, dtype, stack, select=moving)
    if comps and any(len(comps) < len(r.band_index) for r in renderers):
        units = unit_canvases(scene, geometry, dtype, moving, stack)
        moving_spectra = stack([c.spectrum for c, _ in comps]).astype(dtype)
    spectra = None
    if parts.linear:
        spectra = stack([c.spectrum for c, _ in selected_components(scene, "linear")]).astype(dtype)
    sky = render_sky(scene)
    images = []
    transfers = parts.points or (None,) * len(renderers)
    for r, held, linear, transfer in zip(renderers, parts.held, parts.units, transfers, strict=True):
        if not comps:
            img = jnp.zeros(r.data.shape, dtype)
        elif len(comps) < len(r.band_index):
            img = r.components(units, moving_spectra)
        else:
            img = r(canvas)
        if points:
            img = img + point_images(transfer, centers, point_spectra, r.band_index, r.data.shape[-2:])
        if held is not None:
            img = img + held
        if linear is not None:
            s = take_bands(spectra.T, r.band_index)  # (observation bands, n)
            img = img + jnp.einsum("bn,nbyx->byx", s, linear, precision=jax.lax.Precision.HIGHEST)
        images.append(add_sky(img, sky, r.band_index))
    return images


__all__ = ["Parts", "fixed_parts", "render_parts"]
