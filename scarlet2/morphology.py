"""Morphologies: unit-flux profiles rendered in a source's box.

Analytic profiles are evaluated in Fourier space, where PSF convolution, pixel integration (a sinc)
and sub-pixel centring (a phase) are exact products; only the box's periodicity approximates.
Free-form arrays are shifted by the same phase factor.
"""

from __future__ import annotations

import functools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from scipy.optimize import brentq
from scipy.special import gamma as gamma_fn
from scipy.special import gammaincc, gammaincinv, gammaln, kv

from . import _fftlog
from .fourier import (
    box_transfer,
    kgrid,
    ln_k_bounds,
    ln_k_index,
    ln_k_step,
    phase,
    quadratic_profile,
    shear_quadratic,
)
from .parameter import Parameter, as_parameter, value_of


def _shape_params(ellipticity, q, angle):
    """Either (e1, e2) reduced shear or (q, angle) -> the shape fields of a profile."""
    if ellipticity is not None and (q is not None or angle is not None):
        raise ValueError("Give either ellipticity=(e1, e2) or q= and angle=, not both")
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
        """Coefficients (a, b, c) of k^2 = |S k|^2 scale^2 (:func:`~scarlet2.fourier.shear_quadratic`)
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


def _gaussian_ft(theta, k2, derivatives=False):
    """exp(-k^2 / 2): a unit Gaussian's FT, its size in k^2 (:func:`~scarlet2.fourier.quadratic_profile`)."""
    value = jnp.exp(-0.5 * k2)
    return (value, (), -0.5 * value) if derivatives else value


class Gaussian(_Elliptical):
    """Elliptical Gaussian of standard deviation ``sigma`` (pixels, geometric mean of the axes)."""

    sigma: Parameter

    def __init__(self, sigma, ellipticity=None, q=None, angle=None):
        self.sigma = as_parameter(sigma, "positive", stepsize=0.03)
        self.ellipticity, self.q, self.angle = _shape_params(ellipticity, q, angle)

    def fourier(self, ky, kx):
        return quadratic_profile(_gaussian_ft, (), self.quadratic(ky, kx, value_of(self.sigma)), ky, kx)

    def extent(self):
        return 3.7 * float(value_of(self.sigma)) * self._elongation()

    def flux_outside(self, radius):
        return float(np.exp(-0.5 * (self._inscribed(radius) / float(value_of(self.sigma))) ** 2))


def sersic_bn(n):
    """Exact b_n with P(2n, b_n) = 1/2, by Newton steps from Ciotti & Bertin (1999); differentiable."""
    a = 2 * n
    b = 2 * n - 1 / 3 + 4 / (405 * n) + 46 / (25515 * n**2)
    b = jnp.maximum(b, 1e-3)
    for _ in range(5):
        f = jax.scipy.special.gammainc(a, b) - 0.5
        logdf = (a - 1) * jnp.log(b) - b - jax.scipy.special.gammaln(a)
        b = jnp.maximum(b - f / jnp.exp(logdf), 1e-4)
    return b


SERSIC_N_GRID = np.linspace(0.25, 8.5, 166)  # step 0.05; cubic interpolation in n


@functools.cache
def _sersic_tables():
    """Unit-flux FTs of Sersic profiles (r_e = 1) for the n grid, float64 FFTLog, made once."""
    r = _fftlog.radii()
    rows = []
    for n in SERSIC_N_GRID:
        b = gammaincinv(2 * n, 0.5)
        flux = 2 * np.pi * n * np.exp(gammaln(2 * n) - 2 * n * np.log(b))
        rows.append(_fftlog.hankel0(np.exp(-b * r ** (1 / n))) / flux)
    return np.asarray(rows)  # float64; cast to the computation dtype where used


def _catmull_rom_weights(t):
    """Weights of the 4 neighbouring rows (i-1 .. i+2) for Catmull-Rom interpolation at i + t."""
    t2, t3 = t * t, t * t * t
    return 0.5 * jnp.stack([-t + 2 * t2 - t3, 2 - 5 * t2 + 3 * t3, t + 4 * t2 - 3 * t3, t3 - t2])


def _catmull_rom_slopes(t):
    """d/dt of :func:`_catmull_rom_weights`."""
    t2 = t * t
    return 0.5 * jnp.stack([-1 + 4 * t - 3 * t2, -10 * t + 9 * t2, 1 + 8 * t - 9 * t2, 3 * t2 - 2 * t])


def _sersic_ft(theta, k2, derivatives=False):
    """Unit-flux Sersic FT (r_e = 1) of index ``theta = (n,)`` at a flat |k|^2 = ``k2``; with
    ``derivatives`` also its partial derivatives in n and in k2, from the same table windows
    (:func:`~scarlet2.fourier.quadratic_profile`)."""
    (n,) = theta
    tables = jnp.asarray(_sersic_tables(), jnp.result_type(k2, jnp.float32))
    h = SERSIC_N_GRID[1] - SERSIC_N_GRID[0]
    x = (n - SERSIC_N_GRID[0]) / h
    i = jnp.clip(jnp.floor(x).astype(jnp.int32), 1, len(SERSIC_N_GRID) - 3)
    slab = jax.lax.dynamic_slice_in_dim(tables, i - 1, 4, axis=0)  # rows i-1 .. i+2
    w_n = _catmull_rom_weights(x - i).astype(tables.dtype)
    j, s = ln_k_index(k2)
    windows = jax.vmap(lambda jj: jax.lax.dynamic_slice_in_dim(slab, jj, 2, axis=1))(j)
    slope = windows[:, :, 1] - windows[:, :, 0]
    at_k = windows[:, :, 0] + s[:, None] * slope  # (P, 4)
    # a product and a 4-term sum, not a dot: XLA fuses it (and a GPU's default float32 dot
    # would round to tf32)
    value = jnp.sum(at_k * w_n, axis=-1)
    if not derivatives:
        return value
    d_n = jnp.sum(at_k * (_catmull_rom_slopes(x - i) / h).astype(tables.dtype), axis=-1)
    # linear in ln k = ln(k2) / 2 between grid points; 0 where k2 is clipped to the table
    lo, hi = ln_k_bounds()
    inside = (k2 > lo) & (k2 < hi)
    # divide by 1 outside (the k = 0 pixel): an inf in the unused branch of where would make
    # the derivative of this derivative NaN (reverse-over-reverse Hessians)
    d_k2 = jnp.where(inside, jnp.sum(slope * w_n, axis=-1) / (2 * ln_k_step() * jnp.where(inside, k2, 1.0)), 0.0)
    return value, (d_n,), d_k2


def sersic_fourier(n, k2):
    """Unit-flux FT of a Sersic profile with r_e = 1 at |k|^2 = ``k2``, for a (traced) scalar n.

    Catmull-Rom in n (C1, so gradients in n are smooth) between float64-computed tables, linear
    in ln k. Each k gathers its 4 x 2 table window in one slice and weights it: the tables are
    constants, so the gradient (in n and in k) needs no scatter.
    """
    return _sersic_ft((n,), k2.ravel()).reshape(k2.shape)


class Sersic(_Elliptical):
    """Sersic profile ``exp(-b_n (r / r_e)^(1/n))`` with exact b_n; r_e in pixels (circularised).

    The Fourier transform comes from an FFTLog Hankel transform of the radial profile, so the
    profile is exactly pixel-integrated and PSF-convolved, including a high-n core.
    """

    n: Parameter
    r_e: Parameter

    def __init__(self, n=1.0, r_e=2.0, ellipticity=None, q=None, angle=None):
        self.n = as_parameter(n, (0.3, 8.0), stepsize=0.05)
        self.r_e = as_parameter(r_e, "positive", stepsize=0.03)
        self.ellipticity, self.q, self.angle = _shape_params(ellipticity, q, angle)

    def fourier(self, ky, kx):
        return quadratic_profile(_sersic_ft, (value_of(self.n),), self.quadratic(ky, kx, value_of(self.r_e)), ky, kx)

    def extent(self):
        n = float(value_of(self.n))
        b = float(sersic_bn(jnp.asarray(n)))
        return float(value_of(self.r_e)) * (np.log(1e3) / b + 1) ** n * self._elongation()

    def flux_outside(self, radius):
        n, r_e = float(value_of(self.n)), float(value_of(self.r_e))
        return float(gammaincc(2 * n, gammaincinv(2 * n, 0.5) * (self._inscribed(radius) / r_e) ** (1 / n)))


@functools.cache
def _spergel_c_table():
    """Half-light radius in units of r0 for a grid of nu (from the closed-form enclosed flux)."""
    nus = np.linspace(-0.85, 4.0, 400)
    c = np.array([brentq(lambda x, nu=nu: _spergel_enclosed(x, nu) - 0.5, 1e-6, 100.0) for nu in nus])
    return nus, c


def _spergel_enclosed(x, nu):
    """Flux fraction of a Spergel profile within radius ``x`` r0 (closed form)."""
    return 1 - 2 * (x / 2) ** (nu + 1) * kv(nu + 1, x) / gamma_fn(nu + 1)


def _spergel_ft(theta, k2, derivatives=False):
    """(1 + k^2)^-(1 + nu): a Spergel profile's FT with r0 = 1, ``theta = (nu,)``
    (:func:`~scarlet2.fourier.quadratic_profile`)."""
    (nu,) = theta
    base = 1 + k2
    value = base ** (-(1 + nu))
    if not derivatives:
        return value
    return value, (-jnp.log(base) * value,), -(1 + nu) * value / base


class Spergel(_Elliptical):
    """Spergel (2010) profile of index ``nu`` in [-0.85, 4]; analytic FT (1 + k^2 r0^2)^-(1+nu)."""

    nu: Parameter
    r_e: Parameter

    def __init__(self, nu=0.5, r_e=2.0, ellipticity=None, q=None, angle=None):
        self.nu = as_parameter(nu, (-0.85, 4.0), stepsize=0.05)
        self.r_e = as_parameter(r_e, "positive", stepsize=0.03)
        self.ellipticity, self.q, self.angle = _shape_params(ellipticity, q, angle)

    def r0(self):
        nus, c = _spergel_c_table()
        nu = value_of(self.nu)
        return value_of(self.r_e) / jnp.interp(nu, jnp.asarray(nus, nu.dtype), jnp.asarray(c, nu.dtype))

    def fourier(self, ky, kx):
        return quadratic_profile(_spergel_ft, (value_of(self.nu),), self.quadratic(ky, kx, self.r0()), ky, kx)

    def extent(self):
        return 8 * float(value_of(self.r_e)) * self._elongation()

    def flux_outside(self, radius):
        nus, c = _spergel_c_table()
        nu = float(value_of(self.nu))
        r0 = float(value_of(self.r_e)) / np.interp(nu, nus, c)  # r0() on the host: no device ops
        x = self._inscribed(radius) / r0
        return float(1 - _spergel_enclosed(x, nu)) if x > 0 else 1.0


class Point(Morphology):
    """A point source: after convolution with the difference kernel it is the observation's PSF."""

    def fourier(self, ky, kx):
        return jnp.ones(jnp.broadcast_shapes(ky.shape, kx.shape), ky.dtype)

    def extent(self):
        return 0.0


class ArrayMorphology(Morphology):
    """Free-form pixel morphology in the model frame (already carrying the model PSF), shifted by
    sub-pixel amounts with a Fourier phase. Its shape (odd) defines the box."""

    array: Parameter

    def __init__(self, array, constraint="positive"):
        a = value_of(array)
        if a.ndim != 2 or a.shape[0] % 2 == 0 or a.shape[1] % 2 == 0:
            raise ValueError(f"ArrayMorphology needs a 2-d array of odd shape, got {a.shape}")
        if constraint == "positive" and not isinstance(array, Parameter):
            a = jnp.clip(jnp.asarray(a, jnp.float32), 1e-6 * float(jnp.max(jnp.abs(a))) + 1e-30, None)
        self.array = as_parameter(a if not isinstance(array, Parameter) else array, constraint, stepsize=0.05)

    def render(self, shape, center, model_psf):
        a = value_of(self.array)
        if a.shape != tuple(shape):
            raise ValueError(f"ArrayMorphology of shape {a.shape} cannot render into box {tuple(shape)}")
        ky, kx = kgrid(shape, jnp.result_type(center, jnp.float32))
        h, w = shape
        shift = phase(ky, kx, center[0] - h // 2, center[1] - w // 2)
        return jnp.fft.irfft2(jnp.fft.rfft2(a) * shift, s=shape)

    def extent(self):
        return max(value_of(self.array).shape) / 2
