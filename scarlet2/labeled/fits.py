"""Observation Datasets from FITS files (astropy)."""

from __future__ import annotations

import numpy as np
import xarray as xr
from astropy.io import fits
from astropy.wcs import WCS

from ..errors import SchemaError
from .schema import from_arrays


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
        psf = _read_fits(psf, hdu)[0]  # from_arrays checks and normalizes it (FITS PSFs often are not)
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
