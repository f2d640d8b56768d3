"""Morphologies: unit-flux profiles rendered in a source's box.

Analytic profiles are evaluated in Fourier space, where PSF convolution, pixel integration (a sinc)
and sub-pixel centring (a phase) are exact products; only the box's periodicity approximates.
Free-form arrays are shifted by the same phase factor.
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float
from scipy.special import gammaincc, gammaincinv

from ..errors import InputError
from ..ops.fourier import box_transfer, kgrid, phase, quadratic_profile, shear_quadratic
from ..ops.jit import to_device
from ..ops.profiles import gaussian_ft, sersic_bn, sersic_ft, spergel_c_table, spergel_enclosed, spergel_ft
from .parameter import Parameter, as_parameter, value_of

#: A value or a :class:`~scarlet2.Parameter` (constraint, prior, fixed) for a shape field.
ParamLike = ArrayLike | Parameter


def _shape_params(ellipticity, q, angle):
    """Either (e1, e2) reduced shear or (q, angle) -> the shape fields of a profile."""
    if ellipticity is not None and (q is not None or angle is not None):
        raise InputError("Give either ellipticity=(e1, e2) or q= and angle=, not both")
    if q is not None:
        return None, as_parameter(q, (0.05, 1.0), stepsize=0.03), as_parameter(angle or 0.0, None, stepsize=0.03)
    if ellipticity is None:
        ellipticity = jnp.zeros(2)
    return as_parameter(ellipticity, "unit_disk", stepsize=0.03), None, None


class Morphology(eqx.Module):
    """Base class. Subclasses implement ``fourier(ky, kx)`` (unit flux, centred at 0) or ``render``."""

    def fourier(self, ky, kx):
        raise NotImplementedError

    def render(self, shape, center, model_psf):
        """Image in a box of ``shape`` with the profile centred at box pixel ``center`` (y, x),
        convolved with the model-frame PSF and integrated over pixels."""
        dtype = jnp.result_type(center, jnp.float32)
        ky, kx = kgrid(shape, dtype)
        ft = self.fourier(ky, kx) * box_transfer(shape, model_psf, dtype)
        return jnp.fft.irfft2(ft * phase(ky, kx, center[0], center[1]), s=shape)

    def extent(self) -> float:
        """Radius (pixels) holding the profile down to ~1e-3 of its peak, for box sizing."""
        raise NotImplementedError

    def flux_outside(self, radius: float) -> float:
        """Fraction of the unit flux beyond the ellipse of major semi-axis ``radius`` pixels
        (host values, before the PSF): an upper bound on the flux a box of half-width
        ``radius`` cannot hold, which its FFT wraps around into the box. 0 for profiles that
        live in the box (points, pixel arrays)."""
        return 0.0


class _Elliptical(Morphology):
    ellipticity: Parameter | None
    q: Parameter | None
    angle: Parameter | None

    def g1g2(self, xp=jnp):
        """Reduced shear (g1, g2); ``xp=numpy`` on the host (no device program)."""
        if self.ellipticity is not None:
            e = xp.asarray(value_of(self.ellipticity))
            return e[..., 0], e[..., 1]
        q, a = xp.asarray(value_of(self.q)), xp.asarray(value_of(self.angle))
        g = (1 - q) / (1 + q)
        return g * xp.cos(2 * a), g * xp.sin(2 * a)

    def quadratic(self, ky, kx, scale):
        """Coefficients (a, b, c) of k^2 = |S k|^2 scale^2 (:func:`~scarlet2.ops.fourier.shear_quadratic`)
        in the grid's precision."""
        g1, g2 = self.g1g2()
        dtype = jnp.result_type(ky, kx, g1, scale)
        return shear_quadratic(g1.astype(dtype), g2.astype(dtype), jnp.asarray(scale, dtype) ** 2)

    def _elongation(self):
        g1, g2 = self.g1g2(np)  # host values: box sizing and leakage run after fits, outside programs
        g = float(np.hypot(g1, g2))
        return np.sqrt((1 + g) / (1 - g))

    def _inscribed(self, radius):
        """Circularised radius of the profile's ellipse with major semi-axis ``radius``."""
        return radius / self._elongation()


class Gaussian(_Elliptical):
    """Elliptical Gaussian of standard deviation ``sigma`` (pixels, geometric mean of the axes)."""

    sigma: Parameter

    def __init__(
        self,
        sigma: ParamLike,
        ellipticity: ParamLike | None = None,
        q: ParamLike | None = None,
        angle: ParamLike | None = None,
    ):
        self.sigma = as_parameter(sigma, "positive", stepsize=0.03)
        self.ellipticity, self.q, self.angle = _shape_params(ellipticity, q, angle)

    def fourier(self, ky, kx):
        return quadratic_profile(gaussian_ft, (), self.quadratic(ky, kx, value_of(self.sigma)), ky, kx)

    def extent(self):
        return 3.7 * float(value_of(self.sigma)) * self._elongation()

    def flux_outside(self, radius):
        return float(np.exp(-0.5 * (self._inscribed(radius) / float(value_of(self.sigma))) ** 2))


#: Range of the Sersic index a fit may explore.
SERSIC_INDEX_BOUNDS = (0.3, 8.0)


class Sersic(_Elliptical):
    """Sersic profile ``exp(-b_n (r / r_e)^(1/n))`` with exact b_n; r_e in pixels (circularised).

    The Fourier transform comes from an FFTLog Hankel transform of the radial profile, so the
    profile is exactly pixel-integrated and PSF-convolved, including a high-n core.
    """

    n: Parameter
    r_e: Parameter

    def __init__(
        self,
        n: ParamLike = 1.0,
        r_e: ParamLike = 2.0,
        ellipticity: ParamLike | None = None,
        q: ParamLike | None = None,
        angle: ParamLike | None = None,
    ):
        self.n = as_parameter(n, SERSIC_INDEX_BOUNDS, stepsize=0.05)
        self.r_e = as_parameter(r_e, "positive", stepsize=0.03)
        self.ellipticity, self.q, self.angle = _shape_params(ellipticity, q, angle)

    def fourier(self, ky, kx):
        return quadratic_profile(sersic_ft, (value_of(self.n),), self.quadratic(ky, kx, value_of(self.r_e)), ky, kx)

    def extent(self):
        n = float(value_of(self.n))
        b = float(sersic_bn(jnp.asarray(n)))
        return float(value_of(self.r_e)) * (np.log(1e3) / b + 1) ** n * self._elongation()

    def flux_outside(self, radius):
        n, r_e = float(value_of(self.n)), float(value_of(self.r_e))
        return float(gammaincc(2 * n, gammaincinv(2 * n, 0.5) * (self._inscribed(radius) / r_e) ** (1 / n)))


class Spergel(_Elliptical):
    """Spergel (2010) profile of index ``nu`` in [-0.85, 4]; analytic FT (1 + k^2 r0^2)^-(1+nu)."""

    nu: Parameter
    r_e: Parameter

    def __init__(
        self,
        nu: ParamLike = 0.5,
        r_e: ParamLike = 2.0,
        ellipticity: ParamLike | None = None,
        q: ParamLike | None = None,
        angle: ParamLike | None = None,
    ):
        self.nu = as_parameter(nu, (-0.85, 4.0), stepsize=0.05)
        self.r_e = as_parameter(r_e, "positive", stepsize=0.03)
        self.ellipticity, self.q, self.angle = _shape_params(ellipticity, q, angle)

    def r0(self):
        nus, c = spergel_c_table()
        nu = value_of(self.nu)
        return value_of(self.r_e) / jnp.interp(nu, jnp.asarray(nus, nu.dtype), jnp.asarray(c, nu.dtype))

    def fourier(self, ky, kx):
        return quadratic_profile(spergel_ft, (value_of(self.nu),), self.quadratic(ky, kx, self.r0()), ky, kx)

    def extent(self):
        return 8 * float(value_of(self.r_e)) * self._elongation()

    def flux_outside(self, radius):
        nus, c = spergel_c_table()
        nu = float(value_of(self.nu))
        r0 = float(value_of(self.r_e)) / np.interp(nu, nus, c)  # r0() on the host: no device ops
        x = self._inscribed(radius) / r0
        return float(1 - spergel_enclosed(x, nu)) if x > 0 else 1.0


class Point(Morphology):
    """A point source: after convolution with the difference kernel it is the observation's PSF."""

    def fourier(self, ky, kx):
        return jnp.ones(jnp.broadcast_shapes(ky.shape, kx.shape), ky.dtype)

    def extent(self):
        return 0.0


class ArrayMorphology(Morphology):
    """Free-form pixel morphology in the model frame (already carrying the model PSF), shifted by
    sub-pixel amounts with a Fourier phase. Its shape (odd) defines the box.

    ``support`` (optional, the array's shape): the pixels it may light, 0 elsewhere; a free
    form beside neighbours then cannot grow into their light.
    """

    array: Parameter
    support: Array | None = None

    def __init__(self, array: Float[ArrayLike, "h w"] | Parameter, constraint="positive", support=None):
        a = value_of(array)
        if a.ndim != 2 or a.shape[0] % 2 == 0 or a.shape[1] % 2 == 0:
            raise InputError(f"ArrayMorphology needs a 2-d array of odd shape, got {a.shape}")
        if constraint == "positive" and not isinstance(array, Parameter):
            a = jnp.clip(jnp.asarray(a, jnp.float32), 1e-6 * float(jnp.max(jnp.abs(a))) + 1e-30, None)
        self.array = as_parameter(a if not isinstance(array, Parameter) else array, constraint, stepsize=0.05)
        if support is not None:
            support = np.asarray(support)
            if support.shape != a.shape:
                raise InputError(f"ArrayMorphology support has shape {support.shape}, its array {a.shape}")
            support = to_device((support != 0).astype(np.float32), value_of(self.array).dtype)
        self.support = support

    def image(self, xp=jnp):
        """The pixel values it renders (the array, zero beyond its support); ``xp=numpy``: on the host."""
        a = xp.asarray(value_of(self.array))
        return a if self.support is None else a * xp.asarray(self.support)

    def render(self, shape, center, model_psf):
        a = self.image()
        if a.shape != tuple(shape):
            raise InputError(f"ArrayMorphology of shape {a.shape} cannot render into box {tuple(shape)}")
        ky, kx = kgrid(shape, jnp.result_type(center, jnp.float32))
        h, w = shape
        shift = phase(ky, kx, center[0] - h // 2, center[1] - w // 2)
        return jnp.fft.irfft2(jnp.fft.rfft2(a) * shift, s=shape)

    def extent(self):
        return max(value_of(self.array).shape) / 2
