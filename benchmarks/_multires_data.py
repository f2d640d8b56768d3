"""The shared HST + HSC pair (../shared/data/multires) for both sides of the multires benchmark:
numpy, astropy and the noise from source-free pixels only (it runs in the reference's venv too)."""

from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "multires"


def _noise(image):
    """Sigma-clipped MAD rms per band: the pair has no variance planes."""
    from astropy.stats import sigma_clipped_stats

    return np.array([sigma_clipped_stats(b, sigma=3, maxiters=10)[2] for b in image])


def _peaks(image, rms, sigma, separation):
    """(iy, ix) of local maxima above 10 sigma of ``image`` smoothed by a Gaussian of ``sigma``."""
    from scipy import ndimage

    sm = ndimage.gaussian_filter(image, sigma)
    peaks = (sm == ndimage.maximum_filter(sm, 2 * separation + 1)) & (sm > 10 * rms / (2 * np.sqrt(np.pi) * sigma))
    return np.nonzero(peaks)


def load_pair():
    from astropy.coordinates import SkyCoord
    from astropy.io import fits
    from astropy.wcs import WCS

    def read(name):
        with fits.open(SHARED / name) as h:
            return np.asarray(h[0].data, np.float64), h[0].header

    hst, h_hst = read("Cut_HST.fits")
    hsc, h_hsc = read("Cut_HSC.fits")
    hst = hst[None]
    s_hst, s_hsc = _noise(hst), _noise(hsc)
    w_hst, w_hsc = WCS(h_hst).celestial, WCS(h_hsc).celestial
    # sources: peaks above 10 sigma of the smoothed HST image, and of the HSC i band where HST has
    # none within 0.5" (a star beyond the HST cutout's edge)
    hst_peaks = w_hst.pixel_to_world(*_peaks(hst[0], s_hst[0], 2.0, 8)[::-1]).icrs
    hsc_peaks = w_hsc.pixel_to_world(*_peaks(hsc[2], s_hsc[2], 1.0, 3)[::-1]).icrs
    far = hsc_peaks.match_to_catalog_sky(hst_peaks)[1].arcsec > 0.5
    ra = np.concatenate([hst_peaks.ra.deg, hsc_peaks.ra.deg[far]])
    dec = np.concatenate([hst_peaks.dec.deg, hsc_peaks.dec.deg[far]])
    sky = SkyCoord(ra, dec, unit="deg", frame="icrs")
    return {
        "hst": hst, "hst_var": np.full(hst.shape, s_hst[0] ** 2), "hst_psf": read("PSF_HST.fits")[0][None],
        "hst_wcs": w_hst, "hsc": hsc, "hsc_var": np.broadcast_to((s_hsc**2)[:, None, None], hsc.shape).copy(),
        "hsc_psf": read("PSF_HSC.fits")[0], "hsc_wcs": w_hsc, "sky": sky,
    }  # fmt: skip
