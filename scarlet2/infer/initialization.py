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
from ..model.morphology import SERSIC_INDEX_BOUNDS, ArrayMorphology, Sersic
from ..model.observation import Observation
from ..model.parameter import Parameter
from ..model.positions import to_pixels
from ..model.scene import Scene
from ..model.source import MAX_SHIFT, Background, Component, PointSource, Source
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
    FIX_BULGE_DISK_INDEX,
    FREEFORM_FLOOR,
    MEASURE_MIN_SNR,
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
    min_extended_snr: float = MIN_EXTENDED_SNR,
    max_radius: int = 30,
    background: bool = True,
    solve_spectra: bool = True,
    max_shift: float | None = None,
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
    max_shift
        How far (frame pixels) a centre may move in a fit. Default: :data:`~scarlet2.model.source.MAX_SHIFT`
        pixels of the coarsest observation, so adding a sharp view (a frame at its finer scale)
        leaves positions the freedom a fit of the coarse view alone gives them.
    point_threshold
        A source starts as a point source when its PSF-deconvolved size^2 is below this fraction
        of the PSF's. A point start cannot grow: where the choice is made again after the fit
        (:func:`scarlet2.fit_dataset`'s ``select_points``) it starts at
        :data:`~scarlet2.infer.defaults.SELECTED_POINT_THRESHOLD`, extended unless clearly
        smaller than the PSF.
    min_extended_snr
        Sources whose peak S/N in the detection image (per pixel) is below this start as point
        sources too: too faint to measure a size. A faint extended galaxy can have a low peak
        and a high total S/N; where every position comes from a matched-filter detection (S/N
        above its threshold), ``-np.inf`` starts them all extended (survey regions do).
    """
    obs = as_observations(observations)
    if frame is None:
        single = obs[0]
        one = Frame(single.bands, single.data.shape[-2:], wcs=single.wcs)
        frame = one if len(obs) == 1 else Frame.from_observations(obs)
    views = [_View(o, frame, background) for o in sorted(obs, key=_pixel_scale)]
    if all(v.obs.n_pixels() == 0 for v in views):
        raise InputError(f"Cannot initialize from observation {views[0].obs.label}: its pixels all have weight 0")
    positions = to_pixels(positions, frame.wcs, what="positions")
    shift = {"max_shift": _max_shift(obs, frame) if max_shift is None else float(max_shift)}
    with Scene(frame) as scene:
        if background:
            Background(*_sky_start(views, frame))
        for i, yx in enumerate(positions):
            frame.check_inside(yx, what=f"position {i}")
            v, m = _measure(views, yx, i, max_radius)
            radius, cov, snr, peak = m
            size2 = np.trace(cov)
            box = box_size(2 * v.scale * (radius + BOX_MARGIN) + 1)
            if size2 < point_threshold * np.trace(v.mean_psf_cov) or snr < min_extended_snr:
                PointSource(center=yx, spectrum=_spectrum(frame, v.band_idx, peak / v.psf_peak), box=box, **shift)
                continue
            fcov = v.jacobian @ cov @ v.jacobian.T  # shape and size in frame pixels
            g1, g2 = shear(fcov)
            r_e = R_E_PER_SIGMA * np.sqrt(max(np.trace(fcov) / 2, MIN_SIGMA2))
            # peak of unit flux (Gaussian approximation of galaxy x PSF) in each band
            if np.all(np.linalg.eigvalsh(cov) > 0):
                peaks = np.array([1 / (2 * np.pi * np.sqrt(np.linalg.det(cov + c))) for c in v.psf_cov])
            else:  # no valid shape (a faint source): a round one of the measured size
                sigma2 = max(size2 / 2, MIN_SIGMA2)
                peaks = np.array([1 / (2 * np.pi * (sigma2 + np.trace(c) / 2)) for c in v.psf_cov])
            flux = peak / peaks
            if max_components >= 2 and snr > freeform_snr and v.same_grid:
                cut = _freeform(v.det, v.to_obs(yx), (box, box), [v.to_obs(p) for p in positions], i)
                comps = [
                    _bulge(frame, v.band_idx, flux, r_e, g1, g2),
                    Component(_spectrum(frame, v.band_idx, (1 - BULGE_FLUX_FRACTION) * flux), ArrayMorphology(cut)),
                ]
                Source(center=yx, components=comps, box=box, **shift)
            elif max_components >= 2 and snr > bright_snr:
                disk = Sersic(_index(DISK_SERSIC_N), DISK_SIZE_FRACTION * r_e, (g1, g2))
                comps = [
                    _bulge(frame, v.band_idx, flux, r_e, g1, g2),
                    Component(_spectrum(frame, v.band_idx, (1 - BULGE_FLUX_FRACTION) * flux), disk),
                ]
                Source(center=yx, components=comps, box=box, **shift)
            else:
                morphology = Sersic(SINGLE_SERSIC_N, r_e, (g1, g2))
                Source(center=yx, spectrum=_spectrum(frame, v.band_idx, flux), morphology=morphology, box=box, **shift)
    if solve_spectra:
        # the sharpest observation last: where observations share a band, its solution stands
        for o in sorted(obs, key=_pixel_scale, reverse=True):
            scene = solve_linear_spectra(scene, o)
    return scene


#: The source kinds :func:`initialize` makes (``Source.kind``), in :func:`kind_template`'s terms.
SOURCE_KINDS = ("point", "sersic", "sersic+sersic")


def kind_template(frame: Frame, kind: str, center, box: int, flux: float = 1.0) -> Source:
    """A source of ``kind`` (one of :data:`SOURCE_KINDS`) built as :func:`initialize` builds
    that kind (the same pytree structure, so the same compiled programs): ``flux`` in every
    band, round, r_e = 1 pixel. Made inside a scene's ``with`` block, it joins that scene."""
    spectrum = np.full(frame.n_bands, float(flux))
    everywhere = list(range(frame.n_bands))
    if kind == "point":
        return PointSource(center=center, spectrum=spectrum, box=box)
    if kind == "sersic":
        return Source(center=center, spectrum=spectrum, morphology=Sersic(SINGLE_SERSIC_N, 1.0, (0.0, 0.0)), box=box)
    if kind == "sersic+sersic":
        disk = Sersic(_index(DISK_SERSIC_N), DISK_SIZE_FRACTION, (0.0, 0.0))
        comps = [_bulge(frame, everywhere, spectrum, 1.0, 0.0, 0.0), Component(spectrum.copy(), disk)]
        return Source(center=center, components=comps, box=box)
    raise InputError(f"unknown source kind {kind!r}; one of {SOURCE_KINDS}")


def _max_shift(observations, frame) -> float:
    """:data:`MAX_SHIFT` pixels of the coarsest observation, in frame pixels (at least
    :data:`MAX_SHIFT`)."""
    if frame.wcs is None or any(o.wcs is None for o in observations):
        return MAX_SHIFT
    coarsest = max(_pixel_scale(o) for o in observations)
    return MAX_SHIFT * max(1.0, coarsest / grids.pixel_scale(frame.wcs))


def _pixel_scale(o) -> float:
    """Sort key: the observation's pixel scale (0 without a WCS: then all are on one grid)."""
    return grids.pixel_scale(o.wcs) if o.wcs is not None else 0.0


class _View:
    """One observation as initialization reads it: frame pixel (y, x) -> its pixel, the Jacobian
    (frame pixels per its pixel), its sky-subtracted data, detection image and PSF moments."""

    def __init__(self, observation, frame, subtract_sky):
        o = self.obs = observation
        self.frame = frame
        self.offset = (0, 0) if frame.wcs is None or o.wcs is None else None
        if self.offset is None:
            self.offset = grids.integer_offset(o.data.shape[-2:], o.wcs, frame.wcs)
        self.same_grid = self.offset is not None
        ny, nx = o.data.shape[-2:]
        centre = ((ny - 1) / 2, (nx - 1) / 2)
        self.jacobian = np.eye(2) if self.same_grid else grids.jacobian(centre, o.wcs, frame.wcs)
        self.scale = float(np.sqrt(abs(np.linalg.det(self.jacobian))))
        self.band_idx = [frame.bands.index(b) for b in o.bands]
        self.det, self.noise = detection_image(o)
        self.psf_cov, self.psf_peak = psf_moments(o)
        self.mean_psf_cov = self.psf_cov.mean(axis=0)
        self.data = filled_data(o)
        self.sky, self.rms = sky_levels(o) if subtract_sky else (np.zeros(len(o.bands)), o.noise_rms())
        if subtract_sky and o.n_pixels():
            self.data = self.data - self.sky[:, None, None]
            self.det = self.det - np.tensordot(band_weights(o), self.sky, axes=1)

    def to_obs(self, yx):
        yx = np.asarray(yx, np.float64)
        if self.same_grid:
            return yx - np.asarray(self.offset)
        return grids.map_pixels(yx, self.frame.wcs, self.obs.wcs)

    def pixel(self, yx):
        """The observation's pixel (iy, ix) nearest to frame position ``yx``, or None outside it."""
        oyx = self.to_obs(yx)
        iy, ix = int(round(oyx[0])), int(round(oyx[1]))
        inside = 0 <= iy < self.det.shape[0] and 0 <= ix < self.det.shape[1]
        return (iy, ix) if inside and self.obs.n_pixels() else None


def _measure(views, yx, i, max_radius):
    """(view, (radius, cov, snr, peak)) for frame position ``yx``: shape measured in the sharpest
    observation where the source reaches :data:`~scarlet2.infer.defaults.MEASURE_MIN_SNR`, else in
    the one where it is brightest relative to the noise (a faint extended galaxy is lost in the
    sharp image's small pixels but plain in the wide one); the radius (in that view's pixels) is
    the largest any observation sees, the S/N the highest (it picks the number of components)."""
    found, best = [], None
    for v in views:
        pix = v.pixel(yx)
        if pix is None:
            continue
        radius, cov = measure(v.det, v.noise, v.to_obs(yx), v.mean_psf_cov, max(2, int(max_radius / v.scale)))
        snr = v.det[pix] / v.noise
        found.append((v, (radius, cov, snr, v.data[:, pix[0], pix[1]])))
        if best is None and snr >= MEASURE_MIN_SNR:
            best = found[-1]
    if not found:
        names = ", ".join(v.obs.label for v in views)
        raise InputError(f"position {i} (frame y={yx[0]:.1f}, x={yx[1]:.1f}) lies outside every observation ({names})")
    v, (radius, cov, snr, peak) = best or max(found, key=lambda f: f[1][2])
    reach = max(f[0].scale * f[1][0] for f in found)  # frame pixels
    return v, (reach / v.scale, cov, max(f[1][2] for f in found), peak)


def _sky_start(views, frame):
    """Per-band start of the flat sky: each band's sigma-clipped median from the observations
    that have it, and a step of a fraction of its noise (bands without data take the mean)."""
    level = np.zeros(frame.n_bands)
    step = np.full(frame.n_bands, np.nan)
    for v in views:
        level[v.band_idx] = v.sky
        step[v.band_idx] = np.where(np.isfinite(v.rms), v.rms, np.nan)
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
    morphology = Sersic(_index(BULGE_SERSIC_N), BULGE_SIZE_FRACTION * r_e, shape)
    return Component(_spectrum(frame, band_idx, BULGE_FLUX_FRACTION * flux), morphology)


def _index(n: float):
    """A bulge's or disk's Sersic index: held at ``n`` when
    :data:`~scarlet2.infer.defaults.FIX_BULGE_DISK_INDEX` (the classic n = 4 + n = 1
    decomposition; a free index lets the two components trade roles and run to its bounds)."""
    return Parameter(n, constraint=SERSIC_INDEX_BOUNDS, fixed=True) if FIX_BULGE_DISK_INDEX else n
