"""A survey field: galaxies and stars at survey density over a mosaic, drawn by GalSim with truth.

Galaxies are single Sersics (n in [0.5, 4]) or bulge (n = 4) + disk (n = 1) with their own
ellipticities and colours; stars are points. Positions are uniform over the field (a Poisson
field: blends happen as often as on the sky at that density), fluxes log-uniform. Every band has
its own Moffat PSF and noise. The field's WCS is a north-up ICRS TAN grid.

Needs GalSim (``pip install scarlet2[sim]``); it is imported when a field is drawn.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import xarray as xr

from ..labeled.schema import from_arrays
from ._galsim import BLUE_SED, PIXEL_SCALE, RED_SED, STAR_SED, gsparams, truth_variables
from .multires import tan_wcs

BANDS = ("g", "r", "i", "z", "y")
PSF_FWHM = (0.85, 0.8, 0.7, 0.7, 0.75)  # arcsec, per band
NOISE_RMS = (1.0, 1.0, 1.2, 1.5, 2.0)  # per pixel, per band


@dataclasses.dataclass
class SimulatedField:
    """A simulated mosaic: the observation Dataset (with WCS) and the truth per source."""

    dataset: xr.Dataset  # the observation schema: image, variance, psf, band, WCS coordinate
    truth: xr.Dataset  # dims (source, band): y, x, ra, dec, flux, kind, r_e, snr, isolated

    def to_zarr(self, path_or_url, **kwargs):
        """Write the observation Dataset to Zarr in chunks of ``chunk`` pixels (default 256)."""
        from ..labeled.store import write_zarr

        chunk = kwargs.pop("chunk", 256)
        ds = self.dataset.chunk({"band": -1, "y": chunk, "x": chunk})
        return write_zarr(ds, path_or_url, **kwargs)


def simulate_field(
    shape=(512, 512),
    density: float = 0.0005,
    seed: int = 0,
    star_fraction: float = 0.15,
    flux_range=(150.0, 3e4),
    r_e_range=(0.15, 1.5),
    isolation: float = 25.0,
    psf_size: int = 41,
) -> SimulatedField:
    """Draw a field of galaxies and stars with per-band PSFs and Gaussian noise.

    Parameters
    ----------
    shape
        (ny, nx) pixels at :data:`PIXEL_SCALE` arcsec.
    density
        Sources per pixel (0.0005 is 45 per arcmin^2 at 0.2"/pixel, about a deep ground
        survey's count to S/N ~10).
    seed
        Seed of the numpy generator: the same seed gives the same field.
    star_fraction
        Share of the sources that are stars.
    flux_range
        Total flux over all bands, drawn log-uniformly (S/N from ~10 to thousands).
    r_e_range
        Galaxy half-light radii in arcsec, drawn log-uniformly.
    isolation
        A source is ``isolated`` in the truth when no other lies within this many pixels.
    psf_size
        PSF stamp size (pixels).
    """
    import galsim

    rng = np.random.default_rng(seed)
    ny, nx = shape
    n = rng.poisson(density * ny * nx)
    yx = rng.uniform([-0.5, -0.5], [ny - 0.5, nx - 0.5], (n, 2))
    total = np.exp(rng.uniform(*np.log(flux_range), n))
    kind = np.where(rng.uniform(size=n) < star_fraction, "star", "galaxy")
    nb = len(BANDS)
    flux = np.zeros((n, nb))
    r_e = np.zeros(n)
    gsp = gsparams()
    objects = []
    for i in range(n):
        if kind[i] == "star":
            sed = STAR_SED * rng.uniform(0.7, 1.3, nb)
            parts = [(galsim.DeltaFunction(), sed / sed.sum())]
        else:
            re = np.exp(rng.uniform(*np.log(r_e_range))) / PIXEL_SCALE
            r_e[i] = re * PIXEL_SCALE
            g, th = rng.uniform(0, 0.5), rng.uniform(0, np.pi)
            shear = dict(g1=g * np.cos(2 * th), g2=g * np.sin(2 * th))
            if rng.uniform() < 0.5:
                n_s = rng.uniform(0.5, 4.0)
                sed = RED_SED if n_s > 2 else BLUE_SED
                prof = galsim.Sersic(n_s, half_light_radius=re, gsparams=gsp).shear(**shear)
                parts = [(prof, sed / sed.sum())]
            else:
                frac = rng.uniform(0.2, 0.6)
                bulge = galsim.Sersic(4.0, half_light_radius=0.4 * re, gsparams=gsp).shear(
                    g1=0.5 * shear["g1"], g2=0.5 * shear["g2"]
                )
                disk = galsim.Sersic(1.0, half_light_radius=re, gsparams=gsp).shear(**shear)
                parts = [(bulge, frac * RED_SED / RED_SED.sum()), (disk, (1 - frac) * BLUE_SED / BLUE_SED.sum())]
        flux[i] = total[i] * sum(w for _, w in parts)
        objects.append(parts)

    images, noiseless, psfs, isolated_sq = [], [], [], np.zeros(n)
    for b, fwhm in enumerate(PSF_FWHM):
        psf = galsim.Moffat(beta=3.0, fwhm=fwhm / PIXEL_SCALE, trunc=4 * fwhm / PIXEL_SCALE, gsparams=gsp)
        img = galsim.ImageD(nx, ny, xmin=0, ymin=0)
        for i, parts in enumerate(objects):
            prof = galsim.Convolve(galsim.Sum([p.withFlux(total[i] * w[b]) for p, w in parts]), psf)
            stamp_n = int(min(max(prof.getGoodImageSize(1.0), 32), 256)) | 1
            stamp = galsim.ImageD(stamp_n, stamp_n)
            iy, ix = int(np.round(yx[i, 0])), int(np.round(yx[i, 1]))
            stamp.setCenter(ix, iy)
            prof.drawImage(stamp, scale=1.0, offset=(yx[i, 1] - ix, yx[i, 0] - iy))
            overlap = stamp.bounds & img.bounds
            if overlap.isDefined():
                img[overlap] += stamp[overlap]
            # isolated S/N: sum of (noiseless / sigma)^2 over the source's own image
            isolated_sq[i] += np.sum(stamp.array**2) / NOISE_RMS[b] ** 2
        noiseless.append(img.array.copy())
        images.append(img.array + rng.normal(0, NOISE_RMS[b], (ny, nx)))
        psfs.append(psf.drawImage(nx=psf_size, ny=psf_size, scale=1.0).array)
    wcs = tan_wcs(PIXEL_SCALE, shape)
    variance = np.broadcast_to(np.asarray(NOISE_RMS).reshape(-1, 1, 1) ** 2, (nb, ny, nx))
    ds = from_arrays(np.array(images), variance=variance, psf=np.array(psfs), bands=list(BANDS), wcs=wcs)
    ds.attrs["instrument"] = "simulated (scarlet2.simulate.simulate_field)"
    dist = np.full(n, np.inf)
    if n > 1:
        from scipy.spatial import cKDTree

        d, _ = cKDTree(yx).query(yx, k=2)
        dist = d[:, 1]
    truth = xr.Dataset(
        {
            **truth_variables(yx, wcs, flux, kind, r_e, np.sqrt(isolated_sq), dist),
            "isolated": ("source", dist > isolation),
        },
        coords={"source": np.arange(n), "band": list(BANDS)},
        attrs={"seed": seed, "density": density, "pixel_scale": PIXEL_SCALE},
    )
    return SimulatedField(ds, truth)


__all__ = ["SimulatedField", "simulate_field"]
