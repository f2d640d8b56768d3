"""Initialization of sources from positions and data.

For each position: a detection image (inverse-variance weighted band sum) gives the radius where
the source meets the noise (the box) and second moments; deconvolving the PSF moments gives size
and ellipticity and decides point vs extended; the spectrum is the peak pixel per band divided by
the peak of the unit-flux model seen through that band's PSF (Gaussian approximation), and then
the non-negative least-squares solution for all spectra at once. The numbers that steer it are
named in :mod:`scarlet2.infer.defaults`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import InputError
from ..model import grids
from ..model.frame import Frame
from ..model.morphology import ArrayMorphology, Sersic
from ..model.observation import Observation
from ..model.positions import to_pixels
from ..model.scene import Scene
from ..model.source import Background, Component, PointSource, Source
from ..ops.fourier import box_size
from ..render.observe import as_observations
from .defaults import (
    BOX_MARGIN,
    BULGE_FLUX_FRACTION,
    BULGE_SERSIC_N,
    BULGE_SHEAR_FRACTION,
    BULGE_SIZE_FRACTION,
    DISK_SERSIC_N,
    DISK_SIZE_FRACTION,
    FREEFORM_FLOOR,
    MIN_EXTENDED_SNR,
    MIN_SIGMA2,
    R_E_PER_SIGMA,
    SINGLE_SERSIC_N,
    SKY_STEP_FRACTION,
    SPECTRUM_FLOOR,
)
from .moments import detection_image, measure, psf_moments, shear
from .sky import band_weights, filled_data, sky_levels
from .spectra import solve_linear_spectra


def initialize(
    observations: Observation | Sequence[Observation],
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
    observations
        An observation, or several on their own WCS (other pixel scales, rotations): sizes,
        shapes and the point/extended choice come from the sharpest one (the finest pixel
        scale), spectra from all, each band from the observations that have it.
    positions
        (n, 2) pixel (y, x) centres in the frame, or an astropy SkyCoord array (needs a WCS).
    frame
        Model frame (default: for one observation its bands, shape and WCS with GaussianPSF(0.7);
        for several :meth:`Frame.from_observations`).
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
    obs = as_observations(observations)
    if frame is None:
        single = obs[0]
        one = Frame(single.bands, single.data.shape[-2:], wcs=single.wcs)
        frame = one if len(obs) == 1 else Frame.from_observations(obs)
    observation = _sharpest(obs)
    if observation.n_pixels() == 0:
        raise InputError(f"Cannot initialize from observation {observation.label}: its pixels all have weight 0")
    to_obs = _FrameToObservation(observation, frame)
    jac = to_obs.jacobian  # frame pixels per observation pixel
    scale = float(np.sqrt(abs(np.linalg.det(jac))))
    det, noise = detection_image(observation)
    psf_cov, psf_peak = psf_moments(observation)
    mean_psf_cov = psf_cov.mean(axis=0)
    data = filled_data(observation)
    positions = to_pixels(positions, frame.wcs, what="positions")
    band_idx = [frame.bands.index(b) for b in observation.bands]
    with Scene(frame) as scene:
        if background:
            Background(*_sky_start(obs, frame))
            sky, _ = sky_levels(observation)
            data = data - sky[:, None, None]
            det = det - np.tensordot(band_weights(observation), sky, axes=1)
        for i, yx in enumerate(positions):
            frame.check_inside(yx, what=f"position {i}")
            oyx = to_obs(yx)
            iy, ix = int(round(oyx[0])), int(round(oyx[1]))
            if not (0 <= iy < det.shape[0] and 0 <= ix < det.shape[1]):
                _check_observed(obs, frame, yx, i)
                # outside the sharpest observation: a point source, its spectrum from the others
                PointSource(center=yx, spectrum=np.ones(frame.n_bands), box=box_size(2 * scale * (2 + BOX_MARGIN) + 1))
                continue
            radius, cov = measure(det, noise, oyx, mean_psf_cov, max_radius)
            peak = data[:, iy, ix]
            size2 = np.trace(cov)
            snr = det[iy, ix] / noise
            box = box_size(2 * scale * (radius + BOX_MARGIN) + 1)
            if size2 < point_threshold * np.trace(mean_psf_cov) or snr < MIN_EXTENDED_SNR:
                spec = _spectrum(frame, band_idx, peak / psf_peak)
                PointSource(center=yx, spectrum=spec, box=box)
                continue
            fcov = jac @ cov @ jac.T  # shape and size in frame pixels
            g1, g2 = shear(fcov)
            sigma2 = max(np.trace(fcov) / 2, MIN_SIGMA2)
            r_e = R_E_PER_SIGMA * np.sqrt(sigma2)
            # peak of unit flux (Gaussian approximation of galaxy x PSF) in each band
            peaks = np.array([1 / (2 * np.pi * np.sqrt(np.linalg.det(cov + c))) for c in psf_cov])
            valid = np.all(np.linalg.eigvalsh(cov) > 0)
            if not valid:
                peaks = np.array([1 / (2 * np.pi * (max(size2 / 2, MIN_SIGMA2) + np.trace(c) / 2)) for c in psf_cov])
            flux = peak / peaks
            if max_components >= 2 and snr > freeform_snr and to_obs.same_grid:
                cut = _freeform(det, oyx, (box, box), [to_obs(p) for p in positions], i)
                comps = [
                    _bulge(frame, band_idx, flux, r_e, g1, g2),
                    Component(_spectrum(frame, band_idx, (1 - BULGE_FLUX_FRACTION) * flux), ArrayMorphology(cut)),
                ]
                Source(center=yx, components=comps, box=box)
            elif max_components >= 2 and snr > bright_snr:
                disk = Sersic(DISK_SERSIC_N, DISK_SIZE_FRACTION * r_e, (g1, g2))
                comps = [
                    _bulge(frame, band_idx, flux, r_e, g1, g2),
                    Component(_spectrum(frame, band_idx, (1 - BULGE_FLUX_FRACTION) * flux), disk),
                ]
                Source(center=yx, components=comps, box=box)
            else:
                morphology = Sersic(SINGLE_SERSIC_N, r_e, (g1, g2))
                Source(center=yx, spectrum=_spectrum(frame, band_idx, flux), morphology=morphology, box=box)
    if solve_spectra:
        # the sharpest observation last: where observations share a band, its solution stands
        for o in sorted(obs, key=lambda o: o is observation):
            scene = solve_linear_spectra(scene, o)
    return scene


def _sharpest(obs):
    """The observation with the finest pixel scale (the first where there is no WCS)."""
    if len(obs) == 1 or any(o.wcs is None for o in obs):
        return obs[0]
    return min(obs, key=lambda o: grids.pixel_scale(o.wcs))


class _FrameToObservation:
    """Frame pixel (y, x) -> pixel of an observation, and the Jacobian (frame per observation pixel)."""

    def __init__(self, observation, frame):
        self.obs, self.frame = observation, frame
        if frame.wcs is None or observation.wcs is None:
            self.offset = (0, 0)
        else:
            self.offset = grids.integer_offset(observation.data.shape[-2:], observation.wcs, frame.wcs)
        self.same_grid = self.offset is not None
        if self.same_grid:
            self.jacobian = np.eye(2)
        else:
            ny, nx = observation.data.shape[-2:]
            self.jacobian = grids.jacobian(((ny - 1) / 2, (nx - 1) / 2), observation.wcs, frame.wcs)

    def __call__(self, yx):
        yx = np.asarray(yx, np.float64)
        if self.same_grid:
            return yx - np.asarray(self.offset)
        return grids.map_pixels(yx, self.frame.wcs, self.obs.wcs)


def _check_observed(obs, frame, yx, i):
    """Raise, naming the position, when no observation has a pixel at frame position ``yx``."""
    for o in obs:
        oyx = _FrameToObservation(o, frame)(yx)
        ny, nx = o.data.shape[-2:]
        if -0.5 <= oyx[0] <= ny - 0.5 and -0.5 <= oyx[1] <= nx - 0.5:
            return
    names = ", ".join(o.label for o in obs)
    raise InputError(f"position {i} (frame y={yx[0]:.1f}, x={yx[1]:.1f}) lies outside every observation ({names})")


def _sky_start(obs, frame):
    """Per-band start of the flat sky: each band's sigma-clipped median from the observations
    that have it, and a step of a fraction of its noise (bands without data take the mean)."""
    level = np.zeros(frame.n_bands)
    step = np.full(frame.n_bands, np.nan)
    for o in obs:
        sky, rms = sky_levels(o)
        idx = [frame.bands.index(b) for b in o.bands]
        level[idx] = sky
        step[idx] = np.where(np.isfinite(rms), rms, np.nan)
    known = step[np.isfinite(step)]
    step = np.where(np.isfinite(step), step, known.mean() if known.size else 1.0)
    return level, SKY_STEP_FRACTION * step


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
    cut = np.clip(cut, FREEFORM_FLOOR * cut.max(), None)
    return cut / cut.sum()


def _spectrum(frame, band_idx, values):
    """Positive per-band initial fluxes on the frame's bands (bands not observed get the mean)."""
    v = np.asarray(values, np.float64)
    floor = max(SPECTRUM_FLOOR * np.nanmax(np.abs(v)), 1e-6) if np.any(np.isfinite(v)) else 1.0
    v = np.where(np.isfinite(v) & (v > floor), v, floor)
    out = np.full(frame.n_bands, v.mean())
    out[band_idx] = v
    return out


def _bulge(frame, band_idx, flux, r_e, g1, g2) -> Component:
    """The bulge of a two-component start: compact, rounder, a share of the flux."""
    shape = (BULGE_SHEAR_FRACTION * g1, BULGE_SHEAR_FRACTION * g2)
    morphology = Sersic(BULGE_SERSIC_N, BULGE_SIZE_FRACTION * r_e, shape)
    return Component(_spectrum(frame, band_idx, BULGE_FLUX_FRACTION * flux), morphology)
