"""Canvas -> observation: the difference kernel (observed PSF over model PSF) and the
convolution that turns the model canvas into an observation's pixels."""

from __future__ import annotations

import warnings

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

from ..errors import InputError
from ..model.frame import Frame
from ..model.observation import Observation
from ..model.psf import ArrayPSF
from ..ops.fourier import center_psf, kgrid, pixel_ft, transfer_numpy
from ..ops.jit import to_device
from .geometry import Geometry, grid_offset


def observation_renderer(observation: Observation, frame: Frame, geometry: Geometry) -> ObservationRenderer:
    """The compiled-code view of ``observation``: data, weights and the difference kernel
    mapping the model frame (model PSF) to this observation (its PSF)."""
    obs = observation
    missing = [b for b in obs.bands if b not in frame.bands]
    if missing:
        raise InputError(f"Observation bands {missing} are not in the frame's bands {frame.bands}")
    offset = grid_offset(obs, frame)
    if offset is None:
        raise InputError(
            f"observation {obs.label} is not on the frame's pixel grid (it needs resample.resampled_renderer)"
        )
    idx = tuple(frame.bands.index(b) for b in obs.bands)
    kernel, gain = _kernel(obs.psf, len(obs.bands), obs.psf_shape, frame.psf, geometry.canvas_shape, obs.data.dtype)
    _warn_kernel_gain(gain, obs.bands)
    return ObservationRenderer(obs.data, obs.weights, kernel, idx, geometry, offset)


#: :func:`observation_renderer` warns when the difference kernel amplifies a frequency by more
#: than this: the model frame's PSF is then not narrower than the observation's.
KERNEL_GAIN_WARNING = 2.0


def _warn_kernel_gain(gain, bands):
    if gain is None:
        return
    wide = [f"{b!r} ({g:.1f}x)" for b, g in zip(bands, gain, strict=True) if g > KERNEL_GAIN_WARNING]
    if wide:
        warnings.warn(
            f"band {', '.join(wide)}: the observation's PSF is narrower than the model frame's, so the "
            "difference kernel deconvolves (amplifies high frequencies by that much); give the Frame "
            "a narrower psf=, e.g. GaussianPSF(sigma) below the observation's",
            UserWarning,
            stacklevel=2,
        )


def _kernel(psf, n_bands, psf_shape, model_psf, canvas_shape, dtype):
    """The difference kernel's FT and its largest modulus per band (host values; None when
    traced): on the host in float64 when the observed PSF is an image and the model PSF has a
    numpy form (the usual case: no compiled program), else compiled."""
    if isinstance(psf, ArrayPSF):
        images = np.broadcast_to(np.asarray(psf.array, np.float64), (max(n_bands, psf.array.shape[0]), *psf_shape))
        host = difference_kernel_numpy(images, model_psf, canvas_shape)
        if host is not None:
            return to_device(host, jnp.result_type(dtype, jnp.complex64)), np.abs(host).max(axis=(-2, -1))
    kernel = _kernel_jit(psf, n_bands, psf_shape, model_psf, canvas_shape, dtype)
    if isinstance(kernel, jax.core.Tracer):
        return kernel, None
    return kernel, np.abs(np.asarray(kernel)).max(axis=(-2, -1))


@eqx.filter_jit
def _kernel_jit(psf, n_bands, psf_shape, model_psf, canvas_shape, dtype):
    return difference_kernel(psf.image(psf_shape, n_bands=n_bands), model_psf, canvas_shape, dtype=dtype)


def difference_kernel_numpy(psf_images, model_psf, canvas_shape, eps=1e-4):
    """:func:`difference_kernel` in float64 numpy, or None when the model PSF has no numpy form."""
    model_ft = transfer_numpy(canvas_shape, model_psf)
    if model_ft is None:
        return None
    psf_ft = np.fft.rfft2(center_psf(psf_images, canvas_shape, xp=np))
    return psf_ft * model_ft / (model_ft**2 + eps**2)


def difference_kernel(psf_images, model_psf, canvas_shape, eps=1e-4, dtype=jnp.float32):
    """FT of the kernel that turns model-PSF images into observed-PSF images.

    ``psf_images`` are pixel-integrated, so their DFT is F_psf * sinc; the model frame holds
    F_model * sinc. The ratio is Wiener-regularised where the model PSF has no power.
    """
    ky, kx = kgrid(canvas_shape, dtype)
    psf_ft = jnp.fft.rfft2(center_psf(jnp.asarray(psf_images, dtype), canvas_shape))
    model_ft = model_psf.fourier(ky, kx) * pixel_ft(ky, kx)
    return psf_ft * model_ft / (model_ft**2 + eps**2)


def take_bands(x, index: tuple[int, ...]):
    """``x[index]`` along the first axis for a static ``index``, as slices of its consecutive
    runs: a gather's gradient is a scatter-add, which XLA's CPU backend compiles into a loop
    of its own; the slices' gradient is pads that fuse into one kernel."""
    runs, start = [], 0
    for i in range(1, len(index) + 1):
        if i == len(index) or index[i] != index[i - 1] + 1:
            runs.append(x[index[start] : index[i - 1] + 1])
            start = i
    return runs[0] if len(runs) == 1 else jnp.concatenate(runs)


class ObservationRenderer(eqx.Module):
    """Arrays and static layout for rendering the model canvas into one observation."""

    data: Array
    weights: Array
    kernel_ft: Array
    band_index: tuple[int, ...] = eqx.field(static=True)
    geometry: Geometry = eqx.field(static=True)
    offset: tuple[int, int] = eqx.field(static=True, default=(0, 0))

    def __call__(self, canvas, sky=None):
        """Convolve the padded canvas (frame bands), crop to the observation, add the sky."""
        return self._inverse(jnp.fft.rfft2(take_bands(canvas, self.band_index)), sky)

    def components(self, units, spectra, sky=None):
        """The image of components given as single-band unit canvases (n, H, W) and spectra
        (n, frame bands): one forward FFT per component instead of one per band."""
        return self._inverse(combine_spectra(jnp.fft.rfft2(units), spectra, self.band_index), sky)

    def _inverse(self, ft, sky):
        g = self.geometry
        (py, px), (ny, nx) = g.pad, self.data.shape[-2:]
        py, px = py + self.offset[0], px + self.offset[1]
        # the inverse FFT one axis at a time, cropping the rows in between: the last pass (and
        # the first of the gradient's forward FFT) runs on the frame's rows only, not the canvas's
        rows = jnp.fft.ifft(ft * self.kernel_ft, axis=-2)[:, py : py + ny]
        img = jnp.fft.irfft(rows, n=g.canvas_shape[1], axis=-1)[:, :, px : px + nx]
        return add_sky(img, sky, self.band_index)

    def log_likelihood(self, canvas, sky=None):
        return gaussian_log_likelihood(self(canvas, sky), self.data, self.weights)


def combine_spectra(ft, spectra, band_index: tuple[int, ...]):
    """Per observation band, the spectra-weighted sum of the components' transforms ``ft``
    (n, ...): the transform of their canvas, by linearity."""
    s = take_bands(spectra.T, band_index).astype(ft.dtype)  # (observation bands, n)
    return jnp.einsum("bn,n...->b...", s, ft, precision=jax.lax.Precision.HIGHEST)


def add_sky(img, sky, band_index: tuple[int, ...]):
    """``img`` plus the flat sky of its bands (``sky`` over the frame's bands, or None)."""
    return img if sky is None else img + take_bands(sky, band_index)[:, None, None]


def gaussian_log_likelihood(model, data, weights):
    """-chi^2 / 2 of ``model`` given ``data`` and inverse-variance ``weights``."""
    return -0.5 * jnp.sum(weights * (model - data) ** 2)
