"""Initialization of sources from positions and data.

For each position: a detection image (inverse-variance weighted band sum) gives the radius where
the source meets the noise (the box) and second moments; deconvolving the PSF moments gives size
and ellipticity and decides point vs extended; the spectrum is the peak pixel per band divided by
the peak of the unit-flux model seen through that band's PSF (Gaussian approximation).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._jit import compiled, platform, to_device
from .fourier import box_size
from .frame import Frame
from .morphology import ArrayMorphology, Sersic
from .observation import Observation
from .scene import Scene
from .source import Background, Component, PointSource, Source


def detection_image(obs: Observation):
    """Inverse-variance weighted sum of the bands, and its noise rms."""
    data, wb = np.asarray(obs.data, np.float64), _band_weights(obs)
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


def _measure(det, noise, yx, psf_cov, max_radius):
    """Radius to the noise level, and PSF-deconvolved second moments at ``yx``.

    The radius grows while the ring median is above the noise and still falling (a rising
    profile means a neighbour or the sky). The moments are Gaussian-weighted and adaptive (as in
    HSM); for Gaussian sources the weight and the PSF deconvolve exactly:
    C_obs = (M^-1 - W^-1)^-1, C_src = C_obs - C_psf.
    """
    ny, nx = det.shape
    yy, xx = np.mgrid[:ny, :nx]
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
    for _ in range(4):
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


def initialize(
    observation: Observation,
    positions,
    frame: Frame | None = None,
    max_components: int = 2,
    bright_snr: float = 30.0,
    freeform_snr: float = np.inf,
    point_threshold: float = 0.15,
    max_radius: int = 30,
    background: bool = True,
    solve_spectra: bool = True,
) -> Scene:
    """A scene of sources initialized from the data at ``positions``.

    Parameters
    ----------
    observation
        The observation on the model frame's grid.
    positions
        (n, 2) pixel (y, x) centres, or an astropy SkyCoord array (needs ``frame.wcs``).
    frame
        Model frame (default: the observation's bands, shape and WCS, GaussianPSF(0.7)).
    max_components
        1: every extended source is one Sersic; 2: sources brighter than ``bright_snr`` are a
        bulge + disk (two Sersics, each with its own spectrum: colour gradients).
    freeform_snr
        Extended sources brighter than this (peak S/N in the detection image) get a free-form
        disk (:class:`~scarlet2.ArrayMorphology`) beside a Sersic bulge: at such S/N real galaxies
        show structure (arms, asymmetry) no profile follows. Off by default (``np.inf``): without
        monotonicity constraints free pixels can absorb close neighbours; 300 suits isolated
        bright galaxies.
    background
        Add a flat per-band :class:`~scarlet2.Background`, started at the sigma-clipped median.
    solve_spectra
        Finally set all spectra (and the sky) to the non-negative least-squares solution given the
        initial morphologies: the model is linear in them, so this places flux between blended
        neighbours and components far better than peak values.
    point_threshold
        A source is a point source when its PSF-deconvolved size^2 is below this fraction of the PSF's.
    """
    frame = frame or Frame(observation.bands, observation.data.shape[-2:], wcs=observation.wcs)
    if observation.n_pixels() == 0:
        raise ValueError("Cannot initialize from an observation whose pixels all have weight 0")
    det, noise = detection_image(observation)
    psf_cov, psf_peak = psf_moments(observation)
    mean_psf_cov = psf_cov.mean(axis=0)
    data = np.asarray(observation.data, np.float64)
    positions = _positions(frame, positions)
    band_idx = [frame.bands.index(b) for b in observation.bands]
    with Scene(frame) as scene:
        if background:
            sky, rms = _sky(observation)
            level = np.zeros(frame.n_bands)
            level[band_idx] = sky
            # bands without data (not observed, or every pixel masked: rms inf) take the mean step
            known = rms[np.isfinite(rms)]
            step = np.full(frame.n_bands, known.mean() if known.size else 1.0)
            step[band_idx] = np.where(np.isfinite(rms), rms, step[band_idx])
            Background(level, stepsize=0.03 * step)
            data = data - sky[:, None, None]
            det = det - np.tensordot(_band_weights(observation), sky, axes=1)
        for i, yx in enumerate(positions):
            frame.check_inside(yx, what=f"position {i}")
            iy, ix = int(round(yx[0])), int(round(yx[1]))
            radius, cov = _measure(det, noise, yx, mean_psf_cov, max_radius)
            peak = data[:, iy, ix]
            size2 = np.trace(cov)
            snr = det[iy, ix] / noise
            box = box_size(2 * (radius + 3) + 1)
            if size2 < point_threshold * np.trace(mean_psf_cov) or snr < 5:
                spec = _spectrum(frame, band_idx, peak / psf_peak)
                PointSource(center=yx, spectrum=spec, box=box)
                continue
            g1, g2 = _shear(cov)
            sigma2 = max(size2 / 2, 0.25)
            r_e = 1.18 * np.sqrt(sigma2)
            # peak of unit flux (Gaussian approximation of galaxy x PSF) in each band
            peaks = np.array([1 / (2 * np.pi * np.sqrt(np.linalg.det(cov + c))) for c in psf_cov])
            valid = np.all(np.linalg.eigvalsh(cov) > 0)
            if not valid:
                peaks = np.array([1 / (2 * np.pi * (sigma2 + np.trace(c) / 2)) for c in psf_cov])
            flux = peak / peaks
            if max_components >= 2 and snr > freeform_snr:
                cut = _freeform(det, yx, (box, box), positions, i)
                comps = [
                    Component(_spectrum(frame, band_idx, 0.3 * flux), Sersic(4.0, 0.5 * r_e, (0.5 * g1, 0.5 * g2))),
                    Component(_spectrum(frame, band_idx, 0.7 * flux), ArrayMorphology(cut)),
                ]
                Source(center=yx, components=comps, box=box)
            elif max_components >= 2 and snr > bright_snr:
                comps = [
                    Component(_spectrum(frame, band_idx, 0.3 * flux), Sersic(4.0, 0.5 * r_e, (0.5 * g1, 0.5 * g2))),
                    Component(_spectrum(frame, band_idx, 0.7 * flux), Sersic(1.0, 1.3 * r_e, (g1, g2))),
                ]
                Source(center=yx, components=comps, box=box)
            else:
                Source(
                    center=yx, spectrum=_spectrum(frame, band_idx, flux), morphology=Sersic(1.5, r_e, (g1, g2)), box=box
                )
    if solve_spectra:
        scene = solve_linear_spectra(scene, observation)
    return scene


def solve_linear_spectra(scene: Scene, observation: Observation) -> Scene:
    """Scene with every spectrum set to the per-band non-negative least-squares solution for
    the current morphologies (sky levels unconstrained in sign).

    Renders each component once through the observation (the scene with that component's
    spectrum set to 1 and every other one to 0: one compiled program for all components) and
    keeps the pixels it reaches in a sparse design matrix (memory: one frame plus the
    footprints).
    """
    from scipy import sparse
    from scipy.optimize import lsq_linear

    from .fitting import prepare

    comps = [(i, j) for i, s in enumerate(scene.sources) for j in range(len(getattr(s, "components", ())))]
    skies = [i for i, s in enumerate(scene.sources) if isinstance(s, Background)]
    if not comps:
        return scene
    nb = scene.frame.n_bands
    band_idx = [scene.frame.bands.index(b) for b in observation.bands]
    data = np.asarray(observation.data, np.float64)
    sw = np.sqrt(np.asarray(observation.weights, np.float64))
    nbo, ny, nx = data.shape
    rows = [[] for _ in range(nbo)]
    # every spectrum and sky at 0, prepared once; each image sets one component's spectrum to 1
    dark, (renderer,) = prepare(
        _with_spectra(scene, comps, np.zeros((len(comps), nb)), skies, np.zeros((len(skies), nb))), [observation]
    )
    render_batch = compiled(_unit_images, platform(renderer.data))
    for start in range(0, len(comps), UNIT_IMAGE_BATCH):
        cols = np.arange(start, start + UNIT_IMAGE_BATCH)  # past the end: all dark, ignored
        images = np.asarray(render_batch(dark, renderer, tuple(comps), to_device(cols, np.int32)), np.float64)
        for col, img in zip(cols, images, strict=True):
            if col >= len(comps):
                break
            for k in range(nbo):
                nz = np.flatnonzero(np.abs(img[k]) > 1e-7 * np.abs(img[k]).max())
                rows[k].append((nz, np.full(nz.size, col), img[k].ravel()[nz]))
    spectra = np.array([np.asarray(scene.sources[i].components[j].spectrum.value, np.float64) for i, j in comps])
    sky = np.zeros(nb)
    ncol = len(comps) + (1 if skies else 0)
    for k, b in enumerate(band_idx):
        r = np.concatenate([t[0] for t in rows[k]] + ([np.arange(ny * nx)] if skies else []))
        c = np.concatenate([t[1] for t in rows[k]] + ([np.full(ny * nx, len(comps))] if skies else []))
        v = np.concatenate([t[2] for t in rows[k]] + ([np.ones(ny * nx)] if skies else []))
        v = v * sw[k].ravel()[r]
        a = sparse.csr_matrix((v, (r, c)), shape=(ny * nx, ncol))
        lo = [0.0] * len(comps) + ([-np.inf] if skies else [])
        sol = lsq_linear(a, data[k].ravel() * sw[k].ravel(), bounds=(lo, np.inf), lsmr_tol="auto").x
        floor = 1e-3 * max(sol[: len(comps)].max(), 1e-12)
        spectra[:, b] = np.maximum(sol[: len(comps)], floor)
        if skies:
            sky[b] = sol[-1]
    levels = np.zeros((len(skies), nb))
    levels[:1] = sky  # the first Background takes the fitted level, any others stay at 0
    return _with_spectra(scene, comps, spectra, skies, levels)


#: Unit-spectrum component images rendered per compiled call in :func:`solve_linear_spectra`:
#: one call per batch (host overhead per call is a walk over the whole scene), and memory of
#: this many frames, not of all components.
UNIT_IMAGE_BATCH = 8


def _unit_images(dark, renderer, comps, cols):
    """Observed images of the components ``comps[col]`` with unit spectra, one per ``col``
    (traced; ``dark`` has every spectrum at 0), rendered one after another on the device."""
    from .fitting import _render_obs

    def lit(col):
        on = (jnp.arange(len(comps)) == col).astype(renderer.data.dtype)
        values = [jnp.ones_like(dark.sources[i].components[j].spectrum.value) * on[c] for c, (i, j) in enumerate(comps)]
        paths = lambda s: [s.sources[i].components[j].spectrum.value for i, j in comps]  # noqa: E731
        return _render_obs(eqx.tree_at(paths, dark, values), renderer)

    return jax.lax.map(lit, cols)


def _with_spectra(scene, comps, spectra, skies, levels):
    """``scene`` with the spectra of components ``comps`` ((source, component) pairs) and the
    levels of the Backgrounds ``skies`` (source indices) replaced; structure unchanged."""

    def set_value(param, value):
        return eqx.tree_at(lambda p: p.value, param, to_device(value, param.value.dtype))

    sources = list(scene.sources)
    for (i, j), spec in zip(comps, spectra, strict=True):
        new = set_value(sources[i].components[j].spectrum, spec)
        sources[i] = eqx.tree_at(lambda s, j=j: s.components[j].spectrum, sources[i], new)
    for i, level in zip(skies, levels, strict=True):
        sources[i] = eqx.tree_at(lambda s: s.spectrum, sources[i], set_value(sources[i].spectrum, level))
    return Scene(scene.frame, sources)


def _freeform(det, yx, box, positions, index):
    """Unit-sum start for a free-form morphology: the detection image around ``yx``, keeping only
    pixels closer to this source than to any other (so neighbours are not absorbed)."""
    h, w = box
    oy, ox = int(round(yx[0])) - h // 2, int(round(yx[1])) - w // 2
    yy, xx = np.mgrid[oy : oy + h, ox : ox + w]
    inside = (yy >= 0) & (yy < det.shape[0]) & (xx >= 0) & (xx < det.shape[1])
    cut = np.zeros(box)
    cut[inside] = det[yy[inside], xx[inside]]
    d = np.stack([np.hypot(yy - p[0], xx - p[1]) for p in positions])
    cut *= np.argmin(d, axis=0) == index
    cut = np.clip(cut, 1e-3 * cut.max(), None)
    return cut / cut.sum()


def _band_weights(obs):
    w = np.asarray(obs.weights, np.float64)
    return np.array([np.median(b[b > 0]) if np.any(b > 0) else 0.0 for b in w])


def _sky(obs):
    """Sigma-clipped median (sky) and noise rms per band over unmasked pixels."""
    from astropy.stats import sigma_clipped_stats

    data, w = np.asarray(obs.data, np.float64), np.asarray(obs.weights)
    sky = np.array(
        [sigma_clipped_stats(d[wb > 0], sigma=2.5)[1] if np.any(wb > 0) else 0.0 for d, wb in zip(data, w, strict=True)]
    )
    return sky, obs.noise_rms()


def _spectrum(frame, band_idx, values):
    """Positive per-band initial fluxes on the frame's bands (bands not observed get the mean)."""
    v = np.asarray(values, np.float64)
    floor = max(1e-3 * np.nanmax(np.abs(v)), 1e-6) if np.any(np.isfinite(v)) else 1.0
    v = np.where(np.isfinite(v) & (v > floor), v, floor)
    out = np.full(frame.n_bands, v.mean())
    out[band_idx] = v
    return out


def _shear(cov):
    iyy, iyx, ixx = cov[0, 0], cov[0, 1], cov[1, 1]
    t = ixx + iyy
    if t <= 0:
        return 0.0, 0.0
    chi1, chi2 = (ixx - iyy) / t, 2 * iyx / t
    chi = np.hypot(chi1, chi2)
    if chi >= 1:
        chi1, chi2, chi = chi1 / chi * 0.99, chi2 / chi * 0.99, 0.99
    scale = 1 / (1 + np.sqrt(1 - chi**2))  # distortion -> reduced shear
    g1, g2 = chi1 * scale, chi2 * scale
    g = np.hypot(g1, g2)
    if g > 0.6:
        g1, g2 = g1 * 0.6 / g, g2 * 0.6 / g
    return float(g1), float(g2)


def _positions(frame, positions):
    if hasattr(positions, "ra"):
        if frame.wcs is None:
            raise ValueError("Sky positions need a frame with a WCS")
        x, y = frame.wcs.world_to_pixel(positions)
        return np.stack([np.atleast_1d(y), np.atleast_1d(x)], axis=-1).astype(float)
    p = np.asarray(positions, dtype=float)
    if p.ndim != 2 or p.shape[1] != 2:
        raise ValueError(f"positions must be (n, 2) pixel (y, x) pairs, got shape {p.shape}")
    bad = np.flatnonzero(~np.all(np.isfinite(p), axis=1))
    if bad.size:
        raise ValueError(f"positions {bad.tolist()} are not finite")
    return p
