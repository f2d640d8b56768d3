"""Labeled fit results: model and residual cubes, a per-source catalog, the fit record and the
scene, as one xarray DataTree."""

from __future__ import annotations

import warnings

import equinox as eqx
import jax
import numpy as np
import xarray as xr

from .._version import __version__
from ..errors import InputError
from ..infer.defaults import SELECTED_POINT_THRESHOLD
from ..infer.detection import detect_peaks, detect_positions
from ..infer.flux_errors import marginal_flux_errors
from ..infer.initialization import initialize
from ..infer.merge import redundant_pairs, without_sources
from ..infer.optimize import fit
from ..infer.residual import residual_peaks
from ..infer.sample import hold_free_forms
from ..infer.selection import select_points_by_refit
from ..infer.spectra import solve_linear_spectra
from ..infer.structure import structured, territories, territory, to_free_form
from ..infer.uncertainty import MAX_DENSE, fisher_errors
from ..model import grids
from ..model.frame import Frame
from ..model.morphology import ArrayMorphology
from ..model.observation import Observation
from ..model.parameter import Parameter, free_slots
from ..model.scene import Scene
from ..model.source import Background
from ..render.boxes import BOX_LEAKAGE_WARNING, BoxLeakageWarning
from ..render.boxes import grow_boxes as grow_box_sizes
from ..render.geometry import grid_offset
from ..render.observe import render
from .catalog import catalog_dataset, catalog_positions, source_catalog
from .inputs import check_shared_bands, named_datasets
from .schema import attach_wcs, get_wcs, to_observation
from .store import scene_dataset

#: The default fit grows the boxes of sources that put more than this fraction of their flux
#: beyond their box, to at most :data:`GROWN_LEAKAGE`: the light a box cuts off wraps around
#: inside it, and the fit answers by shrinking the wings, so the flux comes out low by about
#: the leakage (GalSim blends: 10-15% for bright Sersics at 6-10% leakage; docs/design.md).
GROW_LEAKAGE = 0.05
GROWN_LEAKAGE = 0.02

#: Named initialization presets for ``ds.scarlet.fit(model=...)``.
MODELS = {
    "parametric": {},
    "freeform": {"freeform_snr": 300.0},
    "single": {"max_components": 1},
}


def detect(ds: xr.Dataset, threshold: float = 5.0, min_separation: int = 3) -> xr.Dataset:
    """Detect peaks in an observation Dataset; returns a catalog Dataset."""
    obs = to_observation(ds)
    pos, snr = detect_peaks(obs, threshold=threshold, min_separation=min_separation)
    return catalog_dataset(pos, snr, obs.wcs)


def fit_dataset(
    ds: xr.Dataset | list[xr.Dataset] | xr.DataTree,
    catalog=None,
    model="parametric",
    errors=True,
    grow_boxes=True,
    select_points=True,
    free_form=True,
    residual_detection=True,
    **fit_options,
) -> xr.DataTree:
    """Detect (when no catalog is given), initialize, fit and label the result.

    Parameters
    ----------
    ds
        Observation Dataset (see :mod:`scarlet2.labeled.schema`), or several (a list, or a
        DataTree whose nodes hold them) on their own WCS: they are fitted jointly on
        :meth:`~scarlet2.Frame.from_observations` (the finest grid over their union), and the
        result holds one model group per observation, ``/model/<name>``, on its own grid.
    catalog
        Source positions: a catalog Dataset/DataFrame (y, x or ra, dec) or an (n, 2) array; with
        several observations ra, dec (or pixel positions in the joint frame).
    model
        A preset name from :data:`MODELS`, a dict of :func:`scarlet2.initialize` options, or
        a ready :class:`~scarlet2.Scene`.
    errors
        Compute Fisher-matrix errors for the catalog.
    grow_boxes
        When a fitted source puts more than :data:`GROW_LEAKAGE` of its flux beyond its box,
        grow such boxes to :data:`GROWN_LEAKAGE` (:func:`scarlet2.grow_boxes`) and refit from
        the fitted values (once more where a profile outgrows its box by more than
        ``BOX_LEAKAGE_WARNING`` in that refit);
        ``result["fit"].attrs["boxes_grown"]`` counts them. With False, the fit warns instead.
    select_points
        After the fit, replace extended sources whose deblended light a point source explains as
        well by point sources and refit (:func:`scarlet2.infer.selection.select_points_by_refit`);
        ``result["fit"].attrs["points_selected"]`` counts them. Decided on the observation on the
        model's grid (in a joint fit the sharpest), refitted with all.
    free_form
        After that, give extended sources whose profiles leave structure in the residual a
        free-form component in place of their widest profile (:mod:`scarlet2.infer.structure`),
        refitted from the fitted values; ``result["fit"].attrs["free_form"]``
        counts them. Decided on the observation on the model's grid; in a joint fit that is the
        sharpest, and the others add their chi^2 over the same territories.
    residual_detection
        With the free forms, detect in the residual (light no source explains: a source the
        catalogue lacks, a faint one on a brighter neighbour's slope), add the peaks at least
        :data:`~scarlet2.infer.residual.RESIDUAL_CLEARANCE` pixels from every source and outside
        the free forms' territories, and refit once for both; where that found sources, look
        once more after the refit (they can hide others beside them) and refit if it finds
        more. They follow the catalogue's (or
        detection's) sources in the result's catalog, marked ``found_in_residual``;
        ``result["fit"].attrs["residual_sources"]`` counts them. One observation on the model's
        grid only.

        Last (one observation, not a given scene), sources whose fitted centres lie within
        :data:`~scarlet2.infer.merge.MERGE_DISTANCE` of a brighter one's, which explains their
        light as well (:func:`~scarlet2.infer.merge.redundant_pairs`), are dropped onto it and
        the rest refitted (a catalogue's sources all stay); ``result["fit"].attrs["merged"]``
        counts them.
    fit_options
        Passed to :func:`scarlet2.fit` (``max_iter``, ``rtol``, ``optimizer``, ``progress``...).
    """
    from tqdm.auto import tqdm

    # the stage a long call is in, from its first second (a large frame takes seconds per stage)
    stage = tqdm(
        total=4,
        desc="checking the data",
        disable=not fit_options.get("progress", True),
        leave=False,
        bar_format="scarlet2: {desc} ({n_fmt}/{total_fmt}, {elapsed})",
    )
    named = named_datasets(ds)
    check_shared_bands(named)
    observations = [to_observation(d, name=n) for n, d in named]
    joint = len(observations) > 1
    # one observation on non-square or skewed pixels: modelled on a square grid and resampled
    squashed = not joint and observations[0].wcs is not None and not grids.is_square(observations[0].wcs)
    frame = Frame.from_observations(observations) if joint or squashed else None
    obs = observations if joint else observations[0]
    stage.update()
    if isinstance(model, Scene):
        scene = model
    else:
        if isinstance(model, str) and model not in MODELS:
            raise InputError(f"unknown model {model!r}; presets: {sorted(MODELS)}")
        opts = MODELS[model] if isinstance(model, str) else dict(model or {})
        if select_points and (not joint or _on_grid(observations, frame) is not None):
            # chosen again after the fit: start extended
            opts = {"point_threshold": SELECTED_POINT_THRESHOLD, **opts}
        if catalog is None:
            stage.set_description_str("detecting sources")
            positions = detect_positions(observations, frame)[0] if frame is not None else detect_peaks(obs)[0]
            if len(positions) == 0:
                raise InputError("no sources: detection found none above its threshold; give a catalog")
        else:
            positions = catalog_positions(catalog, frame.wcs if frame is not None else obs.wcs)
            if len(positions) == 0:
                raise InputError("the catalog has no sources (0 rows)")
        stage.set_description_str(f"initializing {len(positions)} sources")
        scene = initialize(obs, positions, frame=frame, **opts)
    stage.update()
    stage.set_description_str("fitting")
    with warnings.catch_warnings():
        if grow_boxes:  # acted on below, not left to the user
            warnings.simplefilter("ignore", BoxLeakageWarning)
        fitted, info = fit(scene, obs, **fit_options)
    # point/extended and free forms are decided on the observation on the model's grid (in a
    # joint fit the sharpest: the frame takes its grid), the refits fit them all
    anchor = _on_grid(observations, scene.frame)
    others = [o for o in observations if o is not anchor]
    selected = []
    if select_points and anchor is not None:
        stage.set_description_str("point or extended")
        with warnings.catch_warnings():
            if grow_boxes:
                warnings.simplefilter("ignore", BoxLeakageWarning)
            refit, refit_info, selected = select_points_by_refit(fitted, anchor, fit, obs, **fit_options)
        if selected or refit is not None:
            fitted, info = refit, refit_info
    freed, extra, exclude = [], [], None
    if (free_form or residual_detection) and anchor is not None:
        # one refit for both: residual peaks inside a galaxy that gets a free form are its
        # structure (arms, clumps), which the free form takes, not new sources
        stage.set_description_str("free forms and residual sources")
        regions = territories(fitted, anchor) if free_form else {}  # one render per source, shared
        freed = structured(fitted, anchor, regions, others) if free_form else []
        if grow_boxes:  # a profile cut by its box leaves structure that a larger box removes
            freed = [i for i in freed if info.box_leakage[i] <= GROW_LEAKAGE]
        # single view only: on the real HST + HSC pair the drizzled HST image's correlated noise
        # gave 103 residual "sources" at 5 sigma, none seen by HSC
        if residual_detection and not joint and not isinstance(model, Scene):
            exclude = territory(fitted, anchor, freed, regions)
            extra = _residual_sources(fitted, obs, exclude, opts)
    new = to_free_form(fitted, anchor, freed, regions) if freed else fitted
    new = new.replace_sources([*new.sources, *extra]) if extra else new
    grown = 0
    if grow_boxes and np.any(info.box_leakage > GROW_LEAKAGE):  # in the same refit
        new, grown = _grown(new)
    if new is not fitted:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", BoxLeakageWarning)  # said below, for this context
            fitted, info = fit(new, obs, **fit_options)
    if extra:
        # once more: sources found in the residual can hide others beside them until they are
        # fitted (a pair at an image edge, DC2), with the same territories left to free forms
        hidden = _residual_sources(fitted, obs, exclude, opts)
        if hidden:
            extra = [*extra, *hidden]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", BoxLeakageWarning)  # said below, for this context
                fitted, info = fit(fitted.replace_sources([*fitted.sources, *hidden]), obs, **fit_options)
    merged = {}
    if not joint and not isinstance(model, Scene) and anchor is not None:
        # two peaks on one object (a compact galaxy beside a neighbour, a residual peak on a
        # profile fitted wrong) end as two models on it; a catalogue's sources all stay
        n_listed = len(fitted.sources) - len(extra)  # residual sources come last
        merged = redundant_pairs(fitted, anchor, protected=range(n_listed) if catalog is not None else ())
        if merged:
            late = [i for i in range(n_listed, len(fitted.sources)) if i not in merged]
            extra = [fitted.sources[i] for i in late]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", BoxLeakageWarning)  # said below, for this context
                fitted, info = fit(solve_linear_spectra(without_sources(fitted, merged), obs), obs, **fit_options)
    if grow_boxes and np.any(info.box_leakage > BOX_LEAKAGE_WARNING):
        # profiles that grew far in that refit: one more fit (a few percent is not worth one)
        bigger, more = _grown(fitted)
        if more:
            grown += more
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", BoxLeakageWarning)  # said below, for this context
                fitted, info = fit(bigger, obs, **fit_options)
        # numbered as in the catalog, which lists the sources without the sky
        catalog_index = [i for i, src in enumerate(fitted.sources) if not isinstance(src, Background)]
        still = [
            (k, info.box_leakage[i]) for k, i in enumerate(catalog_index) if info.box_leakage[i] > BOX_LEAKAGE_WARNING
        ]
        if still:
            what = ", ".join(f"source {k} ({leak:.0%})" for k, leak in still)
            warnings.warn(
                f"after growing their boxes once, {what} still put that much of their flux beyond their "
                "boxes, which wraps it around inside: those model images are wrong although their fluxes add "
                "up (flagged in the catalog's box_leakage)",
                BoxLeakageWarning,
                stacklevel=2,
            )
    stage.update()
    stage.set_description_str("errors and catalog")
    result = build_result(named if joint else ds, obs, fitted, info, errors=errors)
    result["fit"].attrs["boxes_grown"] = int(grown)
    result["fit"].attrs["points_selected"] = len(selected)
    result["fit"].attrs["free_form"] = len(freed)
    result["fit"].attrs["residual_sources"] = len(extra)
    result["fit"].attrs["merged"] = len(merged)
    n = result["catalog"].sizes["source"]
    found_late = np.arange(n) >= n - len(extra)  # appended after the catalogue's or detection's sources
    result["catalog"] = result["catalog"].to_dataset().assign(found_in_residual=("source", found_late))
    stage.update()
    stage.close()
    return result


def _on_grid(observations, frame):
    """The first observation on the frame's pixel grid, or None."""
    return next((o for o in observations if grid_offset(o, frame) is not None), None)


def _residual_sources(fitted, obs, exclude, opts) -> list:
    """New sources at the peaks of the fit's residual (:func:`residual_peaks`) outside
    ``exclude``, initialized on the residual as the others were."""
    found, _, resid = residual_peaks(fitted, obs, exclude=exclude)
    if not len(found):
        return []
    at = found + np.asarray(grid_offset(obs, fitted.frame))
    return list(initialize(resid, at, frame=fitted.frame, background=False, **opts).sources)


def _grown(scene):
    """(scene with leaking boxes grown, how many grew)."""
    bigger = grow_box_sizes(scene, max_leakage=GROWN_LEAKAGE)
    grown = sum(a.box != b.box for a, b in zip(scene.sources, bigger.sources, strict=True) if hasattr(a, "box"))
    return (bigger if grown else scene), grown


def build_result(ds, obs, fitted, info, errors=True) -> xr.DataTree:
    """The result DataTree: /model, /catalog, /fit, /scene.

    For a joint fit ``ds`` is the list of (name, Dataset) pairs and ``obs`` the Observations:
    ``/model`` then holds one group per observation, ``/model/<name>``, on its own grid and WCS.
    """
    joint = isinstance(obs, list | tuple)
    if joint:
        cubes = {
            f"/model/{name}": _cube(d, o, np.asarray(render(fitted, o))) for (name, d), o in zip(ds, obs, strict=True)
        }
        wcs = fitted.frame.wcs
        chi2_obs = _grid_observation(obs, fitted.frame)
    else:
        cubes = {"/model": _cube(ds, obs, np.asarray(render(fitted, obs)))}
        wcs = fitted.frame.wcs if fitted.frame.wcs is not None else get_wcs(ds)
        on_grid = grid_offset(obs, fitted.frame) is not None
        chi2_obs = (obs, grid_offset(obs, fitted.frame), cubes["/model"]["model"].values) if on_grid else None
    err_scene = _fix_arrays(fitted)  # same values; the parameters the errors refer to
    errs, cov, cov_floored = _errors(err_scene, obs) if errors else (None, None, None)
    catalog = source_catalog(err_scene, wcs, errs, cov, chi2_obs, cov_floored)
    how = "fisher" if errs is not None else "none"
    if errors and errs is None and not joint and _n_free(err_scene) > MAX_DENSE:
        # too many parameters for the dense matrix: the fluxes' errors from the same
        # information, built from renders that move several sources' entries at once
        rows = [i for i, src in enumerate(err_scene.sources) if not isinstance(src, Background)]
        catalog["flux_err"].values[:] = marginal_flux_errors(err_scene, obs)[rows]
        how = "fisher (fluxes only)"
    record = xr.Dataset(
        {"loss": ("iteration", info.loss_history)},
        attrs={
            "iterations": int(info.iterations),
            "converged": int(info.converged),
            "chi2": float(info.chi2),
            "dof": int(info.dof),
            "chi2_dof": float(info.chi2_dof),
            "n_free": int(info.n_free),
            "errors": how,
        },
    )
    root = xr.Dataset(
        attrs={
            "scarlet2_version": __version__,
            "chi2_dof": float(info.chi2_dof),
            "converged": int(info.converged),
            "n_sources": int(catalog.sizes["source"]),
        }
    )
    if joint:
        root.attrs["observations"] = [name for name, _ in ds]
    return xr.DataTree.from_dict(
        {"/": root, **cubes, "/catalog": catalog, "/fit": record, "/scene": scene_dataset(fitted)}
    )


def _cube(ds, obs, model) -> xr.Dataset:
    """Model, residual, data and weight of one observation, on its grid, with its WCS."""
    data = np.asarray(obs.data)
    weights = np.asarray(obs.weights)
    coords = {
        "band": ds["band"].values,
        "y": ds["y"].values if "y" in ds.coords else np.arange(model.shape[1]),
        "x": ds["x"].values if "x" in ds.coords else np.arange(model.shape[2]),
    }
    resid = data - model
    good = weights > 0
    cube = xr.Dataset(
        {
            "model": (("band", "y", "x"), model.astype(np.float32)),
            "residual": (("band", "y", "x"), np.where(good, resid, np.nan).astype(np.float32)),
            "data": (("band", "y", "x"), np.where(good, data, np.nan).astype(np.float32)),
            "weight": (("band", "y", "x"), weights.astype(np.float32)),
        },
        coords=coords,
        attrs={k: v for k, v in ds.attrs.items() if k != "schema_version"},
    )
    if hasattr(obs.psf, "array"):  # kept so that the result can be sampled (result.scarlet.sample)
        psf = np.broadcast_to(np.asarray(obs.psf.array), (len(obs.bands), *obs.psf_shape))
        cube["psf"] = (("band", "psf_y", "psf_x"), psf.astype(np.float32))
    cube.attrs["chi2_dof"] = float(np.sum(weights * resid**2) / max(int(good.sum()), 1))
    if obs.psf_shift and any(any(abs(v) > 0 for v in s) for s in obs.psf_shift):
        cube.attrs["psf_shift"] = [list(s) for s in obs.psf_shift]  # the PSF recentring applied, pixels
    return attach_wcs(cube, get_wcs(ds))


def _grid_observation(observations, frame):
    """(observation, offset, model) of the sharpest observation on the frame's grid, for the
    catalog's per-source chi^2, or None when none is."""
    for o in sorted(observations, key=lambda o: np.prod(o.data.shape[-2:]), reverse=True):
        offset = grid_offset(o, frame)
        if offset is not None:
            return o, offset, None
    return None


def _errors(fixed, obs):
    """Fisher errors of a scene whose free-form morphologies are held fixed (thousands of pixels
    make the dense matrix slow and ill-conditioned): errors of such sources are conditional on
    their shape."""
    n = _n_free(fixed)
    if n > MAX_DENSE or n == 0:
        return None, None, None
    return fisher_errors(fixed, obs)


def _n_free(scene) -> int:
    return sum(int(np.size(p.value)) for p, _ in free_slots(scene))


def _fix_arrays(scene):
    def fix(x):
        if isinstance(x, ArrayMorphology):
            return eqx.tree_at(lambda m: m.array, x, Parameter(x.array.value, x.array.constraint, fixed=True))
        return x

    return jax.tree.map(fix, scene, is_leaf=lambda x: isinstance(x, ArrayMorphology))


def result_observations(tree: xr.DataTree) -> list:
    """The Observations a fit result was made from, rebuilt from its ``/model`` group(s): data,
    weights, PSF (already recentred: no second shift) and WCS."""
    model = tree["model"]
    groups = [(name, node.to_dataset()) for name, node in model.children.items()] or [(None, model.to_dataset())]
    out = []
    for name, cube in groups:
        if "psf" not in cube:
            raise InputError(f"result group {name or 'model'} has no 'psf': it was written before results kept it")
        weights = np.nan_to_num(cube["weight"].values)
        data = np.where(weights > 0, np.nan_to_num(cube["data"].values), 0.0)
        bands = [str(b) for b in cube["band"].values]
        out.append(
            Observation(data, weights=weights, psf=cube["psf"].values, bands=bands, wcs=get_wcs(cube), name=name)
        )
    return out


def sample_result(
    tree: xr.DataTree, num_chains=4, num_warmup=500, num_samples=1000, seed=0, free_forms=False, **options
):
    """Posterior draws around a fit result's scene (:func:`scarlet2.sample`), as a DataTree.

    Free-form morphologies' pixels are held at their fitted values unless ``free_forms``
    (:func:`~scarlet2.infer.sample.hold_free_forms`: NUTS does not mix over thousands of
    unwhitened pixels); their spectra and centres are sampled with every other parameter.
    """
    from .posterior import sample
    from .store import scene_from_dataset

    scene = scene_from_dataset(tree["scene"].to_dataset())
    if not free_forms:
        scene = hold_free_forms(scene)
    return sample(scene, result_observations(tree), num_chains, num_warmup, num_samples, seed, **options)


def render_dataarray(ds: xr.Dataset, scene) -> xr.DataArray:
    """The scene rendered through an observation Dataset, labeled like its image."""
    obs = to_observation(ds)
    model = np.asarray(render(scene, obs))
    out = xr.DataArray(model, dims=("band", "y", "x"), coords={"band": ds["band"].values}, name="model")
    return attach_wcs(out.to_dataset(), get_wcs(ds))["model"]


__all__ = [
    "MODELS",
    "build_result",
    "detect",
    "fit_dataset",
    "render_dataarray",
    "result_observations",
    "sample_result",
]
