"""Catalogs: positions in (for detection and initialization) and per-source results out."""

from __future__ import annotations

import numpy as np
import xarray as xr

from ..errors import InputError
from ..infer.defaults import SPECTRUM_FLOOR
from ..infer.spectra import flux_scale
from ..model.parameter import free_parameters, free_slots
from ..model.positions import pixels_to_sky, sky_to_pixels, to_pixels
from ..model.source import MAX_SHIFT, Background
from ..render.boxes import box_leakage
from ..render.observe import render


def catalog_dataset(positions, snr=None, wcs=None) -> xr.Dataset:
    """A catalog Dataset on dim ``source`` with y, x (and ra, dec where a WCS is known)."""
    positions = np.asarray(positions, float).reshape(-1, 2)
    data = {"y": ("source", positions[:, 0]), "x": ("source", positions[:, 1])}
    if snr is not None:
        data["snr"] = ("source", np.asarray(snr, float))
    if wcs is not None and len(positions):
        ra, dec = pixels_to_sky(positions, wcs)
        data["ra"] = ("source", ra)
        data["dec"] = ("source", dec)
    return xr.Dataset(data, coords={"source": np.arange(len(positions))})


def catalog_positions(catalog, wcs=None) -> np.ndarray:
    """(n, 2) pixel (y, x) from a catalog Dataset (y/x or ra/dec), a DataFrame-like, or an array."""
    if catalog is None:
        raise InputError("no catalog")
    if isinstance(catalog, xr.Dataset | dict) or hasattr(catalog, "columns"):
        keys = set(catalog.keys()) if not hasattr(catalog, "columns") else set(catalog.columns)
        if {"y", "x"} <= keys:
            yx = np.stack([np.atleast_1d(np.asarray(catalog[k], float)) for k in ("y", "x")], axis=1)
            return to_pixels(yx.reshape(-1, 2), what="catalog positions")
        if {"ra", "dec"} <= keys:
            if wcs is None:
                raise InputError("catalog gives ra/dec but the observation has no WCS")
            return sky_to_pixels(catalog["ra"], catalog["dec"], wcs, what="catalog positions")
        raise InputError(f"catalog needs 'y' and 'x' or 'ra' and 'dec' columns, has {sorted(keys)}")
    return to_pixels(catalog, wcs, what="catalog positions").reshape(-1, 2)


def source_catalog(scene, wcs, errs, cov, chi2_obs=None, cov_floored=None) -> xr.Dataset:
    """Per-source catalog on dims (source, band, component).

    ``chi2_obs`` is (observation, (oy, ox), model or None) of an observation on the scene's frame
    grid, its pixel (0, 0) at frame pixel (oy, ox): each source's chi^2 is taken there, over its
    box (NaN without one).

    ``cov_floored`` (:func:`scarlet2.infer.uncertainty.fisher_errors`) marks fluxes the data do not
    constrain (a band whose pixels are all masked) with an infinite error, as for parameters.
    """
    bands = list(scene.frame.bands)
    srcs = [(i, s) for i, s in enumerate(scene.sources) if not isinstance(s, Background)]
    skies = [s for s in scene.sources if isinstance(s, Background)]
    free = free_parameters(scene) if errs is not None else []
    index, offset = {}, 0  # id(Parameter) -> slice into the covariance (local, not a registry)
    for rep, members in free_slots(scene) if errs is not None else []:
        for i in members:
            index[id(free[i])] = slice(offset, offset + int(np.size(rep.value)))
        offset += int(np.size(rep.value))
    err_of = {id(p): e for p, e in zip(free, errs, strict=True)} if errs is not None else {}
    ns, nb = len(srcs), len(bands)
    nc = max((len(s.components) for _, s in srcs), default=1)
    nan = np.full
    out = {
        "y": nan(ns, np.nan),
        "x": nan(ns, np.nan),
        "y_err": nan(ns, np.nan),
        "x_err": nan(ns, np.nan),
        "flux": nan((ns, nb), np.nan),
        "flux_err": nan((ns, nb), np.nan),
        "component_flux": nan((ns, nc, nb), np.nan),
        "sersic_n": nan((ns, nc), np.nan),
        "sersic_n_err": nan((ns, nc), np.nan),
        "r_e": nan((ns, nc), np.nan),
        "r_e_err": nan((ns, nc), np.nan),
        "e1": nan((ns, nc), np.nan),
        "e1_err": nan((ns, nc), np.nan),
        "e2": nan((ns, nc), np.nan),
        "e2_err": nan((ns, nc), np.nan),
        "chi2": nan(ns, np.nan),
        "center_at_bound": np.zeros(ns, bool),
        "flux_at_floor": np.zeros(ns, bool),
        "box_leakage": box_leakage(scene)[[i for i, _ in srcs]] if ns else np.zeros(0),
    }
    kinds, comp_kinds = [], np.full((ns, nc), "", dtype=object)
    if chi2_obs is not None:
        obs, (gy, gx), model = chi2_obs
        if model is None:
            model = np.asarray(render(scene, obs))
        w, r = np.asarray(obs.weights), np.asarray(obs.data) - model
    for k, (_, s) in enumerate(srcs):
        kinds.append(s.kind)
        c = np.asarray(s.origin, float) + np.asarray(s.offset.value, float)  # host: no eager ops
        out["y"][k], out["x"][k] = c
        e = err_of.get(id(s.offset))
        if e is not None:
            out["y_err"][k], out["x_err"][k] = e
        out["center_at_bound"][k] = bool(np.any(np.abs(np.asarray(s.offset.value)) > 0.99 * MAX_SHIFT))
        flux = np.asarray(s.flux(np), float)
        out["flux"][k] = flux
        spec_ids = [id(cm.spectrum) for cm in s.components]
        if cov is not None and all(i in index for i in spec_ids):
            # flux_b = sum_j a_j s_jb, a_j = 1 (profiles) or the array's sum (free-form, held fixed)
            a = [flux_scale(cm) for cm in s.components]
            sl = [index[i] for i in spec_ids]

            var = _combination_variance(cov, a, sl, nb)
            err = np.where(var > 0, np.sqrt(np.abs(var)), np.nan)
            if cov_floored is not None:  # mostly from directions the data do not constrain
                low = _combination_variance(cov_floored, a, sl, nb)
                err = np.where(low > 0.5 * var, np.inf, err)
            out["flux_err"][k] = err
        for j, cm in enumerate(s.components):
            comp_kinds[k, j] = type(cm.morphology).__name__.lower()
            out["component_flux"][k, j] = np.asarray(cm.flux(np), float)
            m = cm.morphology
            for name, attr in (("sersic_n", "n"), ("r_e", "r_e")):
                if hasattr(m, attr):
                    out[name][k, j] = float(m.__getattribute__(attr).value)
                    e = err_of.get(id(m.__getattribute__(attr)))
                    if e is not None:
                        out[name + "_err"][k, j] = float(e)
            if getattr(m, "ellipticity", None) is not None:
                out["e1"][k, j], out["e2"][k, j] = np.asarray(m.ellipticity.value, float)
                e = err_of.get(id(m.ellipticity))
                if e is not None:
                    out["e1_err"][k, j], out["e2_err"][k, j] = e
        floor = SPECTRUM_FLOOR * (1 + 1e-3) * max(np.max(flux), 1e-30)  # round-off above the floor
        out["flux_at_floor"][k] = bool(np.any(flux <= floor))
        # reduced chi^2 over the source's box
        if chi2_obs is None:
            continue
        h, wd = s.box
        oy, ox = (int(v) for v in np.asarray(s.origin))
        y0, x0 = oy - h // 2 - gy, ox - wd // 2 - gx
        ys = slice(max(y0, 0), max(y0 + h, 0))
        xs = slice(max(x0, 0), max(x0 + wd, 0))
        ww, rr = w[:, ys, xs], r[:, ys, xs]
        npx = int(np.sum(ww > 0))
        out["chi2"][k] = float(np.sum(ww * rr**2) / npx) if npx else np.nan
    dims = {
        "y": ("source",),
        "x": ("source",),
        "y_err": ("source",),
        "x_err": ("source",),
        "flux": ("source", "band"),
        "flux_err": ("source", "band"),
        "component_flux": ("source", "component", "band"),
        "chi2": ("source",),
        "center_at_bound": ("source",),
        "flux_at_floor": ("source",),
        "box_leakage": ("source",),
    }
    data = {k: (dims.get(k, ("source", "component")), v) for k, v in out.items()}
    data["kind"] = ("source", np.array(kinds, dtype=object))
    data["component_kind"] = (("source", "component"), comp_kinds)
    if wcs is not None and ns:
        ra, dec = pixels_to_sky(np.stack([out["y"], out["x"]], axis=1), wcs)
        data["ra"] = ("source", ra)
        data["dec"] = ("source", dec)
    if skies:
        data["sky"] = ("band", np.sum([np.asarray(s.spectrum.value, float) for s in skies], axis=0))
        e = err_of.get(id(skies[0].spectrum))
        data["sky_err"] = ("band", np.asarray(e, float) if e is not None else np.full(nb, np.nan))
    ds = xr.Dataset(
        data, coords={"source": np.arange(ns), "band": np.array(bands, dtype=object), "component": np.arange(nc)}
    )
    ds["flux"].attrs["description"] = "total flux per band (sum of components), in data units"
    ds["flux_err"].attrs["description"] = (
        "1-sigma Fisher error with parameter covariances; conditional on the shape for free-form components"
    )
    ds["chi2"].attrs["description"] = "chi^2 per unmasked pixel within the source's box"
    ds["box_leakage"].attrs["description"] = (
        "upper bound on the fraction of the source's flux beyond its box (wrapped into it); see scarlet2.grow_boxes"
    )
    return ds


def _combination_variance(cov, a, slices, n_bands):
    """Per band b, the variance of sum_j a_j s_jb over the spectra at ``slices`` of ``cov``."""
    a = np.asarray(a, float)
    out = np.empty(n_bands)
    for b in range(n_bands):
        idx = [sl.start + b for sl in slices]
        out[b] = a @ cov[np.ix_(idx, idx)] @ a
    return out
