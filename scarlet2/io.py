"""Zarr (v3) input and output: observations, fit results, scenes."""

from __future__ import annotations

import os
import warnings

import numpy as np
import xarray as xr

from .serialize import scene_from_json, scene_to_json


def open_dataset(path_or_url, chunks=None, **kwargs) -> xr.Dataset:
    """Open an observation Dataset from Zarr, lazily (dask) and with the WCS as a coordinate.

    ``path_or_url`` is a local path or an fsspec URL (``memory://``, ``s3://``, ...).
    ``chunks`` defaults to the store's own chunks.
    """
    kwargs.setdefault("consolidated", None)
    with warnings.catch_warnings():  # v3 stores have no consolidated metadata: not worth a warning
        warnings.filterwarnings("ignore", message=".*consolidated metadata.*", category=RuntimeWarning)
        return xr.open_dataset(
            path_or_url, engine="zarr", chunks={} if chunks is None else chunks, decode_coords="all", **kwargs
        )


def write_zarr(obj, path_or_url, mode="w-", **kwargs):
    """Write a Dataset or DataTree to Zarr v3 (band names as variable-length strings).

    ``mode="w-"`` (the default) refuses an existing store with a ``FileExistsError`` naming it;
    ``mode="w"`` overwrites it.
    """
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
    return xr.Dataset(data, attrs={"structure": text})


def scene_from_dataset(ds: xr.Dataset):
    return scene_from_json(ds.attrs["structure"], {k: ds[k].values for k in ds.data_vars})


def save_scene(scene, path_or_url, group=None, mode="w-"):
    """Write a scene to Zarr (no pickle)."""
    return write_zarr(scene_dataset(scene), path_or_url, mode=mode, group=group)


def load_scene(path_or_url, group=None):
    """Rebuild a scene from Zarr: a result store (its ``scene`` group) or a :func:`save_scene` store."""
    if group is None:
        group = "scene" if _has_group(path_or_url, "scene") else None
    ds = xr.open_dataset(path_or_url, engine="zarr", group=group, chunks=None, consolidated=False)
    if "structure" not in ds.attrs:
        where = "its root" if group is None else f"its group {group!r}"
        raise ValueError(f"{path_or_url}: no scarlet2 scene (attrs['structure']) in {where}")
    return scene_from_dataset(ds)


def open_result(path_or_url) -> xr.DataTree:
    """Open a fit result (DataTree) written by ``result.to_zarr`` / :func:`write_zarr`."""
    return xr.open_datatree(path_or_url, engine="zarr", decode_coords="all", chunks={}, consolidated=False)


def _has_group(path_or_url, name) -> bool:
    import zarr

    try:
        root = zarr.open_group(os.fspath(path_or_url) if hasattr(path_or_url, "__fspath__") else path_or_url, mode="r")
        return name in root.group_keys()
    except Exception:
        return False
