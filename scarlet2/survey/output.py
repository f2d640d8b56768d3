"""The survey's output store: pre-created mosaics, one record group per region, the catalog.

Layout of ``OUT.zarr``::

    /                 attrs: the input it was made for, the settings, and when complete the counts
    /model            model, residual (band, y, x) on the input's grid and WCS, in chunks of
                      one tile (each region writes its own chunks, no two regions share one)
    /regions/<name>   one group per region that ran: its catalog rows (dim ``source``) and in its
                      attrs ``status`` ("done" or "failed"), the error, counts, chi^2, seconds
    /catalog          every region's rows, in region order, with ids (written at the end)

A region's record is written last, after its mosaic chunks and rows: a region counts as
finished only when its record says so, so a run killed at any moment loses nothing recorded
as finished, and a rerun redoes exactly the regions that are not (their chunks are rewritten
whole). Opening the store reads JSON metadata and arrays only; nothing in it is executed.
"""

from __future__ import annotations

import hashlib
import json
import warnings

import numpy as np
import xarray as xr

from .._version import __version__
from ..errors import InputError, StoreError
from ..labeled.schema import attach_wcs, get_wcs
from ..labeled.store import write_zarr
from .kernel import COLUMNS, FLAGS, KINDS, N_COMPONENTS, RegionResult, SurveySettings
from .regions import Region

FORMAT = "scarlet2-survey/1"
DONE, FAILED = "done", "failed"


def input_identity(ds: xr.Dataset, source: str | None) -> dict:
    """What an output store is made for: the input's name, shape, bands and WCS (a digest)."""
    wcs = get_wcs(ds)
    header = wcs.to_header_string() if wcs is not None else ""
    shape = [int(ds.sizes["band"]), int(ds.sizes["y"]), int(ds.sizes["x"])]
    bands = [str(b) for b in ds["band"].values]
    digest = hashlib.sha256(json.dumps([shape, bands, header]).encode()).hexdigest()[:16]
    return {"source": str(source) if source is not None else "in-memory Dataset", "shape": shape, "digest": digest}


def _open_group(out, storage_options, mode="r"):
    import zarr

    return zarr.open_group(out, mode=mode, storage_options=storage_options or None)


def _exists(out, storage_options) -> bool:
    import fsspec

    fs, path = fsspec.core.url_to_fs(str(out), **(storage_options or {}))
    return fs.exists(path.rstrip("/") + "/zarr.json")


def prepare_output(out, ds, identity, settings: SurveySettings, storage_options=None, resume=True) -> bool:
    """Create the output store for ``ds`` (metadata and coordinates; the mosaics stay empty), or
    check that an existing one was made for the same input and settings. Returns True when
    it existed (a resume).

    Raises
    ------
    InputError
        The store exists and ``resume`` is false, or it was made for another input or with other
        settings (naming both).
    StoreError
        The store exists but is not a survey output.
    """
    if _exists(out, storage_options):
        try:
            group = _open_group(out, storage_options)
            attrs, children = dict(group.attrs), set(group.group_keys()) | set(group.array_keys())
        except Exception as err:
            raise StoreError(f"{out}: not a readable Zarr store ({type(err).__name__}: {err})") from None
        if not attrs and children <= {"model"}:  # a run killed while creating it: start afresh
            import fsspec

            fs, path = fsspec.core.url_to_fs(str(out), **(storage_options or {}))
            fs.rm(path, recursive=True)
            return prepare_output(out, ds, identity, settings, storage_options, resume)
        if attrs.get("format") != FORMAT:
            raise StoreError(f"{out} exists and is not a scarlet2 survey output; choose another --out")
        made_for = attrs.get("input", {})
        if made_for.get("digest") != identity["digest"]:
            raise InputError(
                f"{out} was made for input {made_for.get('source')} (shape {made_for.get('shape')}), not for "
                f"{identity['source']} (shape {identity['shape']}): refusing to mix them; choose another --out"
            )
        if attrs.get("settings") != dataclass_dict(settings):
            raise InputError(
                f"{out} was made with settings {attrs.get('settings')}, not {dataclass_dict(settings)}: "
                "a resumed run must use the same tile, halo and fit settings"
            )
        if not resume:
            raise InputError(f"{out} already exists; resume=True (the default) finishes it, or choose another --out")
        return True
    nb, ny, nx = identity["shape"]
    chunks = (nb, settings.tile, settings.tile)
    import dask.array as da

    empty = da.full((nb, ny, nx), np.nan, dtype=np.float32, chunks=chunks)
    cubes = xr.Dataset(
        {"model": (("band", "y", "x"), empty), "residual": (("band", "y", "x"), empty)},
        coords={"band": ds["band"].values, "y": np.arange(ny), "x": np.arange(nx)},
    )
    cubes = attach_wcs(cubes, get_wcs(ds))
    for name in ("model", "residual"):
        cubes[name].encoding.update(chunks=chunks, fill_value=np.nan)
    root = xr.Dataset(
        attrs={
            "format": FORMAT,
            "scarlet2_version": __version__,
            "input": identity,
            "settings": dataclass_dict(settings),
            "complete": 0,
        }
    )
    # the root's attrs last: a store is a survey output only once its mosaics exist
    write_zarr(cubes, out, mode="w-", group="model", compute=False, storage_options=storage_options)
    write_zarr(root, out, mode="a", storage_options=storage_options)
    return False


def dataclass_dict(settings) -> dict:
    import dataclasses

    return {k: (float(v) if isinstance(v, float) else v) for k, v in dataclasses.asdict(settings).items()}


def read_records(out, storage_options=None) -> dict[str, dict]:
    """Region name -> record attrs of every region whose record is readable and final."""
    try:
        root = _open_group(out, storage_options)
        if "regions" not in root.group_keys():
            return {}
        regions = root["regions"]
        names = list(regions.group_keys())
    except Exception as err:
        raise StoreError(f"{out}: its region records cannot be read ({type(err).__name__}: {err})") from None
    records = {}
    for name in names:
        try:
            attrs = dict(regions[name].attrs)
        except Exception:  # a record cut short by a crash: the region is not finished
            continue
        if attrs.get("status") in (DONE, FAILED):
            records[name] = attrs
    return records


def write_region(out, region: Region, result: RegionResult, storage_options=None) -> None:
    """Write a finished region: its mosaic chunks, its catalog rows, then its record (last)."""
    import zarr

    y0, y1, x0, x1 = region.core
    for name, cube in (("model", result.model), ("residual", result.residual)):
        arr = zarr.open_array(out, path=f"model/{name}", mode="r+", storage_options=storage_options or None)
        arr[:, y0:y1, x0:x1] = cube
    rows = _rows_dataset(result.catalog)
    rows.attrs = {}
    group = f"regions/{region.name}"
    write_zarr(rows, out, mode="w", group=group, storage_options=storage_options)
    record = {k: _plain(v) for k, v in result.record.items()}
    record.update(status=DONE, index=region.index, core=list(region.core))
    _open_group(out, storage_options, mode="r+")[group].attrs.update(record)


def write_failure(out, region: Region, error: str, storage_options=None) -> None:
    """Record a region whose fit raised, diverged or was lost with its worker."""
    root = _open_group(out, storage_options, mode="r+")
    group = root.require_group("regions").require_group(region.name)
    for key in list(group.array_keys()):
        del group[key]
    record = {"status": FAILED, "error": str(error)[:2000], "index": region.index, "core": list(region.core)}
    group.attrs.update(record)


def _plain(v):
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, float) and not np.isfinite(v):
        return None
    return v


def _rows_dataset(table: dict) -> xr.Dataset:
    data = {}
    for name, (_, banded, per_comp) in COLUMNS.items():
        dims = ("source", "band") if banded else ("source", "component") if per_comp else ("source",)
        data[name] = (dims, np.asarray(table[name]))
    return xr.Dataset(data)


#: The catalog's description of its flux errors, by :attr:`SurveySettings.flux_errors`.
FLUX_ERROR_NOTES = {
    "marginal": "1 sigma from the Fisher information over every amplitude, shape and position in the region",
    "linear": "conditional on the fitted shapes (per-band linear least squares)",
}


def finalize(
    out, regions: list[Region], bands, wcs, storage_options=None, parquet=None, flux_errors="marginal"
) -> xr.Dataset:
    """Gather the finished regions' rows into ``/catalog`` (ids in region order) and mark the
    store complete when every region is done. Returns the catalog."""
    records = read_records(out, storage_options)
    parts = []
    for r in regions:
        rec = records.get(r.name)
        if rec is None or rec["status"] != DONE or not rec.get("n_sources"):
            continue
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*consolidated metadata.*")
            rows = xr.open_dataset(
                out, engine="zarr", group=f"regions/{r.name}", chunks=None, consolidated=False,
                storage_options=storage_options,
            ).load()  # fmt: skip
        parts.append(rows.assign(region=("source", np.full(rows.sizes["source"], r.index, np.int32))))
    if parts:
        cat = xr.concat(parts, dim="source")
    else:
        cat = _rows_dataset({k: np.zeros((0, len(bands)) if b else (0, N_COMPONENTS) if c else (0,), t)
                             for k, (t, b, c) in COLUMNS.items()})  # fmt: skip
        cat = cat.assign(region=("source", np.zeros(0, np.int32)))
    n = cat.sizes["source"]
    cat = cat.assign_coords(source=np.arange(n), band=np.array([str(b) for b in bands], dtype=object))
    cat["id"] = ("source", np.arange(n, dtype=np.int64))
    cat.attrs = {
        "kinds": json.dumps(list(KINDS)),
        "flags": json.dumps(FLAGS),
        "flux_err": FLUX_ERROR_NOTES[flux_errors],
    }
    cat = attach_wcs(cat, wcs)
    write_zarr(cat, out, mode="w", group="catalog", storage_options=storage_options)
    done = sum(1 for r in regions if records.get(r.name, {}).get("status") == DONE)
    failed = [r.name for r in regions if records.get(r.name, {}).get("status") == FAILED]
    root = _open_group(out, storage_options, mode="r+")
    root.attrs.update(
        complete=int(done == len(regions)), n_sources=int(n), n_regions=len(regions), regions_done=done,
        regions_failed=failed,
    )  # fmt: skip
    if parquet is not None:
        catalog_frame(cat).to_parquet(parquet, storage_options=storage_options)
    return cat


def catalog_frame(cat: xr.Dataset):
    """The catalog as a flat pandas DataFrame (``flux_g``, ``r_e_0``, ..., ``kind`` as text)."""
    import pandas as pd

    bands = [str(b) for b in cat["band"].values]
    cols = {}
    for name in cat.data_vars:
        v = cat[name].values
        if cat[name].dims == ("source", "band"):
            cols.update({f"{name}_{b}": v[:, k] for k, b in enumerate(bands)})
        elif cat[name].dims == ("source", "component"):
            cols.update({f"{name}_{j}": v[:, j] for j in range(v.shape[1])})
        else:
            cols[name] = v
    frame = pd.DataFrame(cols)
    frame["kind"] = [KINDS[k] for k in frame["kind"]]
    return frame


def open_survey(out, storage_options=None) -> xr.DataTree:
    """A survey output as a DataTree: ``/`` (the run's attrs), ``/model`` (model, residual with
    the WCS, lazy), ``/catalog`` and ``/regions`` (one row per region: status, counts, error)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*consolidated metadata.*")
        kw = dict(engine="zarr", consolidated=False, decode_coords="all", storage_options=storage_options)
        root = xr.Dataset(attrs=dict(_open_group(out, storage_options).attrs))
        nodes = {"/": root, "/model": xr.open_dataset(out, group="model", chunks={}, **kw)}
        try:
            nodes["/catalog"] = xr.open_dataset(out, group="catalog", chunks=None, **kw)
        except (FileNotFoundError, KeyError, OSError):
            pass  # a run that has not finished yet
    records = read_records(out, storage_options)
    names = sorted(records, key=lambda n: records[n]["index"])
    table = {
        "name": ("region", np.array(names, dtype=object)),
        "status": ("region", np.array([records[n]["status"] for n in names], dtype=object)),
        "n_sources": ("region", np.array([records[n].get("n_sources", 0) or 0 for n in names], np.int64)),
        "seconds": ("region", np.array([records[n].get("seconds") or np.nan for n in names], float)),
        "error": ("region", np.array([records[n].get("error", "") for n in names], dtype=object)),
    }
    nodes["/regions"] = xr.Dataset(table, coords={"region": [records[n]["index"] for n in names]})
    return xr.DataTree.from_dict(nodes)


def open_result(path_or_url, storage_options=None) -> xr.DataTree:
    """Open a result store: a survey output (:func:`open_survey`) or a fit result DataTree."""
    from ..labeled.store import open_result as open_fit_result

    if is_survey(path_or_url, storage_options):
        return open_survey(path_or_url, storage_options)
    return open_fit_result(path_or_url)


def is_survey(out, storage_options=None) -> bool:
    try:
        return _open_group(out, storage_options).attrs.get("format") == FORMAT
    except Exception:
        return False


__all__ = ["finalize", "open_result", "open_survey", "prepare_output", "read_records", "write_failure", "write_region"]
