"""Unit-flux radial profiles in Fourier space, as functions of k^2 (for
:func:`~scarlet2.ops.fourier.quadratic_profile`), and the float64 tables they interpolate.

Each ``*_ft(theta, k2, derivatives=False)`` takes a tuple of scalar shape parameters and a flat
k^2 (size 1 in the profile's units); with ``derivatives=True`` it also returns the partial
derivatives in each entry of ``theta`` and in k^2, which the hand-written VJP uses.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike
from scipy.optimize import brentq
from scipy.special import gamma as gamma_fn
from scipy.special import gammaincinv, gammaln, kv

from . import fftlog
from .fourier import ln_k_bounds, ln_k_index, ln_k_step


def gaussian_ft(theta, k2, derivatives=False):
    """exp(-k^2 / 2): a unit Gaussian's FT, its size in k^2 (:func:`~scarlet2.fourier.quadratic_profile`)."""
    value = jnp.exp(-0.5 * k2)
    return (value, (), -0.5 * value) if derivatives else value


def sersic_bn(n: ArrayLike) -> Array:
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
def sersic_tables():
    """Unit-flux FTs of Sersic profiles (r_e = 1) for the n grid, float64 FFTLog, made once."""
    r = fftlog.radii()
    rows = []
    for n in SERSIC_N_GRID:
        b = gammaincinv(2 * n, 0.5)
        flux = 2 * np.pi * n * np.exp(gammaln(2 * n) - 2 * n * np.log(b))
        rows.append(fftlog.hankel0(np.exp(-b * r ** (1 / n))) / flux)
    return np.asarray(rows)  # float64; cast to the computation dtype where used


def _catmull_rom_weights(t):
    """Weights of the 4 neighbouring rows (i-1 .. i+2) for Catmull-Rom interpolation at i + t."""
    t2, t3 = t * t, t * t * t
    return 0.5 * jnp.stack([-t + 2 * t2 - t3, 2 - 5 * t2 + 3 * t3, t + 4 * t2 - 3 * t3, t3 - t2])


def _catmull_rom_slopes(t):
    """d/dt of :func:`_catmull_rom_weights`."""
    t2 = t * t
    return 0.5 * jnp.stack([-1 + 4 * t - 3 * t2, -10 * t + 9 * t2, 1 + 8 * t - 9 * t2, 3 * t2 - 2 * t])


def sersic_ft(theta, k2, derivatives=False):
    """Unit-flux Sersic FT (r_e = 1) of index ``theta = (n,)`` at a flat |k|^2 = ``k2``; with
    ``derivatives`` also its partial derivatives in n and in k2, from the same table windows
    (:func:`~scarlet2.fourier.quadratic_profile`)."""
    (n,) = theta
    tables = jnp.asarray(sersic_tables(), jnp.result_type(k2, jnp.float32))
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
    return sersic_ft((n,), k2.ravel()).reshape(k2.shape)


@functools.cache
def spergel_c_table():
    """Half-light radius in units of r0 for a grid of nu (from the closed-form enclosed flux)."""
    nus = np.linspace(-0.85, 4.0, 400)
    c = np.array([brentq(lambda x, nu=nu: spergel_enclosed(x, nu) - 0.5, 1e-6, 100.0) for nu in nus])
    return nus, c


def spergel_enclosed(x, nu):
    """Flux fraction of a Spergel profile within radius ``x`` r0 (closed form)."""
    return 1 - 2 * (x / 2) ** (nu + 1) * kv(nu + 1, x) / gamma_fn(nu + 1)


def spergel_ft(theta, k2, derivatives=False):
    """(1 + k^2)^-(1 + nu): a Spergel profile's FT with r0 = 1, ``theta = (nu,)``
    (:func:`~scarlet2.fourier.quadratic_profile`)."""
    (nu,) = theta
    base = 1 + k2
    value = base ** (-(1 + nu))
    if not derivatives:
        return value
    return value, (-jnp.log(base) * value,), -(1 + nu) * value / base


@functools.cache
def moffat_table(beta):
    r = fftlog.radii()
    # unit flux: int (1 + r^2)^-beta 2 pi r dr = pi / (beta - 1)
    return fftlog.hankel0((1 + r**2) ** -beta) * (beta - 1) / np.pi
