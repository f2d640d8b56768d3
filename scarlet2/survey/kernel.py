"""One region of a survey: numpy arrays in, numpy arrays out (what a dask worker runs).

The region's pixels are placed in the fixed padded shape of :class:`~.regions.Region` (weight 0
beyond the mosaic). Sources are detected in the core and halo, initialized and fitted together;
the region keeps the sources whose detection peak lies in its core and the model of its core.

Compile once: a compiled program is specific to the scene's structure (the pytree of its
sources and their box sizes). Here every source gets the same box, sources are ordered by kind
(point, one Sersic, bulge + disk) and each kind is padded with inert *ghost* sources (spectrum
1e-30: no light, no gradient) up to the next of :data:`COUNT_BUCKETS`. Regions of a run then
share a handful of programs per worker instead of one per region.
"""

from __future__ import annotations

import dataclasses
import time
import warnings

import jax
import numpy as np
import optax

from ..errors import InputError
from ..infer.defaults import MIN_EXTENDED_SNR
from ..infer.detection import detect_peaks
from ..infer.flux_errors import marginal_flux_errors
from ..infer.initialization import SOURCE_KINDS, initialize, kind_template
from ..infer.merge import redundant_pairs
from ..infer.optimize import fit
from ..infer.residual import residual_peaks
from ..infer.spectra import linear_flux_errors, solve_linear_spectra
from ..labeled.catalog import source_catalog
from ..model.observation import Observation
from ..model.scene import Scene
from ..model.source import Background
from ..ops.fourier import box_size
from ..render.boxes import BoxLeakageWarning
from ..render.observe import render
from .regions import Region

#: Source counts per kind are padded up to the next of these (then to multiples of the last
#: step). Every kind has at least the first: a region without, say, bulge + disk sources still
#: has the structure of one with a few (ghosts cost a box each per iteration, a compilation
#: seconds).
COUNT_BUCKETS = (4, 8, 16, 32, 64, 96, 128, 192, 256)
#: Spectrum of a ghost source: light far below any data, gradients far below any step.
GHOST_FLUX = 1e-30
KINDS = SOURCE_KINDS
#: Box of point sources (pixels): 5 sigma of the widest model PSF a frame gets on each side.
POINT_BOX = box_size(15)
#: Extra point-source slots of a region's first fit: residual detection adds faint sources,
#: mostly points (measured on simulated fields: 5-8 per region).
RESIDUAL_POINT_HEADROOM = 8

#: Optimizer of the refit after residual detection: Adam with its steps ramped up over the first
#: 20 iterations. The refit starts from a fitted scene, where a fresh Adam's first steps
#: (every parameter moved by its full step size) threw the loss far up before it came back.
REFIT_OPTIMIZER = optax.chain(
    optax.scale_by_adam(), optax.scale_by_schedule(optax.linear_schedule(0.1, 1.0, 20)), optax.scale(-1.0)
)

#: How the catalog's flux errors are computed (:attr:`SurveySettings.flux_errors`).
FLUX_ERRORS = {"marginal": marginal_flux_errors, "linear": linear_flux_errors}


@dataclasses.dataclass(frozen=True)
class SurveySettings:
    """What a survey run fits with; stored in the output so that a resumed run uses the same.

    Attributes
    ----------
    tile, halo
        Core size and halo width of the regions (pixels).
    threshold, min_separation
        Detection threshold (sigma of the matched-filter image) and least peak separation.
    max_radius
        Largest source radius measured at initialization; every box is ``box_size(2 r + 1)``.
    max_iter, rtol
        Fit iteration limit and convergence tolerance.
    max_components, bright_snr, background
        :func:`scarlet2.initialize` choices (bulge + disk above ``bright_snr``, a fitted sky
        level per band and region).
    residual_detection
        After the first fit, detect again in the residual and refit with the new sources (those
        at least :data:`~scarlet2.infer.residual.RESIDUAL_CLEARANCE` pixels from every fitted
        centre): faint neighbours of bright sources make no peak of their own in the data.
    first_rtol
        Convergence tolerance of that first fit: its model only has to show the residual peaks,
        the refit (from its values, with ``rtol``) converges.
    points
        Start sources that initialization finds unresolved or too faint per pixel as point
        sources. Off by default: every detected source (matched-filter S/N above the
        threshold) is a Sersic (a star fits as one of tiny r_e), because small galaxies taken
        for points lose 10-25% of their flux (simulated fields: median |df/f| of isolated
        galaxies 10% with points, 3% without), and faint extended ones, whose peak pixel is
        below S/N 5, 60-80%.
    flux_errors
        ``"marginal"``: from the Fisher information over every amplitude, shape and position in
        the region (:func:`~scarlet2.infer.flux_errors.marginal_flux_errors`); ``"linear"``:
        conditional on the fitted shapes (the linear model's normal matrix alone), cheaper and
        smaller (by 1.6x in the pulls' MAD on simulated fields).
    """

    tile: int = 256
    halo: int = 32
    threshold: float = 5.0
    min_separation: int = 3
    max_radius: int = 22
    max_iter: int = 300
    rtol: float = 1e-5
    max_components: int = 2
    bright_snr: float = 30.0
    background: bool = True
    points: bool = False
    residual_detection: bool = True
    first_rtol: float = 1e-4
    flux_errors: str = "marginal"

    def __post_init__(self):
        if self.flux_errors not in FLUX_ERRORS:
            raise InputError(f"flux_errors={self.flux_errors!r}: one of {', '.join(FLUX_ERRORS)}")

    @property
    def box(self) -> int:
        return box_size(2 * self.max_radius + 1)

    @property
    def boxes(self) -> dict:
        """Box of each source kind: point sources are the model PSF (sigma <= 1.5 pixels), whose
        light a box of :data:`POINT_BOX` holds; boxes cost their area every iteration."""
        return {kind: (min(POINT_BOX, self.box) if kind == "point" else self.box) for kind in KINDS}


@dataclasses.dataclass
class RegionResult:
    """What one region gives back: its core's model and residual, its sources, and a record."""

    model: np.ndarray  # (band, core y, core x)
    residual: np.ndarray  # NaN where masked
    catalog: dict  # column -> array over owned sources (see catalog_columns)
    record: dict  # n_detected, n_residual, n_merged, n_sources, chi2_dof, iterations, converged, structure, seconds


def bucket(n: int) -> int:
    """The padded count for ``n`` sources of one kind."""
    for b in COUNT_BUCKETS:
        if n <= b:
            return b
    step = COUNT_BUCKETS[-1] - COUNT_BUCKETS[-2]
    return -(-n // step) * step


def padded_observation(region: Region, image, weight, psf, bands, wcs=None) -> Observation:
    """The region's pixels (outer box, numpy (band, y, x)) placed in its padded shape; padding
    has weight 0. ``wcs`` is the mosaic's; the observation gets it shifted to the padded grid."""
    nb = image.shape[0]
    data = np.zeros((nb, *region.padded_shape), np.float64)
    w = np.zeros_like(data)
    iy, ix = region.inset
    oy, ox = image.shape[1:]
    data[:, iy : iy + oy, ix : ix + ox] = image
    w[:, iy : iy + oy, ix : ix + ox] = weight
    local = None
    if wcs is not None:
        local = wcs.deepcopy()
        local.wcs.crpix = local.wcs.crpix - np.array([region.origin[1], region.origin[0]], float)
        local.wcs.set()
    return Observation(data, weights=w, psf=psf, bands=list(bands), wcs=local, name=region.name)


def fit_region(region: Region, image, weight, psf, bands, wcs, settings: SurveySettings) -> RegionResult:
    """Detect, initialize and fit one region; the core's model and the owned sources' catalog.

    Raises
    ------
    InputError
        Bad pixels (the Observation's rules, naming band and pixel count).
    FloatingPointError
        The fit ended with a non-finite loss or model.
    """
    start = time.perf_counter()
    obs = padded_observation(region, image, weight, psf, bands, wcs)
    pos, snr, peaks = detect_peaks(obs, settings.threshold, settings.min_separation, pixels=True)
    # a source at the mosaic's edge can peak in the padding beyond it (the matched filter spreads
    # its light there); it belongs to the region owning the edge pixel next to it, as in every
    # region that sees it
    oy0, oy1, ox0, ox1 = region.outer
    peaks = np.clip(peaks + np.asarray(region.origin), [oy0, ox0], [oy1 - 1, ox1 - 1])
    (cy0, cy1, cx0, cx1), (gy, gx) = region.core, region.origin
    core = (slice(cy0 - gy, cy1 - gy), slice(cx0 - gx, cx1 - gx))
    nb = len(bands)
    record = {"n_detected": int(len(pos)), "n_sources": 0, "chi2_dof": np.nan, "iterations": 0, "converged": 1}
    if len(pos) == 0:
        data = np.asarray(obs.data)[(slice(None), *core)]
        good = np.asarray(obs.weights)[(slice(None), *core)] > 0
        record.update(structure="empty", seconds=time.perf_counter() - start)
        return RegionResult(
            np.zeros((nb, cy1 - cy0, cx1 - cx0), np.float32),
            np.where(good, data, np.nan).astype(np.float32),
            empty_catalog(nb),
            record,
        )
    scene = _initialize(obs, pos, settings)
    if not settings.residual_detection:
        fitted, info, real, hold, structure = _fit_canonical(scene, obs, settings, region)
        iterations = info.iterations
    else:
        # a first fit to a looser tolerance, with room for the points residual detection adds
        # (cheap 15-pixel boxes): the refit then usually keeps its structure and programs
        first = {"point": RESIDUAL_POINT_HEADROOM}
        fitted, info, real, hold, structure = _fit_canonical(
            scene, obs, settings, region, headroom=first, rtol=settings.first_rtol
        )
        iterations = info.iterations
        # sources hidden by a brighter neighbour's light make peaks in the residual: add those
        # that lie clear of every fitted centre, then refit from the fitted values
        pos2, snr2, peaks2, resid_obs = residual_peaks(
            fitted, obs, settings.threshold, settings.min_separation, pixels=True, among=real
        )
        sky = [src for src in fitted.sources if isinstance(src, Background)]
        extra = []
        if len(pos2):
            peaks2 = np.clip(peaks2 + np.asarray(region.origin), [oy0, ox0], [oy1 - 1, ox1 - 1])
            extra = _initialize(resid_obs, pos2, settings, background=False).sources
            pos, snr, peaks = np.vstack([pos, pos2]), np.concatenate([snr, snr2]), np.vstack([peaks, peaks2])
        scene = fitted.replace_sources([*sky, *(fitted.sources[i] for i in real), *extra])
        least = _counts(structure)  # never a smaller structure than the first fit's
        fitted, info, real, hold, structure = _fit_canonical(
            scene, obs, settings, region, least=least, optimizer=REFIT_OPTIMIZER
        )
        iterations += info.iterations
    n_found = len(pos)
    # two peaks on one object (a compact galaxy beside a neighbour) end as two models on it
    drops = redundant_pairs(fitted, obs, among=real)
    if drops:
        pos, snr, peaks, scene = _merged(fitted, real, drops, pos, snr, peaks)
        fitted, info, real, hold, structure = _fit_canonical(
            scene, obs, settings, region, least=_counts(structure), optimizer=REFIT_OPTIMIZER
        )
        iterations += info.iterations
    model = np.asarray(render(fitted, obs))
    if not (np.isfinite(info.chi2) and np.all(np.isfinite(model))):
        raise FloatingPointError(f"region {region.name}: the fit ended with a non-finite loss or model")
    flux_err = FLUX_ERRORS[settings.flux_errors](fitted, obs, hold=hold)
    cat = source_catalog(fitted, obs.wcs, None, None, (obs, (0, 0), model))
    # catalog rows follow the non-background sources; keep the real ones whose peak is owned
    rows = [i for i, s in enumerate(fitted.sources) if not isinstance(s, Background)]
    row_of = {src: k for k, src in enumerate(rows)}
    order = np.asarray(real)  # scene index of each detected peak, in detection order (then residual peaks)
    owned = region.owns(peaks)
    keep = [row_of[i] for i in order[owned]]
    table = catalog_columns(cat.isel(source=keep), flux_err[order[owned]], region)
    table["peak_snr"] = snr[owned].astype(np.float32)
    good = np.asarray(obs.weights) > 0
    resid = np.where(good, np.asarray(obs.data) - model, np.nan)
    record.update(
        n_sources=int(owned.sum()),
        chi2_dof=float(info.chi2_dof),
        iterations=int(iterations),
        n_residual=int(n_found - record["n_detected"]),
        n_merged=len(drops),
        converged=int(info.converged),
        structure=structure,
        seconds=time.perf_counter() - start,
    )
    return RegionResult(
        model[(slice(None), *core)].astype(np.float32),
        resid[(slice(None), *core)].astype(np.float32),
        table,
        record,
    )


def _merged(fitted, real, drops, pos, snr, peaks):
    """The fitted scene without the sources ``drops`` maps to the ones taking their light
    (:func:`~scarlet2.infer.merge.redundant_pairs`), ghosts left out, and the detections of those
    that stay. A merged source is owned where the stronger of its peaks lies: the peak a
    neighbouring region, seeing the same pixels, would find too."""
    row = {s: k for k, s in enumerate(real)}  # scene index -> detection row
    peaks, snr = peaks.copy(), snr.copy()
    for gone, kept in drops.items():
        a, b = row[kept], row[gone]
        if snr[b] > snr[a]:
            peaks[a], snr[a] = peaks[b], snr[b]
    keep = [k for k, i in enumerate(real) if i not in drops]
    sky = [src for src in fitted.sources if isinstance(src, Background)]
    scene = fitted.replace_sources([*sky, *(fitted.sources[real[k]] for k in keep)])
    return pos[keep], snr[keep], peaks[keep], scene


def _initialize(obs, positions, settings: SurveySettings, background=None):
    return initialize(
        obs,
        positions,
        max_radius=settings.max_radius,
        max_components=settings.max_components,
        bright_snr=settings.bright_snr,
        background=settings.background if background is None else background,
        point_threshold=0.15 if settings.points else -np.inf,
        min_extended_snr=MIN_EXTENDED_SNR if settings.points else -np.inf,  # detected: matched-filter S/N >= 5
        solve_spectra=False,
    )


def _fit_canonical(
    scene, obs, settings: SurveySettings, region: Region, headroom=None, least=None, rtol=None, optimizer=None
):
    """Pad the scene to its canonical structure, solve the spectra, fit. Returns the fitted
    scene, the fit's info, the index of each source of ``scene`` (background excluded) in the
    fitted one, the ghosts' indices and the structure."""
    scene, real, structure = canonical_scene(scene, settings.boxes, obs, headroom, least)
    hold = set(range(len(scene.sources))) - set(real)
    hold -= {i for i, s in enumerate(scene.sources) if isinstance(s, Background)}
    scene = solve_linear_spectra(scene, obs, hold=hold)
    with warnings.catch_warnings():  # box leakage is flagged per source in the catalog
        warnings.simplefilter("ignore", BoxLeakageWarning)
        rtol = settings.rtol if rtol is None else rtol
        fitted, info = fit(scene, obs, max_iter=settings.max_iter, rtol=rtol, optimizer=optimizer, progress=False)
    return fitted, info, real, hold, structure


def _counts(structure: str) -> dict:
    """Padded count per kind of a structure text (``"point:16,sersic:8,..."``)."""
    return {kind: int(n) for kind, n in (part.rsplit(":", 1) for part in structure.split(","))}


def canonical_scene(scene, box, observation, headroom=None, least=None):
    """The scene with every source in a box of its kind's size (``box``: one size, or a dict
    kind -> size), sources ordered by kind and each kind padded with ghosts to :func:`bucket` of
    its count (plus ``headroom[kind]``, and at least ``least[kind]``). Returns the scene, the new
    index of each original source (in its order; the background is first), and the structure
    as text."""
    sources = list(scene.sources)
    sky = [s for s in sources if isinstance(s, Background)]
    by_kind = {k: [] for k in KINDS}
    for i, s in enumerate(sources):
        if isinstance(s, Background):
            continue
        if s.kind not in by_kind:
            raise InputError(f"survey regions fit point and Sersic sources; source {i} is {s.kind!r}")
        by_kind[s.kind].append(i)
    centre = tuple((n - 1) / 2 for n in observation.shape[-2:])
    new, index, padded = list(sky), {}, {}
    for kind, members in by_kind.items():
        box_k = box[kind] if isinstance(box, dict) else box
        for i in members:
            index[i] = len(new)
            new.append(sources[i].with_box(box_k) if sources[i].box != (box_k, box_k) else sources[i])
        padded[kind] = max(bucket(len(members) + (headroom or {}).get(kind, 0)), (least or {}).get(kind, 0))
        n_ghosts = padded[kind] - len(members)
        if n_ghosts:
            with Scene(scene.frame) as ghosts:  # built like initialize's sources: the same structure
                kind_template(scene.frame, kind, centre, box_k, flux=GHOST_FLUX)
            # copies, not one object repeated: each copy's Parameters are parameters of their own
            new.extend(jax.tree.map(lambda x: x, ghosts.sources[0]) for _ in range(n_ghosts))
    real = [index[i] for i in range(len(sources)) if i in index]
    structure = ",".join(f"{k}:{n}" for k, n in padded.items())
    return scene.replace_sources(new), real, structure


#: Catalog columns per source: name -> (dtype, per band?, per component?).
COLUMNS = {
    "y": (np.float64, False, False),
    "x": (np.float64, False, False),
    "ra": (np.float64, False, False),
    "dec": (np.float64, False, False),
    "flux": (np.float32, True, False),
    "flux_err": (np.float32, True, False),
    "kind": (np.int8, False, False),
    "sersic_n": (np.float32, False, True),
    "r_e": (np.float32, False, True),
    "e1": (np.float32, False, True),
    "e2": (np.float32, False, True),
    "chi2": (np.float32, False, False),
    "flags": (np.int16, False, False),
    "peak_snr": (np.float32, False, False),
}
#: Bits of the ``flags`` column.
FLAGS = {"center_at_bound": 1, "flux_at_floor": 2, "box_leakage": 4}
N_COMPONENTS = 2


def catalog_columns(cat, flux_err, region: Region) -> dict:
    """The survey catalog's columns for rows of a :func:`~scarlet2.labeled.catalog.source_catalog`
    Dataset of the padded region (positions moved to mosaic pixels)."""
    n = cat.sizes["source"]
    gy, gx = region.origin
    comp = cat.sizes.get("component", 1)

    def per_comp(name):
        out = np.full((n, N_COMPONENTS), np.nan, np.float32)
        out[:, : min(comp, N_COMPONENTS)] = np.asarray(cat[name].values, np.float32)[:, :N_COMPONENTS]
        return out

    flags = np.zeros(n, np.int16)
    flags |= np.where(cat["center_at_bound"].values, FLAGS["center_at_bound"], 0).astype(np.int16)
    flags |= np.where(cat["flux_at_floor"].values, FLAGS["flux_at_floor"], 0).astype(np.int16)
    flags |= np.where(cat["box_leakage"].values > 0.01, FLAGS["box_leakage"], 0).astype(np.int16)
    return {
        "y": cat["y"].values + gy,
        "x": cat["x"].values + gx,
        "ra": cat["ra"].values if "ra" in cat else np.full(n, np.nan),
        "dec": cat["dec"].values if "dec" in cat else np.full(n, np.nan),
        "flux": cat["flux"].values.astype(np.float32),
        "flux_err": np.asarray(flux_err, np.float32),
        "kind": np.array([KINDS.index(str(k)) for k in cat["kind"].values], np.int8),
        "sersic_n": per_comp("sersic_n"),
        "r_e": per_comp("r_e"),
        "e1": per_comp("e1"),
        "e2": per_comp("e2"),
        "chi2": cat["chi2"].values.astype(np.float32),
        "flags": flags,
    }


def empty_catalog(n_bands: int) -> dict:
    """The columns of :func:`catalog_columns` with no rows."""
    out = {}
    for name, (dtype, banded, per_comp) in COLUMNS.items():
        shape = (0, n_bands) if banded else (0, N_COMPONENTS) if per_comp else (0,)
        out[name] = np.zeros(shape, dtype)
    return out


__all__ = ["COUNT_BUCKETS", "RegionResult", "SurveySettings", "bucket", "canonical_scene", "fit_region"]
