"""The observation schema: an xarray Dataset with dims (band, y, x) and a persisted WCS.

Variables
---------
image (band, y, x)              data
variance or weight (band, y, x) noise; variance inf or weight 0 masks a pixel (<= 0 / NaN: mask it)
mask (band, y, x), optional     True/nonzero = bad pixel
psf (band, psf_y, psf_x)        centred PSF images, normalized to unit sum on reading (or attrs ``psf_model``)

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

from ..errors import SchemaError, StoreError
from ..model.checks import check_bands, check_psf, observation_weights
from ..model.frame import celestial_wcs
from ..model.observation import Observation
from ..model.psf import GaussianPSF, MoffatPSF

SCHEMA_VERSION = "1"
WCS_VAR = "wcs"
PSF_DIMS = ("psf_y", "psf_x")


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


def attach_wcs(ds: xr.Dataset, wcs) -> xr.Dataset:
    """``ds`` with the WCS as its scalar ``wcs`` coordinate, named by each image-like variable."""
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
    """Build an observation Dataset (the schema of :func:`validate`) from numpy arrays.

    Parameters
    ----------
    images
        Data, (band, y, x), or (y, x) for one band. numpy's convention: pixel (iy, ix) has its
        centre at integer coordinates. Stored as float32; values beyond its range are refused.
    variance, weight
        The noise, one of them: per-pixel variance (``inf`` masks a pixel) or inverse variance
        (0 masks), in data units squared (inverse); the images' shape, or one (y, x) plane for
        all bands.
    psf
        PSF images, (band, h, w) or one (h, w) for all bands, pixel-integrated at the images'
        pixel scale, centred on pixel (h // 2, w // 2) within
        :data:`~scarlet2.model.checks.PSF_CENTRE_TOLERANCE` (fits recentre them on their
        windowed centroid and record the shift); normalized to unit sum here. Without it, give
        ``attrs["psf_model"]`` on the Dataset yourself.
    bands
        Band names, one per image plane, unique.
    wcs
        Optional celestial astropy WCS of the pixel grid (square pixels); stored as the scalar
        ``wcs`` coordinate.
    mask
        Optional bool, True = bad pixel; shape as ``variance``.
    instrument, flux_unit, zero_point
        Stored in attrs.
    pixel_scale
        Arcsec per pixel (default: from the WCS).

    Raises
    ------
    SchemaError
        Naming the argument (and band, and pixel count): wrong dimensions or shapes, band names
        not one per plane or repeated, a PSF that is not finite, centred or of positive sum, NaN
        or inf in unmasked pixels, variance <= 0 or NaN where unmasked; a WCS that is not a
        celestial astropy WCS or whose pixels have no area.
    """
    images = np.asarray(images, np.float64)
    if images.ndim == 2:
        images = images[None]
    if images.ndim != 3:
        raise SchemaError(f"images must be (band, y, x) or (y, x), got shape {images.shape}")
    nb, ny, nx = images.shape
    bands = check_bands(bands, nb)
    wcs = celestial_wcs(wcs, "wcs")
    noise = dict(variance=variance) if variance is not None else dict(weights=weight)
    observation_weights(images, bands, mask=mask, where={"weights": "weight"}, **noise)
    coords = {"band": np.array(bands, dtype=object), "y": np.arange(ny), "x": np.arange(nx)}
    dv = {"image": (("band", "y", "x"), images.astype(np.float32))}
    if variance is not None:
        dv["variance"] = (("band", "y", "x"), np.broadcast_to(np.asarray(variance, np.float32), images.shape))
    if weight is not None:
        dv["weight"] = (("band", "y", "x"), np.broadcast_to(np.asarray(weight, np.float32), images.shape))
    if mask is not None:
        dv["mask"] = (("band", "y", "x"), np.broadcast_to(np.asarray(mask, bool), images.shape))
    if psf is not None:
        check_psf(psf, bands)  # stored as given (normalized): the fit recentres it and records the shift
        psf = np.broadcast_to(np.asarray(psf, np.float64), (nb, *np.shape(psf)[-2:]))
        dv["psf"] = (("band",) + PSF_DIMS, (psf / psf.sum(axis=(-2, -1), keepdims=True)).astype(np.float32))
    if pixel_scale is None and wcs is not None:
        pixel_scale = _square_pixel_scale(wcs)
    attrs = {"instrument": instrument, "schema_version": SCHEMA_VERSION}
    if pixel_scale is not None:
        attrs["pixel_scale"] = float(pixel_scale)
    if flux_unit is not None:
        attrs["flux_unit"] = flux_unit
    if zero_point is not None:
        attrs["zero_point"] = float(zero_point)
    ds = xr.Dataset(dv, coords=coords, attrs=attrs)
    # the rules of validate ran above, on the float64 input (before the cast could turn values
    # beyond float32 into inf): a second pass over the stored arrays would find nothing new
    return attach_wcs(ds, wcs)


def _square_pixel_scale(wcs) -> float:
    """The pixel scale (arcsec): the square root of the pixel's area on the sky (non-square or
    skewed pixels are modelled on a square grid, :meth:`~scarlet2.Frame.from_observations`)."""
    from astropy.wcs.utils import proj_plane_pixel_area

    area = proj_plane_pixel_area(wcs) * 3600**2
    if not (np.isfinite(area) and area > 0):
        raise SchemaError(f"wcs: pixel area {area:.4g} arcsec^2 is not a positive number (a singular WCS)")
    return float(np.sqrt(area))


def validate(ds: xr.Dataset) -> xr.Dataset:
    """Check a Dataset against the observation schema; raise :class:`SchemaError` naming the
    variable (and band) at the first violation. Returns the Dataset for chaining.

    The data rules are those of :class:`~scarlet2.Observation` (:mod:`scarlet2.model.checks`).
    """
    _check_layout(ds)
    bands = check_bands([str(b) for b in ds["band"].values], where="coordinate 'band'")
    if "psf" in ds:
        check_psf(_read(ds, "psf"), bands, where="variable 'psf'")
    _observation_weights(ds, bands)
    get_wcs(ds)  # raises on an unparsable header
    return ds


def _check_layout(ds) -> None:
    """Dims, variables and shapes, before any value is read."""
    if not isinstance(ds, xr.Dataset):
        raise SchemaError(f"expected an xarray.Dataset in the observation schema, got {type(ds).__name__}")
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
    if "psf" in ds:
        if ds["psf"].dims != ("band",) + PSF_DIMS:
            raise SchemaError(f"variable 'psf' has dims {ds['psf'].dims}, expected ('band', 'psf_y', 'psf_x')")
    elif "psf_model" not in ds.attrs:
        raise SchemaError("missing data variable 'psf' (band, psf_y, psf_x) or attrs['psf_model']")


def _observation_weights(ds, bands) -> np.ndarray:
    """The data and noise rules of :mod:`scarlet2.model.checks`; the weights (0 = masked)."""
    noise = "variance" if "variance" in ds else "weight"
    arrays = {"variance" if noise == "variance" else "weights": _read(ds, noise, np.float64)}
    return observation_weights(
        _read(ds, "image", np.float64),
        bands,
        mask=_read(ds, "mask", bool) if "mask" in ds else None,
        where={"data": "variable 'image'", "variance": "variable 'variance'", "weights": "variable 'weight'"},
        **arrays,
    )


def _read(ds, name, dtype=None) -> np.ndarray:
    """A variable's values; a store that cannot deliver them (a truncated or missing chunk file,
    a codec error) raises a StoreError naming the variable and the store."""
    try:
        return np.asarray(ds[name].values, dtype)
    except (ValueError, OSError, RuntimeError, KeyError) as err:
        source = ds[name].encoding.get("source") or ds.encoding.get("source") or "the store"
        raise StoreError(
            f"variable {name!r} of {source}: its data cannot be read ({type(err).__name__}: {err})"
        ) from None


def to_observation(ds: xr.Dataset, name: str | None = None) -> Observation:
    """The core :class:`~scarlet2.Observation` of a Dataset (validated on the way); ``name``
    (default ``attrs["name"]``, if any) is what messages and results call it."""
    _check_layout(ds)
    bands = check_bands([str(b) for b in ds["band"].values], where="coordinate 'band'")
    w = _observation_weights(ds, bands)
    if "psf" in ds:
        psf = _read(ds, "psf")
        check_psf(psf, bands, where="variable 'psf'")  # refused here with the variable's name
    else:
        psf = _psf_model(ds.attrs["psf_model"])
    data = _read(ds, "image", np.float64)
    name = name if name is not None else ds.attrs.get("name")
    return Observation(data, weights=w, psf=psf, bands=bands, wcs=get_wcs(ds), name=name)


def read_window(ds: xr.Dataset, y: slice, x: slice):
    """Image, weights (0 = masked), PSF and band names of a window of an observation Dataset,
    the schema's data and noise rules applied to those pixels only: a mosaic read region by
    region (only the window's chunks are read from a lazy Dataset)."""
    _check_layout(ds)
    bands = check_bands([str(b) for b in ds["band"].values], where="coordinate 'band'")
    window = ds.isel(y=y, x=x)
    w = _observation_weights(window, bands)
    psf = _read(ds, "psf") if "psf" in ds else _psf_model(ds.attrs["psf_model"])
    return np.where(w > 0, _read(window, "image", np.float64), 0.0), w, psf, bands


def check_layout(ds: xr.Dataset) -> xr.Dataset:
    """Dims, variables and shapes of an observation Dataset, without reading its pixels (a
    mosaic's values are checked region by region, :func:`read_window`)."""
    _check_layout(ds)
    check_bands([str(b) for b in ds["band"].values], where="coordinate 'band'")
    if "psf" in ds:
        check_psf(_read(ds, "psf"), [str(b) for b in ds["band"].values], where="variable 'psf'")
    else:
        _psf_model(ds.attrs["psf_model"])
    return ds


def _psf_model(spec):
    """The analytic PSF of ``attrs["psf_model"]``: a JSON object (or dict) with ``type`` and the
    PSF's arguments in pixels."""
    import json

    try:
        spec = dict(json.loads(spec) if isinstance(spec, str) else spec)
    except (ValueError, TypeError) as err:
        raise SchemaError(f"attrs['psf_model']: not a JSON object ({err})") from None
    classes = {"gaussian": GaussianPSF, "moffat": MoffatPSF}
    kind = spec.pop("type", None)
    if kind not in classes:
        raise SchemaError(f"attrs['psf_model']: unknown type {kind!r}; one of {sorted(classes)}")
    try:
        return classes[kind](**spec)
    except (TypeError, ValueError) as err:
        raise SchemaError(f"attrs['psf_model']: {err}") from None
