"""Canvas -> an observation on another pixel grid: PSF matching and resampling in one linear map.

The model canvas holds the scene at the frame's pixel scale, convolved with the narrow model PSF
and integrated over frame pixels. An observation on another grid (another scale, rotation, offset,
distortion) sees the sky through its own PSF, which instruments deliver as an image at the
observation's pixel scale (its *effective* PSF: optics and pixel response together). For each
observation, once and on the host:

1. the observation's pixel centres are mapped into frame pixels through astropy (frames such as
   FK5 and ICRS, and SIP distortion, are honoured) and the local Jacobian J (frame pixels per
   observation pixel) is taken at the grid's centre;
2. the PSF stamp's Fourier transform is evaluated at the frame frequencies k as seen by the
   observation, u = J^T k (exact for its band-limited interpolant, zero beyond the observation's
   Nyquist frequency), and divided by the model PSF x frame pixel (Wiener-regularised): the
   kernel D(k) that turns the canvas into the observation's image, in the frame's coordinates;
3. only the block of frequencies where D can be non-zero is kept; it is divided by the cubic
   B-spline's transfer function, so that the coarse grid those frequencies transform back to
   holds B-spline coefficients of the PSF-matched image (band-limited interpolation, no blur);
4. each observation pixel gathers 4 x 4 coefficients with cubic B-spline weights, times its area
   in frame pixels (flux per observation pixel; constant sums are conserved exactly).

In the compiled program that is: two partial FFTs of the canvas (only the kept columns are
transformed along y), a product with D, a small inverse FFT and a gather. Method, measured error
and cost are in docs/design.md.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

from ..errors import InputError
from ..model import grids
from ..model.frame import Frame
from ..model.observation import Observation
from ..model.psf import ArrayPSF
from ..ops.fourier import fast_size, transfer_numpy
from ..ops.jit import to_device
from .convolve import add_sky, combine_spectra, gaussian_log_likelihood, take_bands
from .geometry import Geometry

#: Samples of the coarse (B-spline coefficient) grid per cycle of the highest frequency an
#: observation passes. Its aliases are suppressed by the cubic B-spline's sinc^4 response:
#: 4 samples per cycle keep the resampling error below 1e-4 of the peak (docs/design.md).
RESAMPLE_OVERSAMPLING = 4.0

#: The coarse grid is at most this many times the canvas per axis: an observation at the frame's
#: own pixel scale but rotated passes frequencies up to 0.7 cycles per frame pixel, and 4 samples
#: per cycle of those would be a grid 5.6 times the canvas; its PSF has little power there.
MAX_COARSE_FACTOR = 2

#: Frequencies where the observation's PSF transform is below this fraction of its peak are dropped.
KERNEL_FLOOR = 1e-9


def resampled_renderer(observation: Observation, frame: Frame, geometry: Geometry) -> ResampledRenderer:
    """The compiled-code view of an observation on its own WCS (see the module docstring)."""
    obs = observation
    if frame.wcs is None or obs.wcs is None:
        raise InputError(
            f"observation {obs.label} of shape {tuple(obs.data.shape[-2:])} is not on the frame's grid "
            f"{tuple(frame.shape)}, and resampling onto its own grid needs a WCS on both (give the observation "
            "one, and the frame one, e.g. Frame.from_observations)"
        )
    idx = tuple(frame.bands.index(b) for b in obs.bands)
    ny, nx = obs.data.shape[-2:]
    mapped = grids.map_pixels(grids.pixel_centres((ny, nx)), obs.wcs, frame.wcs, f"observation {obs.label}")
    fy, fx = frame.shape
    inside = (mapped[..., 0] >= -0.5) & (mapped[..., 0] <= fy - 0.5) & (mapped[..., 1] >= -0.5)
    inside &= mapped[..., 1] <= fx - 0.5
    if not inside.any():
        raise InputError(f"observation {obs.label} does not overlap the frame")
    jac = grids.jacobian(((ny - 1) / 2, (nx - 1) / 2), obs.wcs, frame.wcs)
    block = _frequency_block(jac, geometry.canvas_shape)
    kernel = _kernel_block(obs, frame, jac, geometry.canvas_shape, block)
    coarse = tuple(
        min(fast_size(math.ceil(RESAMPLE_OVERSAMPLING * 2 * k) + 1), fast_size(MAX_COARSE_FACTOR * n))
        for k, n in zip(block, geometry.canvas_shape, strict=True)
    )
    kernel = kernel / _bspline_transfer(block, coarse)
    scale = coarse[0] * coarse[1] / (geometry.canvas_shape[0] * geometry.canvas_shape[1])
    pos = mapped + np.asarray(geometry.pad, np.float64)
    step = np.asarray(geometry.canvas_shape, np.float64) / np.asarray(coarse, np.float64)
    index, weight = _bspline_taps(pos / step, coarse)
    weight = weight * (grids.pixel_area_ratio(mapped) * scale)[..., None]
    dtype = obs.data.dtype
    return ResampledRenderer(
        data=obs.data,
        weights=obs.weights * to_device(inside, dtype),
        kernel_ft=to_device(kernel, jnp.result_type(dtype, jnp.complex64)),
        index=to_device(index.reshape(-1, 16), jnp.int32),
        tap_weights=to_device(weight.reshape(-1, 16), dtype),
        band_index=idx,
        block=block,
        coarse_shape=coarse,
        geometry=geometry,
    )


def _frequency_block(jac, canvas_shape) -> tuple[int, int]:
    """(Ky, Kx): the frame frequencies (in canvas DFT bins) whose image u = J^T k lies inside the
    observation's passband |u_y|, |u_x| <= 1/2 (the corners of that square, mapped back)."""
    corners = np.array([[0.5, 0.5], [0.5, -0.5], [-0.5, 0.5], [-0.5, -0.5]])
    k = np.linalg.solve(jac.T, corners.T).T  # frame cycles per pixel
    kmax = np.abs(k).max(axis=0)
    return tuple(int(min(math.ceil(km * n), (n - 1) // 2)) for km, n in zip(kmax, canvas_shape, strict=True))


def _block_frequencies(block, canvas_shape):
    """Frame frequencies (cycles/pixel) of the kept block: rows 0..Ky then -Ky..-1, cols 0..Kx."""
    (ky_n, kx_n), (ly, lx) = block, canvas_shape
    ky = np.concatenate([np.arange(ky_n + 1), np.arange(-ky_n, 0)]) / ly
    kx = np.arange(kx_n + 1) / lx
    return ky[:, None], kx[None, :]


def _kernel_block(obs, frame, jac, canvas_shape, block) -> np.ndarray:
    """D(k) on the kept block, per observation band, in float64."""
    if not isinstance(obs.psf, ArrayPSF):
        raise InputError(f"observation {obs.label}: resampling needs the PSF as an image (an ArrayPSF)")
    ky, kx = _block_frequencies(block, canvas_shape)
    uy = jac[0, 0] * ky + jac[1, 0] * kx  # u = J^T k: observation cycles per observation pixel
    ux = jac[0, 1] * ky + jac[1, 1] * kx
    inband = (np.abs(uy) <= 0.5) & (np.abs(ux) <= 0.5)
    psf = np.broadcast_to(np.asarray(obs.psf.array, np.float64), (len(obs.bands), *obs.psf_shape))
    h, w = psf.shape[-2:]
    qy, qx = np.arange(h) - h // 2, np.arange(w) - w // 2
    ey = np.exp(-2j * np.pi * uy.reshape(-1, 1) * qy)  # (n_k, h)
    ex = np.exp(-2j * np.pi * ux.reshape(-1, 1) * qx)  # (n_k, w)
    psf_ft = np.stack([((ey @ p) * ex).sum(-1) for p in psf]).reshape(len(psf), *uy.shape)
    psf_ft = np.where(inband, psf_ft, 0.0)
    psf_ft = np.where(np.abs(psf_ft) >= KERNEL_FLOOR * np.abs(psf_ft).max(axis=(-2, -1), keepdims=True), psf_ft, 0)
    model = _model_transfer(frame, canvas_shape, block)
    return psf_ft * model / (model**2 + 1e-4**2)


def _model_transfer(frame, canvas_shape, block):
    """Model PSF x frame pixel on the kept block (float64; from the full rfft grid)."""
    full = transfer_numpy(canvas_shape, frame.psf)
    if full is None:
        from ..ops.fourier import kgrid, pixel_ft

        ky, kx = kgrid(canvas_shape)
        full = np.asarray(frame.psf.fourier(ky, kx) * pixel_ft(ky, kx), np.float64)
    ky_n, kx_n = block
    rows = np.concatenate([np.arange(ky_n + 1), np.arange(canvas_shape[0] - ky_n, canvas_shape[0])])
    return full[rows][:, : kx_n + 1]


def _bspline_transfer(block, coarse):
    """Cubic B-spline transfer sinc^4 at the block's frequencies on the coarse grid."""
    ky_n, kx_n = block
    fy = np.concatenate([np.arange(ky_n + 1), np.arange(-ky_n, 0)]) / coarse[0]
    fx = np.arange(kx_n + 1) / coarse[1]
    return (np.sinc(fy)[:, None] ** 4) * (np.sinc(fx)[None, :] ** 4)


def _bspline_weights(t):
    """Cubic B-spline weights of the 4 taps floor(t) - 1 .. floor(t) + 2 at fractional part t."""
    t2, t3 = t * t, t * t * t
    return np.stack([(1 - t) ** 3 / 6, (3 * t3 - 6 * t2 + 4) / 6, (-3 * t3 + 3 * t2 + 3 * t + 1) / 6, t3 / 6], -1)


def _bspline_taps(pos, coarse):
    """Flat coarse-grid indices and weights (..., 16) of the 4 x 4 taps at ``pos`` (coarse units)."""
    base = np.floor(pos).astype(np.int64)
    frac = pos - base
    wy, wx = _bspline_weights(frac[..., 0]), _bspline_weights(frac[..., 1])
    iy = (base[..., 0, None] + np.arange(-1, 3)) % coarse[0]
    ix = (base[..., 1, None] + np.arange(-1, 3)) % coarse[1]
    index = iy[..., :, None] * coarse[1] + ix[..., None, :]
    weight = wy[..., :, None] * wx[..., None, :]
    return index.reshape(*pos.shape[:-1], 16), weight.reshape(*pos.shape[:-1], 16)


class ResampledRenderer(eqx.Module):
    """Arrays and static layout for rendering the model canvas into an observation on its own grid."""

    data: Array
    weights: Array
    kernel_ft: Array
    index: Array
    tap_weights: Array
    band_index: tuple[int, ...] = eqx.field(static=True)
    block: tuple[int, int] = eqx.field(static=True)
    coarse_shape: tuple[int, int] = eqx.field(static=True)
    geometry: Geometry = eqx.field(static=True)

    def __call__(self, canvas, sky=None):
        """PSF-match and resample the padded canvas (frame bands) onto the observation's pixels."""
        return self._inverse(self._forward(take_bands(canvas, self.band_index)), sky)

    def components(self, units, spectra, sky=None):
        """The image of components given as single-band unit canvases (n, H, W) and spectra
        (n, frame bands): one forward transform per component instead of one per band."""
        return self._inverse(combine_spectra(self._forward(units), spectra, self.band_index), sky)

    def _forward(self, c):
        """The passband's block of the canvases' transforms."""
        ky, kx = self.block
        # x first, keeping the passband's columns; then y on those columns only
        cols = jnp.fft.rfft(c, axis=-1)[..., : kx + 1]
        ft = jnp.fft.fft(cols, axis=-2)
        return jnp.concatenate([ft[:, : ky + 1], ft[:, -ky:]], axis=1) if ky else ft[:, :1]

    def _inverse(self, ft, sky):
        (ky, kx), (cy, cx) = self.block, self.coarse_shape
        ft = ft * self.kernel_ft
        # embed the block into the coarse grid's rfft layout and transform back
        zeros = jnp.zeros((ft.shape[0], cy - 2 * ky - 1, kx + 1), ft.dtype)
        ft = jnp.concatenate([ft[:, : ky + 1], zeros, ft[:, ky + 1 :]], axis=1)
        ft = jnp.pad(ft, ((0, 0), (0, 0), (0, cx // 2 + 1 - (kx + 1))))
        coeff = jnp.fft.irfft2(ft, s=(cy, cx)).reshape(ft.shape[0], -1)
        img = jnp.sum(coeff[:, self.index] * self.tap_weights, axis=-1).reshape(self.data.shape)
        return add_sky(img, sky, self.band_index)

    def log_likelihood(self, canvas, sky=None):
        return gaussian_log_likelihood(self(canvas, sky), self.data, self.weights)
