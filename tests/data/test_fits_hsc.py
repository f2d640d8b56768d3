"""FITS input of the real HSC cutout (../shared/data/multires)."""

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

import scarlet2 as sc
from tests.conftest import shared_file


def test_from_fits_real_hsc_cutout(tmp_path):
    path = shared_file("multires/Cut_HSC.fits")
    psf_path = shared_file("multires/PSF_HSC.fits")
    img = fits.getdata(path).astype(np.float64)
    # no variance plane in this file: estimate the noise per band from source-free pixels
    from astropy.stats import sigma_clipped_stats

    var = np.stack([np.full(b.shape, sigma_clipped_stats(b, sigma=3)[2] ** 2) for b in img])
    var_path = tmp_path / "var.fits"
    fits.PrimaryHDU(var, header=fits.getheader(path)).writeto(var_path)
    ds = sc.from_fits(str(path), variance=str(var_path), psf=str(psf_path), bands=list("grizy"), instrument="HSC")
    assert ds.sizes == {"band": 5, "y": 50, "x": 50, "psf_y": 31, "psf_x": 31}
    w = WCS(fits.getheader(path)).celestial
    np.testing.assert_allclose(
        ds.scarlet.wcs.pixel_to_world_values(3.0, 7.0), w.pixel_to_world_values(3.0, 7.0), atol=1e-12
    )
    assert ds.attrs["pixel_scale"] == pytest.approx(0.168, rel=1e-2)
