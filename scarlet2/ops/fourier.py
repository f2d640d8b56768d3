"""Fourier-space helpers shared by PSFs, morphologies and the renderer: frequency grids, FFT
sizes, the pixel and shift factors, and profiles as functions of a sheared k^2."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

from ..errors import InputError
from . import fftlog

# Odd box sizes with small prime factors: odd means no Nyquist bin (exact sub-pixel phase shifts),
# smooth means fast FFTs. Boxes are padded up to one of these so few shapes get compiled.
BOX_SIZES = (9, 15, 21, 27, 35, 45, 63, 81, 105, 135, 175, 225, 315, 405)


def box_size(extent: float) -> int:
    """Smallest standard odd box size >= ``extent`` pixels (the largest one beyond that)."""
    for s in BOX_SIZES:
        if s >= extent:
            return s
    return BOX_SIZES[-1]


def fast_size(n: int) -> int:
    """Smallest 2-3-5-smooth integer >= n (fast FFT length)."""
    n = int(n)
    while True:
        m = n
        for p in (2, 3, 5):
            while m % p == 0:
                m //= p
        if m == 1:
            return n
        n += 1


@functools.cache
def _kgrid_host(shape):
    h, w = shape
    ky = 2 * np.pi * np.fft.fftfreq(h)[:, None]
    kx = 2 * np.pi * np.fft.rfftfreq(w)[None, :]
    return ky, kx


def kgrid(shape: tuple[int, int], dtype=jnp.float32, xp=jnp) -> tuple[Array, Array]:
    """Angular frequencies (ky, kx) of an rfft2 of an array of ``shape``, broadcastable.

    ``xp=numpy`` gives the host grid in float64 (cached per shape: treat it as read-only).
    """
    ky, kx = _kgrid_host(tuple(shape))
    if xp is np:
        return ky, kx
    return jnp.asarray(ky, dtype), jnp.asarray(kx, dtype)


def transfer_numpy(shape, model_psf):
    """Model PSF x pixel on the rfft grid of ``shape`` in float64 numpy, or None when the PSF
    has no numpy form (``fourier_numpy``)."""
    ky, kx = kgrid(shape, xp=np)
    psf = model_psf.fourier_numpy(ky, kx)
    return None if psf is None else psf * np.sinc(ky / (2 * np.pi)) * np.sinc(kx / (2 * np.pi))


def box_transfer(shape, model_psf, dtype=jnp.float32):
    """Model PSF x pixel on the rfft grid of a box of ``shape``: what every analytic profile is
    multiplied by. A constant computed on the host when the PSF has a numpy form (fewer
    operations to compile and run), else computed in the program."""
    host = transfer_numpy(shape, model_psf)
    if host is not None:
        return jnp.asarray(host, dtype)
    ky, kx = kgrid(shape, dtype)
    return model_psf.fourier(ky, kx) * pixel_ft(ky, kx)


def pixel_ft(ky, kx):
    """Fourier transform of the unit square pixel: integrating over a pixel is this product."""
    return jnp.sinc(ky / (2 * np.pi)) * jnp.sinc(kx / (2 * np.pi))


def shear_quadratic(g1, g2, scale2=1.0):
    """Coefficients (a, b, c) of ``scale2 |S k|^2`` as the quadratic form
    ``a ky^2 + b kx^2 + c 2 ky kx`` (:func:`quadratic_k2`), for scalar reduced shear (g1, g2)
    with area-preserving S (GalSim's convention: g1 > 0 elongates along x, the array's second
    axis). Squared, so no sqrt (whose gradient is singular at k = 0) is ever taken."""
    # |S k|^2 with (S k)_x = (1 + g1) kx + g2 ky and (S k)_y = g2 kx + (1 - g1) ky, expanded
    f = scale2 / (1.0 - g1**2 - g2**2)
    return jnp.stack([(g2**2 + (1 - g1) ** 2) * f, ((1 + g1) ** 2 + g2**2) * f, 2 * g2 * f])


def quadratic_k2(ky, kx, abc):
    """``a ky^2 + b kx^2 + c 2 ky kx`` for ``abc = (a, b, c)``."""
    return abc[0] * ky**2 + abc[1] * kx**2 + abc[2] * (2 * ky * kx)


def quadratic_basis(ky, kx):
    """(P, 3) monomials (ky^2, kx^2, 2 ky kx) of :func:`quadratic_k2` over the broadcast grid:
    the gradient of a function of k^2 in ``abc`` is its k^2-cotangent times this, summed."""
    ky, kx = jnp.broadcast_arrays(ky, kx)
    return jnp.stack([ky**2, kx**2, 2 * ky * kx], axis=-1).reshape(-1, 3)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def quadratic_profile(profile, theta, abc, ky, kx):
    """``profile(theta, k2)`` at k^2 = :func:`quadratic_k2` (ky, kx, abc), on the grid's shape.

    ``profile(theta, k2, derivatives=False)`` takes a tuple of scalar shape parameters and a flat
    k^2; with ``derivatives=True`` it returns ``(value, d_theta, d_k2)``, the partial derivatives
    of the values in each entry of ``theta`` and in k^2. The VJP uses them: the gradient in
    theta is one dot per entry, in ``abc`` one product + sum of the k^2-cotangent with the
    grid's monomials, where autodiff of the elementwise chain emits a reduction for each of the size
    and the two shear components (fewer kernels; docs/performance.md). The grid (ky, kx) gets no
    gradient. Forward-over-reverse (``jax.hessian``) differentiates through the derivatives; pure
    forward mode (``jax.jvp``, ``jax.jacfwd``) of a render is not available (a ``custom_jvp`` of
    the same rule was slower: docs/performance.md).
    """
    k2 = quadratic_k2(ky, kx, abc)
    return profile(theta, k2.ravel()).reshape(k2.shape)


def _quadratic_profile_fwd(profile, theta, abc, ky, kx):
    k2 = quadratic_k2(ky, kx, abc)
    value, d_theta, d_k2 = profile(theta, k2.ravel(), derivatives=True)
    return value.reshape(k2.shape), (theta, abc, d_theta, d_k2, ky, kx)


def _quadratic_profile_bwd(profile, res, ct):
    theta, abc, d_theta, d_k2, ky, kx = res
    ct = ct.ravel()
    hi = jax.lax.Precision.HIGHEST  # full float32 on accelerators too (their default may be tf32)
    # cotangents in each input's own dtype (a float32 index on a float64 grid stays float32)
    ct_theta = tuple(
        jnp.dot(ct, d, precision=hi).astype(jnp.result_type(t)) for t, d in zip(theta, d_theta, strict=True)
    )
    # a fused product + sum, not a dot: vmapped over a group this dot is a small GEMM, whose
    # CPU kernel (oneDNN) is JIT-generated at the first call of each process
    basis = quadratic_basis(ky, kx).astype(ct.dtype)
    ct_abc = jnp.sum((ct * d_k2)[:, None] * basis, axis=0).astype(abc.dtype)
    return ct_theta, ct_abc, jnp.zeros_like(ky), jnp.zeros_like(kx)


quadratic_profile.defvjp(_quadratic_profile_fwd, _quadratic_profile_bwd)


def phase(ky, kx, cy, cx):
    """Fourier factor that moves a profile centred at 0 to (cy, cx); separable, so only
    h + w complex exponentials are evaluated."""
    return jnp.exp(-1j * (ky * cy)) * jnp.exp(-1j * (kx * cx))


def ln_k_step() -> float:
    """Spacing of the (uniform) FFTLog ln k grid."""
    ln_k = fftlog.ln_k_grid()
    return float(ln_k[1] - ln_k[0])


def ln_k_bounds() -> tuple[float, float]:
    """The range of |k|^2 that the FFTLog tables cover; :func:`ln_k_index` clips to it."""
    ln_k = fftlog.ln_k_grid()
    return float(np.exp(2 * ln_k[0])), float(np.exp(2 * ln_k[-1]))


def ln_k_index(k2):
    """Position of |k| = sqrt(k2) on the FFTLog k grid: integer index j and fraction s in [0, 1]
    (k = 0 maps to the smallest tabulated k, where unit-flux transforms are 1 to < 1e-6)."""
    ln_k0 = float(fftlog.ln_k_grid()[0])
    # the grid is uniform in ln k: index arithmetic instead of a search (lighter to compile)
    x = (0.5 * jnp.log(jnp.clip(k2, *ln_k_bounds())) - ln_k0) / ln_k_step()
    j = jnp.clip(jnp.floor(x).astype(jnp.int32), 0, len(fftlog.ln_k_grid()) - 2)
    return j, x - j


def interp_ln_k(table, k2):
    """Linear interpolation in ln k of a table on the FFTLog k grid at |k|^2 = ``k2``."""
    j, s = ln_k_index(k2)
    return table[..., j] * (1 - s) + table[..., j + 1] * s


def center_psf(image, shape, xp=jnp):
    """Embed a centred (odd or even) PSF image into ``shape`` with its centre at pixel (0, 0);
    ``xp`` is the array namespace (``jax.numpy`` in programs, ``numpy`` on the host)."""
    (ph, pw), (h, w) = _check_fits(image.shape[-2:], shape), shape
    out = xp.pad(image, [(0, 0)] * (image.ndim - 2) + [(0, h - ph), (0, w - pw)])
    return xp.roll(out, (-(ph // 2), -(pw // 2)), axis=(-2, -1))


def _check_fits(psf_shape, shape):
    (ph, pw), (h, w) = psf_shape, shape
    if ph > h or pw > w:
        raise InputError(f"PSF of shape {(ph, pw)} does not fit into the padded frame {(h, w)}")
    return ph, pw
