"""Measurements on the data that initialization starts from: a detection image, PSF moments,
adaptive second moments of a source and its radius to the noise."""

from __future__ import annotations

import numpy as np

from ..model.observation import Observation
from .defaults import MAX_DISTORTION, MAX_SHEAR, MOMENT_ITERATIONS
from .sky import band_weights, filled_data


def detection_image(obs: Observation):
    """Inverse-variance weighted sum of the bands, and its noise rms."""
    data, wb = filled_data(obs), band_weights(obs)
    det = np.tensordot(wb, data, axes=1)
    return det, np.sqrt(wb.sum())


def psf_moments(obs: Observation):
    """Per-band PSF second-moment matrices [[Iyy, Iyx], [Ixy, Ixx]] and peak values."""
    psf = np.asarray(obs.psf_images(), np.float64)
    h, w = psf.shape[-2:]
    y, x = np.mgrid[:h, :w]
    y, x = y - h // 2, x - w // 2
    out = []
    for p in psf:
        p = np.clip(p, 0, None) * (np.hypot(y, x) < max(h, w) / 4)  # core: wings are noise-prone
        m = p.sum()
        out.append([[np.sum(p * y * y) / m, np.sum(p * y * x) / m], [np.sum(p * y * x) / m, np.sum(p * x * x) / m]])
    return np.array(out), psf.max(axis=(-2, -1))


def measure(det, noise, yx, psf_cov, max_radius):
    """Radius to the noise level, and PSF-deconvolved second moments at ``yx``.

    The radius grows while the ring median is above the noise and still falling (a rising
    profile means a neighbour or the sky). The moments are Gaussian-weighted and adaptive (as in
    HSM); for Gaussian sources the weight and the PSF deconvolve exactly:
    C_obs = (M^-1 - W^-1)^-1, C_src = C_obs - C_psf.

    Only a window of ``max_radius`` + 3 pixels around ``yx`` is read (the rings and the weight
    end within it), so the cost per source does not grow with the frame.
    """
    ny, nx = det.shape
    h = max_radius + 3
    iy, ix = int(round(yx[0])), int(round(yx[1]))
    y0, y1, x0, x1 = max(iy - h, 0), min(iy + h + 1, ny), max(ix - h, 0), min(ix + h + 1, nx)
    det = det[y0:y1, x0:x1]
    yy, xx = np.mgrid[y0:y1, x0:x1]
    dy, dx = yy - yx[0], xx - yx[1]
    r = np.hypot(dy, dx)
    radius, prev = 2, np.inf
    for rad in range(2, max_radius):
        ring = (r >= rad - 0.5) & (r < rad + 0.5)
        level = np.median(det[ring]) if ring.any() else -np.inf
        if level < noise or level > prev:
            break
        radius, prev = rad, level
    weight_cov = 2 * psf_cov
    conv, valid = psf_cov, None
    for _ in range(MOMENT_ITERATIONS):
        winv = np.linalg.inv(weight_cov)
        wgt = det * np.exp(-0.5 * (winv[0, 0] * dy * dy + 2 * winv[0, 1] * dy * dx + winv[1, 1] * dx * dx))
        wgt *= r <= max(radius, 3) + 2
        m = wgt.sum()
        if m <= 0:
            break
        mom = np.array([[np.sum(wgt * dy * dy), np.sum(wgt * dy * dx)], [np.sum(wgt * dy * dx), np.sum(wgt * dx * dx)]])
        mom /= m
        try:
            conv = np.linalg.inv(np.linalg.inv(mom) - winv)
        except np.linalg.LinAlgError:
            break
        if np.any(np.linalg.eigvalsh(conv) <= 0):
            # at the first step: moments under a PSF-sized weight no wider than the weight
            # itself, unresolved; later: a grown weight reached a neighbour, keep the last
            # valid estimate (resetting would call a resolved galaxy a point source)
            conv = psf_cov if valid is None else valid
            break
        valid = conv
        weight_cov = 0.5 * (weight_cov + conv)  # adapt the weight to the source
    return radius, conv - psf_cov


def shear(cov):
    """Reduced shear (g1, g2) of a second-moment matrix, clamped to :data:`MAX_SHEAR`."""
    iyy, iyx, ixx = cov[0, 0], cov[0, 1], cov[1, 1]
    t = ixx + iyy
    if t <= 0:
        return 0.0, 0.0
    chi1, chi2 = (ixx - iyy) / t, 2 * iyx / t
    chi = np.hypot(chi1, chi2)
    if chi >= 1:
        chi1, chi2, chi = chi1 / chi * MAX_DISTORTION, chi2 / chi * MAX_DISTORTION, MAX_DISTORTION
    scale = 1 / (1 + np.sqrt(1 - chi**2))  # distortion -> reduced shear
    g1, g2 = chi1 * scale, chi2 * scale
    g = np.hypot(g1, g2)
    if g > MAX_SHEAR:
        g1, g2 = g1 * MAX_SHEAR / g, g2 * MAX_SHEAR / g
    return float(g1), float(g2)
