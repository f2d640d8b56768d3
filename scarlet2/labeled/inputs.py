"""What the xarray face accepts as observations: one Dataset, several, or a DataTree of them."""

from __future__ import annotations

import xarray as xr

from ..errors import InputError


def named_datasets(inputs) -> list[tuple[str | None, xr.Dataset]]:
    """(name, Dataset) pairs of the observations in ``inputs``.

    One Dataset gives one pair named by its ``attrs["name"]`` (None without); a list or tuple
    of Datasets gives their ``attrs["name"]`` or ``"obs<i>"``; a DataTree gives every node that
    holds an ``image`` variable, named by its path (``"hst"``, ``"deep/hsc"``).
    """
    if isinstance(inputs, xr.Dataset):
        return [(inputs.attrs.get("name"), inputs)]
    if isinstance(inputs, xr.DataTree):
        pairs = [
            (node.path.strip("/") or "root", node.to_dataset()) for node in inputs.subtree if "image" in node.data_vars
        ]
        if not pairs:
            raise InputError("the DataTree holds no observation (no node with an 'image' variable)")
        return pairs
    if isinstance(inputs, list | tuple) and inputs and all(isinstance(d, xr.Dataset) for d in inputs):
        pairs = [(d.attrs.get("name") or f"obs{i}", d) for i, d in enumerate(inputs)]
        names = [n for n, _ in pairs]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise InputError(f"observations must have distinct names (attrs['name']), {repeated} repeated")
        return pairs
    got = type(inputs).__name__
    raise InputError(f"expected an observation Dataset, a list of them or a DataTree of them, got {got}")


#: Dataset attributes that must agree between observations of the same band.
BAND_METADATA = ("flux_unit", "zero_point")


def check_shared_bands(named) -> None:
    """Refuse a band that two observations give with different :data:`BAND_METADATA` (its data
    would be on different scales), naming the band and both observations."""
    seen = {}
    for name, ds in named:
        for band in (str(b) for b in ds["band"].values):
            meta = {k: ds.attrs.get(k) for k in BAND_METADATA}
            if band in seen:
                other, other_meta = seen[band]
                diff = [k for k in BAND_METADATA if None not in (meta[k], other_meta[k]) and meta[k] != other_meta[k]]
                if diff:
                    what = ", ".join(f"{k} {other_meta[k]!r} vs {meta[k]!r}" for k in diff)
                    raise InputError(
                        f"band {band!r} is in observations {other!r} and {name!r} with different {what}: "
                        "give them on one scale (or name the bands apart)"
                    )
            else:
                seen[band] = (name, meta)


__all__ = ["BAND_METADATA", "check_shared_bands", "named_datasets"]
