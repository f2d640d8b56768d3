"""Zarr (v3) input and output: observations, fit results, scenes."""

from __future__ import annotations

import os
import warnings

import numpy as np
import xarray as xr

from ..errors import StoreError
from .serialize import FORMAT, scene_from_json, scene_to_json

#: Most elements one array of a stored scene may have (a free-form morphology of 2000 x 2000
#: pixels in float32 is 4e6); a store claiming more is refused before anything is read.
MAX_SCENE_ARRAY_ELEMENTS = 10**8


def open_dataset(path_or_url, chunks=None, **kwargs) -> xr.Dataset:
    """Open an observation Dataset from Zarr, lazily (dask) and with the WCS as a coordinate.

    ``path_or_url`` is a local path or an fsspec URL (``memory://``, ``s3://``, ...).
    ``chunks`` defaults to the store's own chunks.
    """
    kwargs.setdefault("consolidated", None)
    with warnings.catch_warnings():  # v3 stores have no consolidated metadata: not worth a warning
        warnings.filterwarnings("ignore", message=".*consolidated metadata.*", category=RuntimeWarning)
        try:
            ds = xr.open_dataset(
                path_or_url, engine="zarr", chunks={} if chunks is None else chunks, decode_coords="all", **kwargs
            )
        except FileNotFoundError as err:
            raise FileNotFoundError(f"{path_or_url}: no such Zarr store ({err})") from None
        except (ValueError, KeyError, TypeError, OSError) as err:  # e.g. garbage in a zarr.json
            raise StoreError(f"{path_or_url}: not a readable Zarr store ({type(err).__name__}: {err})") from None
    # where it came from, so that survey workers read their windows from the store themselves
    ds.encoding["scarlet2_source"] = os.fspath(path_or_url)
    return ds


def write_zarr(obj, path_or_url, mode="w-", **kwargs):
    """Write a Dataset or DataTree to Zarr v3 (band names as variable-length strings).

    ``mode="w-"`` (the default) refuses an existing store with a ``FileExistsError`` naming it;
    ``mode="w"`` overwrites it.
    """
    if not isinstance(obj, xr.Dataset | xr.DataTree | xr.DataArray):
        raise TypeError(f"write_zarr writes an xarray Dataset, DataTree or DataArray, not {type(obj).__name__}")
    kwargs.setdefault("zarr_format", 3)
    kwargs.setdefault("consolidated", False)  # not part of the v3 specification
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*does not have a Zarr V3 specification.*")
        try:
            return obj.to_zarr(path_or_url, mode=mode, **kwargs)
        except FileExistsError as e:  # zarr's message names neither the store nor the way out
            where = path_or_url if kwargs.get("group") is None else f"{path_or_url} (group {kwargs['group']!r})"
            raise FileExistsError(f"{where} already exists; pass mode='w' to overwrite it") from e


def scene_dataset(scene) -> xr.Dataset:
    """The scene as a Dataset of plain arrays with its JSON structure in attrs."""
    text, arrays = scene_to_json(scene)
    data = {k: (tuple(f"{k}_{i}" for i in range(np.ndim(v))), np.asarray(v)) for k, v in arrays.items()}
    ds = xr.Dataset(data, attrs={"structure": text})
    for k in ds.data_vars:
        # every chunk written, even one equal to the fill value (an origin at pixel 0): a
        # missing chunk then always means a damaged store (_check_chunks)
        ds[k].encoding["write_empty_chunks"] = True
    return ds


def scene_from_dataset(ds: xr.Dataset, where: str = "stored scene"):
    """The scene of a Dataset made by :func:`scene_dataset` (its arrays are read here, after
    their sizes are checked)."""
    if "structure" not in ds.attrs:
        raise StoreError(f"{where}: no scarlet2 scene (attrs['structure'])")
    big = {k: int(ds[k].size) for k in ds.data_vars if ds[k].size > MAX_SCENE_ARRAY_ELEMENTS}
    if big:
        raise StoreError(
            f"{where}: scene arrays {big} exceed {MAX_SCENE_ARRAY_ELEMENTS} elements; refusing to read them"
        )
    arrays = {}
    for k in ds.data_vars:
        a = np.asarray(ds[k].values)
        if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
            raise StoreError(
                f"{where}: scene array {k!r} has {int(np.sum(~np.isfinite(a)))} non-finite values "
                "(a chunk missing from the store reads as NaN); the store is incomplete or damaged"
            )
        arrays[k] = a
    return scene_from_json(ds.attrs["structure"], arrays, where=where)


def save_scene(scene, path_or_url, group=None, mode="w-"):
    """Write a scene to Zarr (no pickle)."""
    return write_zarr(scene_dataset(scene), path_or_url, mode=mode, group=group)


def load_scene(path_or_url, group=None):
    """Rebuild a scene from Zarr: a result store (its ``scene`` group) or a :func:`save_scene` store.

    Nothing the store names is imported or run: see :mod:`scarlet2.labeled.serialize`.

    Raises
    ------
    StoreError
        Naming the store (and group): no scene in it, missing chunks, oversized or non-finite
        arrays, or a structure that names types a scene may not contain.
    """
    if group is None:
        group = "scene" if _has_group(path_or_url, "scene") else None
    where = f"{path_or_url}" + ("" if group is None else f" (group {group!r})")
    _check_chunks(path_or_url, group, where)
    try:
        ds = xr.open_dataset(path_or_url, engine="zarr", group=group, chunks=None, consolidated=False)
    except FileNotFoundError:
        raise
    except (OSError, ValueError, KeyError) as err:
        raise StoreError(f"{where}: not a readable Zarr store ({type(err).__name__}: {err})") from None
    return scene_from_dataset(ds, where=where)


def _check_chunks(path_or_url, group, where) -> None:
    """Every chunk of every array in the scene group is present (zarr reads a missing one as
    the fill value, which would make a silently wrong scene)."""
    import zarr

    try:
        root = zarr.open_group(_store_path(path_or_url), mode="r", path=group or "")
    except FileNotFoundError:
        raise FileNotFoundError(f"{where}: no such Zarr store") from None
    except Exception as err:  # zarr raises several types for unreadable metadata
        raise StoreError(f"{where}: not a readable Zarr group ({type(err).__name__}: {err})") from None
    if "structure" not in root.attrs:
        where_in = "its root" if group is None else f"its group {group!r}"
        raise StoreError(f"{_store_path(path_or_url)}: no scarlet2 scene (attrs['structure']) in {where_in}")
    # format /1 stores skipped chunks equal to the fill value (NaN for floats, which the
    # non-finite check of scene_from_dataset catches; 0 for integers, indistinguishable)
    complete = FORMAT in str(root.attrs["structure"])[:200]
    for name, array in root.arrays():
        if array.size > MAX_SCENE_ARRAY_ELEMENTS:
            raise StoreError(f"{where}: scene array {name!r} of shape {array.shape} is too large to be a scene's")
        if complete and array.nchunks_initialized < array.nchunks:
            raise StoreError(
                f"{where}: scene array {name!r} has {array.nchunks - array.nchunks_initialized} of its "
                f"{array.nchunks} chunks missing; the store is incomplete"
            )


def _store_path(path_or_url):
    return os.fspath(path_or_url) if hasattr(path_or_url, "__fspath__") else path_or_url


def open_result(path_or_url) -> xr.DataTree:
    """Open a fit result (DataTree) written by ``result.to_zarr`` / :func:`write_zarr`."""
    return xr.open_datatree(path_or_url, engine="zarr", decode_coords="all", chunks={}, consolidated=False)


def _has_group(path_or_url, name) -> bool:
    import zarr

    try:
        root = zarr.open_group(_store_path(path_or_url), mode="r")
        return name in root.group_keys()
    except Exception:
        return False
