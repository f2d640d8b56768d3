"""Moving point sources straight to an observation's pixels: its PSF, shifted in a small stamp.

Through the canvas, a point source costs a box render, a paste, a forward transform of the
whole canvas and an inverse one per band. Its image in an observation is that observation's
PSF as the model sees it (the difference kernel times the model PSF), moved to the source's
centre. :func:`point_transfer` cuts that image out of the canvas once, on the host, in a stamp
just large enough for its light; :func:`point_images` then moves it by a Fourier phase (the
fraction of a pixel) and pastes it at the integer pixel, one small inverse transform per band.
The images agree with the canvas path's up to the light the stamp leaves out
(:data:`STAMP_LOSS`) and the canvas path's own cut of light beyond its kept margin.

Used by :mod:`.parts` when few sources move (a sampled star among held neighbours).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ..model.morphology import Point
from ..ops.fourier import fast_size, kgrid, phase, transfer_numpy
from ..ops.jit import to_device
from .convolve import ObservationRenderer, take_bands

#: A stamp holds all but this fraction of the absolute light of a point's observed image.
STAMP_LOSS = 1e-6


class PointTransfer(eqx.Module):
    """The transform of a unit point's image in one observation, centred at pixel (0, 0) of a
    stamp of ``shape`` (observation bands, h, w // 2 + 1), and the frame pixel of the
    observation's pixel (0, 0)."""

    ft: Array
    shape: tuple[int, int] = eqx.field(static=True)
    offset: tuple[int, int] = eqx.field(static=True)


def is_point(source) -> bool:
    """Whether every component of ``source`` is a :class:`~scarlet2.model.morphology.Point`."""
    comps = getattr(source, "components", ())
    return bool(comps) and all(isinstance(c.morphology, Point) for c in comps)


def point_transfer(renderer, model_psf) -> PointTransfer | None:
    """The stamp of a unit point in ``renderer``'s observation (same pixel grid as the frame),
    or None where there is no gain: another grid, a model PSF without a numpy form, or light
    that needs a stamp half the canvas or larger."""
    if not isinstance(renderer, ObservationRenderer):
        return None
    canvas = renderer.geometry.canvas_shape
    model_ft = transfer_numpy(canvas, model_psf)
    if model_ft is None:
        return None
    kernel = np.asarray(renderer.kernel_ft).astype(np.complex128)
    image = np.fft.irfft2(kernel * model_ft, s=canvas)  # centred at (0, 0), periodic
    radius = _radius(np.abs(image).sum(axis=0))
    if radius is None:
        return None
    # one more pixel each side: the phase moves the image by up to half a pixel
    shape = (fast_size(2 * radius + 3), fast_size(2 * radius + 3))
    if shape[0] * shape[1] * 2 > canvas[0] * canvas[1]:
        return None
    rows = np.arange(-(shape[0] // 2), shape[0] - shape[0] // 2) % canvas[0]
    cols = np.arange(-(shape[1] // 2), shape[1] - shape[1] // 2) % canvas[1]
    stamp = np.roll(image[:, rows][:, :, cols], (-(shape[0] // 2), -(shape[1] // 2)), axis=(-2, -1))
    ft = np.fft.rfft2(stamp)
    return PointTransfer(to_device(ft, renderer.kernel_ft.dtype), shape, tuple(renderer.offset))


def _radius(light: np.ndarray) -> int | None:
    """Half-width of the smallest square centred at (0, 0) of the periodic ``light`` (h, w)
    holding all but :data:`STAMP_LOSS` of it, or None if that is the whole array."""
    h, w = light.shape
    centred = np.roll(light, (h // 2, w // 2), axis=(0, 1))  # (0, 0) now at (h // 2, w // 2)
    total = centred.sum()
    for r in range(min(h, w) // 2):
        inside = centred[h // 2 - r : h // 2 + r + 1, w // 2 - r : w // 2 + r + 1].sum()
        if total - inside <= STAMP_LOSS * total:
            return r
    return None


def point_images(
    transfer: PointTransfer,
    centers: Float[Array, "n 2"],
    spectra: Float[Array, "n bands"],
    band_index: tuple[int, ...],
    image_shape: tuple[int, int],
) -> Float[Array, "obs_bands h w"]:
    """The observation's image (its bands, ``image_shape``) of unit points at frame pixel
    ``centers`` times ``spectra`` (over the frame's bands); traceable and differentiable in both."""
    dtype = spectra.dtype
    (h, w), (ny, nx) = transfer.shape, image_shape
    ky, kx = kgrid(transfer.shape, dtype)
    at = centers - jnp.asarray(transfer.offset, dtype)  # observation pixels
    whole = jax.lax.stop_gradient(jnp.floor(at + 0.5))
    part = at - whole  # in [-1/2, 1/2): the phase moves the stamp's centre by this

    def one(f):
        return jnp.fft.irfft2(transfer.ft * phase(ky, kx, h // 2 + f[0], w // 2 + f[1]), s=transfer.shape)

    stamps = jax.vmap(one)(part) * take_bands(spectra.T, band_index).T[:, :, None, None]
    # a buffer one stamp wider than the image each side: a stamp whose corner is clamped
    # (a point far outside) lies wholly outside the image
    corner = whole.astype(jnp.int32) - jnp.asarray([h // 2, w // 2], jnp.int32) + jnp.asarray([h, w], jnp.int32)
    corner = jnp.clip(corner, 0, jnp.asarray([ny + h, nx + w], jnp.int32))
    zero = jnp.zeros((), jnp.int32)

    def add(out, args):  # a scan of in-place updates: the program does not grow with the points
        stamp, (y, x) = args
        window = jax.lax.dynamic_slice(out, (zero, y, x), stamp.shape)
        return jax.lax.dynamic_update_slice(out, window + stamp, (zero, y, x)), None

    out = jnp.zeros((stamps.shape[1], ny + 2 * h, nx + 2 * w), dtype)
    out = jax.lax.scan(add, out, (stamps, corner))[0]
    return out[:, h : h + ny, w : w + nx]


__all__ = ["PointTransfer", "STAMP_LOSS", "is_point", "point_images", "point_transfer"]
