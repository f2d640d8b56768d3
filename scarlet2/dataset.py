"""The observation schema: an xarray Dataset with dims (band, y, x) and a persisted WCS.

Variables
---------
image (band, y, x)              data
variance or weight (band, y, x) noise; variance inf or weight 0 masks a pixel (<= 0 / NaN: mask it)
mask (band, y, x), optional     True/nonzero = bad pixel
psf (band, psf_y, psf_x)        normalized, centred PSF images (or attrs ``psf_model``)

Coordinates: ``band`` (names), integer pixel ``y`` and ``x``, and the scalar ``wcs`` whose attrs
hold the FITS header (``fits_header``); data variables name it in ``encoding["grid_mapping"]`` (as
rioxarray does with ``spatial_ref``), so ``decode_coords="all"`` restores it as a coordinate.
Attrs: ``instrument``, ``pixel_scale`` (arcsec), ``flux_unit`` or ``zero_point``, ``schema_version``.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from astropy.io import fits
from astropy.wcs import WCS

SCHEMA_VERSION = "1"
WCS_VAR = "wcs"
PSF_DIMS = ("psf_y", "psf_x")


class SchemaError(ValueError):
    """A Dataset does not follow the scarlet2 observation schema."""


def wcs_coordinate(wcs: WCS | None) -> xr.DataArray:
    """Scalar coordinate carrying the WCS as a FITS header string."""
    header = "" if wcs is None else wcs.to_header(relax=True).tostring(sep="\n")
    return xr.DataArray(0, attrs={"fits_header": header})


def get_wcs(obj) -> WCS | None:
    """The astropy WCS of a Dataset/DataArray, parsed from its ``wcs`` coordinate (not cached)."""
    if WCS_VAR not in obj.coords and WCS_VAR not in getattr(obj, "variables", {}):
        return None
    header = obj[WCS_VAR].attrs.get("fits_header", "")
    if not header:
        return None
    try:
        return WCS(fits.Header.fromstring(header, sep="\n")).celestial
    except Exception as exc:  # astropy raises several types for bad headers
        raise SchemaError(f"variable '{WCS_VAR}': unparsable FITS header in attrs['fits_header'] ({exc})") from exc


def _attach_wcs(ds: xr.Dataset, wcs) -> xr.Dataset:
    ds = ds.assign_coords({WCS_VAR: wcs_coordinate(wcs)})
    for name in ds.data_vars:
        if {"y", "x"} <= set(ds[name].dims):
            # in encoding, as rioxarray does: written as the CF attribute, decoded back to encoding
            ds[name].encoding["grid_mapping"] = WCS_VAR
    return ds


def from_arrays(
    images,
    *,
    variance=None,
    weight=None,
    psf=None,
    bands,
    wcs: WCS | None = None,
    mask=None,
    instrument: str = "unknown",
    pixel_scale: float | None = None,
    flux_unit: str | None = None,
    zero_point: float | None = None,
) -> xr.Dataset:
    """Build an observation Dataset from numpy arrays (and an astropy WCS)."""
    images = np.asarray(images, np.float32)
    if images.ndim == 2:
        images = images[None]
    nb, ny, nx = images.shape
    coords = {"band": np.array([str(b) for b in bands], dtype=object), "y": np.arange(ny), "x": np.arange(nx)}
    dv = {"image": (("band", "y", "x"), images)}
    if variance is not None:
        dv["variance"] = (("band", "y", "x"), np.broadcast_to(np.asarray(variance, np.float32), images.shape))
    if weight is not None:
        dv["weight"] = (("band", "y", "x"), np.broadcast_to(np.asarray(weight, np.float32), images.shape))
    if mask is not None:
        dv["mask"] = (("band", "y", "x"), np.broadcast_to(np.asarray(mask, bool), images.shape))
    if psf is not None:
        p = np.asarray(psf, np.float32)
        if p.ndim == 2:
            p = np.broadcast_to(p, (nb,) + p.shape)
        dv["psf"] = (("band",) + PSF_DIMS, p)
    if pixel_scale is None and wcs is not None:
        from astropy.wcs.utils import proj_plane_pixel_scales

        pixel_scale = float(np.mean(proj_plane_pixel_scales(wcs.celestial)) * 3600)
    attrs = {"instrument": instrument, "schema_version": SCHEMA_VERSION}
    if pixel_scale is not None:
        attrs["pixel_scale"] = float(pixel_scale)
    if flux_unit is not None:
        attrs["flux_unit"] = flux_unit
    if zero_point is not None:
        attrs["zero_point"] = float(zero_point)
    ds = xr.Dataset(dv, coords=coords, attrs=attrs)
    ds = _attach_wcs(ds, None if wcs is None else wcs.celestial)
    validate(ds)
    return ds


def from_fits(
    image,
    *,
    variance=None,
    weight=None,
    psf=None,
    bands=None,
    instrument: str = "unknown",
    hdu: int = 0,
    **attrs,
) -> xr.Dataset:
    """Build an observation Dataset from FITS files.

    ``image`` (and ``variance``/``weight``/``psf``) is a path to a cube (band, y, x) or a list of
    paths, one 2-d image per band. The WCS comes from the (first) image header.
    """
    img, header = _read_fits(image, hdu)
    wcs = WCS(header).celestial if header is not None else None
    var = _read_fits(variance, hdu)[0] if variance is not None else None
    wt = _read_fits(weight, hdu)[0] if weight is not None else None
    if psf is not None:
        p = _read_fits(psf, hdu)[0]
        if p.ndim == 2:
            p = np.broadcast_to(p, (img.shape[0],) + p.shape)
        psf = p / p.sum(axis=(-2, -1), keepdims=True)  # FITS PSFs are often not normalized
    if var is None and wt is None:
        raise SchemaError(f"{image}: give variance= or weight= FITS files (or estimate the noise first)")
    bands = bands if bands is not None else [str(i) for i in range(img.shape[0])]
    return from_arrays(img, variance=var, weight=wt, psf=psf, bands=bands, wcs=wcs, instrument=instrument, **attrs)


def _read_fits(paths, hdu):
    if isinstance(paths, str | bytes) or hasattr(paths, "__fspath__"):
        paths = [paths]
    planes, header = [], None
    for p in paths:
        with fits.open(p) as hdul:
            data = np.asarray(hdul[hdu].data, np.float64)
            if header is None:
                header = hdul[hdu].header
        planes.append(data if data.ndim == 3 else data[None])
    return np.concatenate(planes, axis=0), header


def validate(ds: xr.Dataset) -> xr.Dataset:
    """Check a Dataset against the observation schema; raise :class:`SchemaError` naming the
    variable at the first violation. Returns the Dataset for chaining."""
    if "band" not in ds.dims or "band" not in ds.coords:
        raise SchemaError("missing 'band' dimension/coordinate (band names)")
    if "image" not in ds:
        raise SchemaError("missing data variable 'image' (band, y, x)")
    img = ds["image"]
    if img.dims != ("band", "y", "x"):
        raise SchemaError(f"variable 'image' has dims {img.dims}, expected ('band', 'y', 'x')")
    noise = [v for v in ("variance", "weight") if v in ds]
    if not noise:
        raise SchemaError("missing data variable 'variance' or 'weight' (band, y, x)")
    for v in noise + (["mask"] if "mask" in ds else []):
        if ds[v].dims != img.dims or ds[v].shape != img.shape:
            raise SchemaError(f"variable '{v}' has shape {dict(ds[v].sizes)}, 'image' has {dict(img.sizes)}")
    bands = [str(b) for b in ds["band"].values]
    repeated = sorted({b for b in bands if bands.count(b) > 1})
    if repeated:
        raise SchemaError(f"coordinate 'band': names must be unique, {repeated} repeated in {bands}")
    if "psf" in ds:
        psf = np.asarray(ds["psf"].values, np.float64)
        if ds["psf"].dims != ("band",) + PSF_DIMS:
            raise SchemaError(f"variable 'psf' has dims {ds['psf'].dims}, expected ('band', 'psf_y', 'psf_x')")
        h, w = psf.shape[-2:]
        yy, xx = np.mgrid[:h, :w]
        for b, p in zip(bands, psf, strict=True):
            if not np.all(np.isfinite(p)):
                raise SchemaError(f"variable 'psf', band {b!r}: {int(np.sum(~np.isfinite(p)))} non-finite pixels")
            s = p.sum()
            if abs(s - 1) > 1e-3:
                raise SchemaError(f"variable 'psf', band {b!r}: not normalized (sums to {s:.4f}, not 1)")
            cy, cx = (p * yy).sum() / s, (p * xx).sum() / s
            if abs(cy - h // 2) > 0.5 or abs(cx - w // 2) > 0.5:
                raise SchemaError(
                    f"variable 'psf', band {b!r}: not centred "
                    f"(centroid ({cy:.2f}, {cx:.2f}), expected ({h // 2}, {w // 2}))"
                )
    elif "psf_model" not in ds.attrs:
        raise SchemaError("missing data variable 'psf' (band, psf_y, psf_x) or attrs['psf_model']")
    data = np.asarray(img.values, np.float64)
    if "variance" in ds:
        var = np.asarray(ds["variance"].values, np.float64)
        good = np.isfinite(var) & (var > 0)
    else:
        var = None
        good = np.asarray(ds["weight"].values) > 0
    if "mask" in ds:
        good &= ~np.asarray(ds["mask"].values, bool)
    for k, b in enumerate(bands):
        bad = int(np.sum(~np.isfinite(data[k]) & good[k]))
        if bad:
            raise SchemaError(f"variable 'image', band {b!r}: {bad} unmasked pixels are NaN or inf")
        if var is not None:
            unmasked = ~np.asarray(ds["mask"].values[k], bool) if "mask" in ds else np.ones(var[k].shape, bool)
            nonpos = int(np.sum(unmasked & ~(var[k] > 0)))
            if nonpos:
                raise SchemaError(
                    f"variable 'variance', band {b!r}: {nonpos} unmasked pixels have variance <= 0 or NaN"
                )
        else:
            w = np.asarray(ds["weight"].values[k], np.float64)
            neg = int(np.sum(~np.isfinite(w) | (w < 0)))
            if neg:
                raise SchemaError(f"variable 'weight', band {b!r}: {neg} pixels are negative or not finite")
    get_wcs(ds)  # raises on an unparsable header
    return ds


def to_observation(ds: xr.Dataset):
    """The core :class:`~scarlet2.Observation` of a (validated) Dataset."""
    from .observation import Observation
    from .psf import GaussianPSF, MoffatPSF

    validate(ds)
    data = np.asarray(ds["image"].values, np.float64)
    if "variance" in ds:
        var = np.asarray(ds["variance"].values, np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            w = np.where(np.isfinite(var) & (var > 0), 1 / var, 0.0)
    else:
        w = np.asarray(ds["weight"].values, np.float64)
    if "mask" in ds:
        w = np.where(np.asarray(ds["mask"].values, bool), 0.0, w)
    if "psf" in ds:
        psf = np.asarray(ds["psf"].values, np.float64)
    else:
        spec = (
            dict(ds.attrs["psf_model"]) if not isinstance(ds.attrs["psf_model"], str) else _parse(ds.attrs["psf_model"])
        )
        kind = spec.pop("type")
        psf = {"gaussian": GaussianPSF, "moffat": MoffatPSF}[kind](**spec)
    return Observation(data, weights=w, psf=psf, bands=[str(b) for b in ds["band"].values], wcs=get_wcs(ds))


def _parse(s):
    import json

    return json.loads(s)
