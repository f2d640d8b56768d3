"""Point-spread functions: analytic (Gaussian, Moffat) and pixelized per band.

A PSF gives its Fourier transform (for the model frame, which is rendered analytically) and/or a
pixel-integrated image (for observations, whose PSFs are usually images).
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from ..errors import InputError
from ..ops.fourier import interp_ln_k, pixel_ft
from ..ops.jit import to_device
from ..ops.profiles import moffat_table

#: Standard deviation (pixels) of the default model-frame PSF, a circular Gaussian: narrow
#: enough for well-sampled data (see :class:`~scarlet2.Frame`).
DEFAULT_MODEL_PSF_SIGMA = 0.7


class PSF(eqx.Module):
    """Base class."""

    def fourier(self, ky, kx):
        """FT of the continuous PSF (no pixel), unit flux."""
        raise NotImplementedError

    def fourier_numpy(self, ky, kx):
        """:meth:`fourier` in float64 numpy on the host, or None where not provided. Rendering
        then bakes the model PSF into a constant instead of computing it in the program."""
        return None

    def image(self, shape=None, n_bands=1):
        """Pixel-integrated PSF image(s), centred at ``shape // 2``, shape (n_bands, h, w)."""
        shape = tuple(shape or self.default_shape())
        # A 4x larger odd stamp so wings do not wrap, sampled 3x finer and decimated so that power
        # beyond the Nyquist frequency aliases in as it does for a real pixelized PSF.
        os_ = 3
        big = tuple(4 * s + 1 for s in shape)
        fine = tuple(b * os_ for b in big)
        ky = jnp.asarray(2 * np.pi * np.fft.fftfreq(fine[0], d=1 / os_)[:, None], jnp.float32)
        kx = jnp.asarray(2 * np.pi * np.fft.rfftfreq(fine[1], d=1 / os_)[None, :], jnp.float32)
        H, W = big
        ft = self.fourier(ky, kx) * pixel_ft(ky, kx) * jnp.exp(-1j * (ky * (H // 2) + kx * (W // 2)))
        img = (jnp.fft.irfft2(ft, s=fine) * os_**2)[::os_, ::os_]
        h, w = shape
        img = img[H // 2 - h // 2 : H // 2 - h // 2 + h, W // 2 - w // 2 : W // 2 - w // 2 + w]
        return jnp.broadcast_to(img, (n_bands, h, w))

    def default_shape(self):
        r = int(np.ceil(6 * self.sigma_equivalent())) | 1
        return (max(r * 2 + 1, 15),) * 2

    def sigma_equivalent(self) -> float:
        raise NotImplementedError


class GaussianPSF(PSF):
    """Circular Gaussian of standard deviation ``sigma`` pixels; the default model-frame PSF."""

    sigma: float = eqx.field(static=True)

    def __init__(self, sigma: float = DEFAULT_MODEL_PSF_SIGMA):
        if not sigma > 0:
            raise InputError(f"GaussianPSF sigma must be > 0, got {sigma}")
        self.sigma = float(sigma)

    def fourier(self, ky, kx):
        return jnp.exp(-0.5 * (ky**2 + kx**2) * self.sigma**2)

    def fourier_numpy(self, ky, kx):
        return np.exp(-0.5 * (ky**2 + kx**2) * self.sigma**2)

    def sigma_equivalent(self):
        return self.sigma


class MoffatPSF(PSF):
    """Circular Moffat profile ``(1 + (r/alpha)^2)^-beta`` given by FWHM (pixels) and beta > 1.

    Its FT (a Bessel-K expression) is computed by FFTLog, the same machinery as the Sersic profile.
    """

    fwhm: float = eqx.field(static=True)
    beta: float = eqx.field(static=True)

    def __init__(self, fwhm: float, beta: float = 3.0):
        if not beta > 1:
            raise InputError(f"MoffatPSF beta must be > 1 (finite flux), got {beta}")
        if not fwhm > 0:
            raise InputError(f"MoffatPSF fwhm must be > 0, got {fwhm}")
        self.fwhm, self.beta = float(fwhm), float(beta)

    @property
    def alpha(self):
        return self.fwhm / (2 * np.sqrt(2 ** (1 / self.beta) - 1))

    def fourier(self, ky, kx):
        table = jnp.asarray(moffat_table(self.beta), jnp.float32)
        return interp_ln_k(table, (ky**2 + kx**2) * self.alpha**2)

    def sigma_equivalent(self):
        # wings matter for the stamp size: use the radius holding ~99.5% of the flux
        return self.alpha * np.sqrt(0.005 ** (-1 / (self.beta - 1)) - 1) / 3


class ArrayPSF(PSF):
    """Pixelized PSF images per band, shape (n_bands, h, w), centred at (h//2, w//2) and
    normalised to unit sum (checked by :class:`~scarlet2.Observation`)."""

    array: Array

    def __init__(self, array: Float[ArrayLike, "bands h w"] | Float[ArrayLike, "h w"]):
        a = to_device(array, jnp.float32)
        if a.ndim == 2:
            a = a[None]
        if a.ndim != 3:
            raise InputError(f"ArrayPSF needs (band, y, x) or (y, x) images, got shape {a.shape}")
        self.array = a

    def image(self, shape=None, n_bands=1):
        if shape is not None and tuple(shape) != self.array.shape[-2:]:
            raise InputError(f"ArrayPSF has shape {self.array.shape[-2:]}, not {tuple(shape)}")
        return jnp.broadcast_to(self.array, (max(n_bands, self.array.shape[0]),) + self.array.shape[-2:])

    def default_shape(self):
        return self.array.shape[-2:]

    def sigma_equivalent(self):
        a = np.asarray(self.array, np.float64)
        h, w = a.shape[-2:]
        y, x = np.mgrid[:h, :w]
        m = a.sum((-2, -1))
        var = ((a * ((y - h // 2) ** 2 + (x - w // 2) ** 2)).sum((-2, -1)) / m) / 2
        return float(np.sqrt(np.clip(var, 1e-6, None)).min())
