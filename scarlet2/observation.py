"""Observations: data, inverse-variance weights, PSF, bands and WCS, with input validation."""

from __future__ import annotations

import math
import warnings
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

from ._jit import to_device
from .fourier import center_psf, fast_size, kgrid, pixel_ft, transfer_numpy
from .frame import Frame, _celestial
from .psf import PSF, ArrayPSF

#: Model light is kept up to this fraction of the largest PSF stamp's radius beyond the frame's
#: edges (more where the FFT size leaves room; at most the whole radius, which is exact). Light
#: farther out reaches the frame only through the stamp's outer part: on the HSC blend (43 x 43
#: stamps) 0.5 renders the fitted model within 6e-6 of its peak of a 100-pixel pad (the whole
#: radius: 4.5e-6, float32 round-off) on a 90 x 80 canvas instead of 100 x 90, ~20% less FFT
#: work per iteration (docs/performance.md). Set it to 1.0 to keep all the light the stamps reach.
MODEL_MARGIN = 0.5


class Geometry(NamedTuple):
    """Static layout of the padded canvas the scene is rendered into (hashable).

    The frame sits at offset ``pad`` in a canvas of ``canvas_shape``; the observations' kernels
    reach ``reach`` pixels (the largest PSF stamp's radius). Model light is kept in the frame
    plus ``pad`` on every side (``kept_shape``), and the canvas is at least frame + ``pad`` +
    ``reach`` long on each axis: kept light that the FFT wraps around lands more than ``reach``
    from every frame pixel, so it never reaches the frame.
    """

    frame_shape: tuple[int, int]
    pad: tuple[int, int]
    canvas_shape: tuple[int, int]
    reach: tuple[int, int]

    @classmethod
    def build(cls, frame: Frame, observations, margin: float | None = None) -> Geometry:
        """The layout for ``observations`` of ``frame``; ``margin`` defaults to :data:`MODEL_MARGIN`."""
        margin = MODEL_MARGIN if margin is None else margin
        if not 0 <= margin <= 1:
            raise ValueError(f"margin must be in [0, 1] (a fraction of the PSF stamp's radius), got {margin}")
        reach = tuple(max(o.psf_shape[axis] // 2 for o in observations) for axis in (0, 1))
        pad, canvas = [], []
        for n, r in zip(frame.shape, reach, strict=True):
            # a frame pixel sees canvas pixels within r: wrap-around stays out of the frame
            # when the canvas is >= frame + r + the kept margin on either side
            size = fast_size(n + r + math.ceil(margin * r))
            pad.append(min(r, size - n - r))  # the FFT size's slack widens the margin
            canvas.append(size)
        return cls(tuple(frame.shape), tuple(pad), tuple(canvas), reach)

    @property
    def kept_shape(self) -> tuple[int, int]:
        """The canvas's leading rows and columns that hold model light: the frame and ``pad``
        around it (the canvas beyond is zero)."""
        return tuple(min(c, n + 2 * p) for c, n, p in zip(self.canvas_shape, self.frame_shape, self.pad, strict=True))


class Observation(eqx.Module):
    """Images of one instrument on the model frame's pixel grid.

    Parameters
    ----------
    images
        (n_bands, ny, nx) data; may be NaN where the weight is 0.
    weights
        Inverse variances, same shape (or one (ny, nx) plane for all bands); 0 masks a pixel.
    psf
        :class:`~scarlet2.ArrayPSF` (normalized, centred images per band) or an analytic PSF.
    bands
        Band names, a subset of the frame's bands.
    wcs
        Optional astropy WCS.
    variance
        Instead of ``weights``: variances, same shape (or one plane); ``inf`` masks a pixel,
        values <= 0 or NaN raise.
    dtype
        Computation dtype (default float32).

    Raises
    ------
    ValueError
        Naming the band and the number of pixels for NaN/inf data in unmasked pixels, negative or
        non-finite weights, variance <= 0 or NaN, a non-finite PSF, disagreeing shapes, a band
        list of the wrong length or with repeated names.
    """

    data: Array
    weights: Array
    psf: PSF
    bands: tuple[str, ...] = eqx.field(static=True)
    wcs: Any = eqx.field(static=True, default=None)

    def __init__(self, images, weights=None, psf=None, bands=None, wcs=None, variance=None, dtype=jnp.float32):
        data = np.asarray(images, dtype=np.float64)
        if data.ndim == 2:
            data = data[None]
        if data.ndim != 3:
            raise ValueError(f"images must be (band, y, x), got shape {data.shape}")
        nb = data.shape[0]
        bands = tuple(str(b) for b in (bands if bands is not None else range(nb)))
        if len(bands) != nb:
            raise ValueError(f"{len(bands)} band names {bands} for {nb} image planes")
        repeated = sorted({b for b in bands if bands.count(b) > 1})
        if repeated:
            raise ValueError(f"band names must be unique, {repeated} repeated in {bands}")
        if weights is None and variance is None:
            raise ValueError("Give weights= (inverse variance) or variance=")
        if weights is not None and variance is not None:
            raise ValueError("Give weights= or variance=, not both")
        if variance is not None:
            var = np.asarray(variance, dtype=np.float64)
            if var.ndim == 2:
                var = np.broadcast_to(var, data.shape)
            _check_shape("variance", var, data.shape)
            # as in the Dataset schema: infinite variance masks a pixel; zero, negative or NaN
            # variance is an error (an infinite or undefined weight), not a silent mask
            for b, v in zip(bands, var, strict=True):
                bad = int(np.sum(~(v > 0)))
                if bad:
                    raise ValueError(
                        f"band {b!r}: {bad} pixels have variance <= 0 or NaN "
                        "(give them variance inf, or weight 0, to mask them)"
                    )
            w = 1.0 / var
        else:
            w = np.asarray(weights, dtype=np.float64)
            if w.ndim == 2:
                w = np.broadcast_to(w, data.shape)
            _check_shape("weights", w, data.shape)
        for b, d, wb in zip(bands, data, w, strict=True):
            bad = int(np.sum(~np.isfinite(wb)))
            if bad:
                raise ValueError(f"band {b!r}: {bad} pixels have non-finite weights")
            neg = int(np.sum(wb < 0))
            if neg:
                raise ValueError(f"band {b!r}: {neg} pixels have negative weights")
            bad = int(np.sum(~np.isfinite(d) & (wb > 0)))
            if bad:
                raise ValueError(f"band {b!r}: {bad} unmasked pixels are NaN or inf (give them weight 0 to mask them)")
        if psf is None:
            raise ValueError("An Observation needs a psf")
        if not isinstance(psf, PSF):
            psf = ArrayPSF(psf)
        if isinstance(psf, ArrayPSF):
            psf = ArrayPSF(_check_psf(np.asarray(psf.array, np.float64), bands))
        self.data = to_device(np.where(w > 0, np.nan_to_num(data), 0.0), dtype)
        self.weights = to_device(w, dtype)
        self.psf = psf
        self.bands = bands
        self.wcs = _celestial(wcs)

    @property
    def shape(self):
        return tuple(self.data.shape)

    @property
    def psf_shape(self):
        return tuple(self.psf.default_shape())

    def psf_images(self):
        return self.psf.image(self.psf_shape, n_bands=len(self.bands))

    def noise_rms(self):
        """Per-band median noise rms over unmasked pixels."""
        w = np.asarray(self.weights)
        return np.array([np.median(1 / np.sqrt(wb[wb > 0])) if np.any(wb > 0) else np.inf for wb in w])

    def n_pixels(self) -> int:
        return int(np.sum(np.asarray(self.weights) > 0))

    def renderer(self, frame: Frame, geometry: Geometry) -> ObservationRenderer:
        """The compiled-code view of this observation: data, weights and the difference kernel
        mapping the model frame (model PSF) to this observation (its PSF)."""
        missing = [b for b in self.bands if b not in frame.bands]
        if missing:
            raise ValueError(f"Observation bands {missing} are not in the frame's bands {frame.bands}")
        if self.data.shape[-2:] != frame.shape:
            raise ValueError(
                f"Observation of shape {self.data.shape[-2:]} is not on the frame's grid {frame.shape}; "
                "resampling to other grids is a separate rendering step"
            )
        idx = tuple(frame.bands.index(b) for b in self.bands)
        kernel, gain = _kernel(
            self.psf, len(self.bands), self.psf_shape, frame.psf, geometry.canvas_shape, self.data.dtype
        )
        _warn_kernel_gain(gain, self.bands)
        return ObservationRenderer(self.data, self.weights, kernel, idx, geometry)


#: :meth:`Observation.renderer` warns when the difference kernel amplifies a frequency by more
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

    def __call__(self, canvas, sky=None):
        """Convolve the padded canvas (frame bands), crop to the observation, add the sky."""
        g = self.geometry
        c = take_bands(canvas, self.band_index)
        (py, px), (ny, nx) = g.pad, g.frame_shape
        # the inverse FFT one axis at a time, cropping the rows in between: the last pass (and
        # the first of the gradient's forward FFT) runs on the frame's rows only, not the
        # canvas's (~15% less FFT work per iteration on the HSC blend)
        rows = jnp.fft.ifft(jnp.fft.rfft2(c) * self.kernel_ft, axis=-2)[:, py : py + ny]
        img = jnp.fft.irfft(rows, n=g.canvas_shape[1], axis=-1)[:, :, px : px + nx]
        if sky is not None:
            img = img + take_bands(sky, self.band_index)[:, None, None]
        return img

    def log_likelihood(self, canvas, sky=None):
        r = self(canvas, sky) - self.data
        return -0.5 * jnp.sum(self.weights * r**2)


def _check_shape(name, arr, shape):
    if arr.shape != shape:
        raise ValueError(f"{name} has shape {arr.shape}, images have shape {shape}")


def _check_psf(psf, bands):
    if psf.shape[0] == 1 and len(bands) > 1:
        psf = np.broadcast_to(psf, (len(bands),) + psf.shape[1:])
    if psf.shape[0] != len(bands):
        raise ValueError(f"PSF has {psf.shape[0]} planes for {len(bands)} bands {bands}")
    out = np.empty_like(psf)
    for i, (b, p) in enumerate(zip(bands, psf, strict=True)):
        bad = int(np.sum(~np.isfinite(p)))
        if bad:
            raise ValueError(f"band {b!r}: PSF has {bad} non-finite pixels")
        s = p.sum()
        if not s > 0:
            raise ValueError(f"band {b!r}: PSF sums to {s}, not a positive flux")
        out[i] = p / s  # images are normalised to unit sum (documented; deviations are common)
    return out
