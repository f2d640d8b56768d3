"""A space-based and a ground-based view of the same blend, drawn by GalSim with truth.

The sharp view is HST-like (one band, 0.03"/pixel, narrow PSF, north up); the wide view is
HSC-like (grizy, 0.168"/pixel, Moffat PSFs, its grid rotated and offset by a fraction of a pixel).
Galaxies are bulge (n = 4) + disk (n = 1) with their own ellipticities and colours (red bulges,
blue disks). Both grids share one tangent point, so GalSim draws each through the exact affine
map between them; the WCS are astropy TAN WCS in ICRS.

Needs GalSim (``pip install scarlet2[sim]``); it is imported when a pair is drawn.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..model import grids
from ..model.observation import Observation

SHARP_BAND = "F814W"
WIDE_BANDS = ("g", "r", "i", "z", "y")
SHARP_SCALE, WIDE_SCALE = 0.03, 0.168  # arcsec per pixel
SHARP_PSF_FWHM = 0.1  # arcsec
WIDE_PSF_FWHM = (0.85, 0.8, 0.7, 0.7, 0.75)
#: Relative SEDs over (F814W, g, r, i, z, y): bulges red, disks blue.
BULGE_SED = np.array([0.22, 0.08, 0.15, 0.22, 0.26, 0.29])
DISK_SED = np.array([0.2, 0.28, 0.25, 0.2, 0.15, 0.12])
CENTRE = (150.1, 2.2)  # ICRS degrees of the shared tangent point


@dataclasses.dataclass
class SimulatedPair:
    """Two views of one blend: images, variances, PSF images, WCS per view, and the truth."""

    sharp: dict  # images (1, ny, nx), variance, psf (1, h, w), bands, wcs, noiseless
    wide: dict  # images (5, ny, nx), variance, psf (5, h, w), bands, wcs, noiseless
    truth: dict  # ra, dec (n,); flux, bulge_flux, disk_flux (n, 6) over bands; r_e (arcsec), shears

    @property
    def bands(self) -> tuple[str, ...]:
        return (SHARP_BAND, *WIDE_BANDS)

    def observations(self) -> list[Observation]:
        """The sharp and the wide :class:`~scarlet2.Observation`."""
        return [
            Observation(v["images"], variance=v["variance"], psf=v["psf"], bands=v["bands"], wcs=v["wcs"], name=name)
            for name, v in (("sharp", self.sharp), ("wide", self.wide))
        ]

    def sky_positions(self):
        """The true centres as an astropy SkyCoord (ICRS)."""
        from astropy.coordinates import SkyCoord

        return SkyCoord(self.truth["ra"], self.truth["dec"], unit="deg", frame="icrs")


def tan_wcs(scale: float, shape, rotation_deg: float = 0.0, offset=(0.0, 0.0)):
    """A TAN WCS (ICRS) at :data:`CENTRE`: ``scale`` arcsec/pixel, its grid rotated by
    ``rotation_deg`` and the tangent point ``offset`` (y, x) pixels from the grid's centre."""
    from astropy.wcs import WCS

    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.radesys = "ICRS"
    w.wcs.crval = list(CENTRE)
    t = np.deg2rad(rotation_deg)
    w.wcs.cd = scale / 3600 * np.array([[-np.cos(t), np.sin(t)], [np.sin(t), np.cos(t)]])
    w.wcs.crpix = [(shape[1] - 1) / 2 + 1 + offset[1], (shape[0] - 1) / 2 + 1 + offset[0]]
    w.wcs.set()
    return w


def simulate_pair(
    seed: int,
    n_galaxies: int | None = None,
    sharp_shape=(200, 200),
    wide_shape=(40, 40),
    rotation_deg: float = 30.0,
    wide_offset=(0.37, -0.21),
    min_separation: float = 0.4,
    extent: float = 1.0,
    flux_range=(2e3, 2e4),
    sharp_noise: float = 0.5,
    wide_noise=(1.0, 1.0, 1.5, 2.0, 3.0),
    psf_size=(41, 41),
) -> SimulatedPair:
    """Draw a blend of 2-4 bulge + disk galaxies in both views, with Gaussian noise.

    Parameters
    ----------
    seed
        Seed of the numpy generator: the same seed gives the same pair.
    n_galaxies
        Number of galaxies (default: drawn from 2..4).
    sharp_shape, wide_shape
        Image shapes (ny, nx) of the two views.
    rotation_deg, wide_offset
        Rotation of the wide grid and its sub-pixel offset.
    min_separation, extent
        Minimum distance between centres, and the half-width of the square they are drawn in,
        in arcseconds (the defaults put neighbours within the wide PSF's FWHM: blended in the
        wide view, resolved in the sharp one).
    flux_range
        Total flux over all bands, drawn log-uniformly.
    sharp_noise, wide_noise
        Noise rms per pixel (the sharp view's one band; each wide band).
    psf_size
        PSF stamp sizes (pixels) of the sharp and the wide view.
    """
    import galsim

    rng = np.random.default_rng(seed)
    n = int(n_galaxies if n_galaxies is not None else rng.integers(2, 5))
    w_sharp = tan_wcs(SHARP_SCALE, sharp_shape)
    w_wide = tan_wcs(WIDE_SCALE, wide_shape, rotation_deg, wide_offset)
    # GalSim draws in "world" coordinates = sharp-grid pixels (x, y); the wide grid maps to them affinely
    pos = []
    while len(pos) < n:
        p = rng.uniform(-extent, extent, 2)
        if all(np.hypot(*(p - q)) >= min_separation for q in pos):
            pos.append(p)
    centre = (np.asarray(sharp_shape) - 1) / 2
    yx = centre + np.array(pos) / SHARP_SCALE
    total = np.exp(rng.uniform(*np.log(flux_range), n))
    frac = rng.uniform(0.2, 0.6, n)
    keys = ("bulge_r_e", "disk_r_e", "bulge_g", "disk_g", "bulge_flux", "disk_flux", "flux")
    truth = {"y_sharp": yx[:, 0], "x_sharp": yx[:, 1]} | {k: [] for k in keys}
    gsp = galsim.GSParams(folding_threshold=1e-3, maxk_threshold=1e-4)
    objects = []
    for i in range(n):
        g = rng.uniform(0, 0.5)
        th = rng.uniform(0, np.pi)
        rb, rd = rng.uniform(0.08, 0.25), rng.uniform(0.3, 0.8)  # arcsec
        bulge = galsim.Sersic(4.0, half_light_radius=rb / SHARP_SCALE, gsparams=gsp)
        bulge = bulge.shear(g1=0.4 * g * np.cos(2 * th), g2=0.4 * g * np.sin(2 * th))
        disk = galsim.Sersic(1.0, half_light_radius=rd / SHARP_SCALE, gsparams=gsp)
        disk = disk.shear(g1=g * np.cos(2 * th), g2=g * np.sin(2 * th))
        fb, fd = total[i] * frac[i] * BULGE_SED, total[i] * (1 - frac[i]) * DISK_SED
        objects.append((bulge, disk, fb, fd, yx[i]))
        for k, v in zip(keys, (rb, rd, (0.4 * g * np.cos(2 * th), 0.4 * g * np.sin(2 * th)),
                               (g * np.cos(2 * th), g * np.sin(2 * th)), fb, fd, fb + fd), strict=True):  # fmt: skip
            truth[k].append(v)
    truth = {k: np.asarray(v) for k, v in truth.items()}
    sky = w_sharp.pixel_to_world(yx[:, 1], yx[:, 0])
    truth["ra"], truth["dec"] = sky.ra.deg, sky.dec.deg

    def scene(band):
        parts = [
            (fb[band] * b.withFlux(1.0) + fd[band] * d.withFlux(1.0)).shift(p[1], p[0]) for b, d, fb, fd, p in objects
        ]
        return galsim.Sum(parts)

    # the wide grid's pixels in sharp pixels: origin and Jacobian of the affine map
    m = grids.map_pixels(np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]), w_wide, w_sharp)
    dy, dx = m[1] - m[0], m[2] - m[0]
    affine = galsim.AffineTransform(
        dudx=dx[1], dudy=dy[1], dvdx=dx[0], dvdy=dy[0], origin=galsim.PositionD(0, 0),
        world_origin=galsim.PositionD(m[0][1], m[0][0]),
    )  # fmt: skip
    origin_wide = affine.toImage(galsim.PositionD(0, 0))

    sharp_psf = galsim.Moffat(beta=3.5, fwhm=SHARP_PSF_FWHM / SHARP_SCALE, gsparams=gsp)
    img = galsim.ImageD(sharp_shape[1], sharp_shape[0], xmin=0, ymin=0)
    galsim.Convolve(scene(0), sharp_psf).drawImage(img, scale=1.0, center=galsim.PositionD(0, 0))
    sharp_noiseless = img.array[None].copy()
    sharp_psf_img = sharp_psf.drawImage(nx=psf_size[0], ny=psf_size[0], scale=1.0).array[None]

    jac = affine.jacobian()
    local = galsim.JacobianWCS(jac.dudx, jac.dudy, jac.dvdx, jac.dvdy)
    wide_noiseless, wide_psf = [], []
    for k, fwhm in enumerate(WIDE_PSF_FWHM):
        psf = galsim.Moffat(beta=3.0, fwhm=fwhm / SHARP_SCALE, trunc=4 * fwhm / SHARP_SCALE, gsparams=gsp)
        img = galsim.ImageD(wide_shape[1], wide_shape[0], xmin=0, ymin=0)
        galsim.Convolve(scene(k + 1), psf).drawImage(img, wcs=affine, center=origin_wide)
        wide_noiseless.append(img.array.copy())
        wide_psf.append(psf.drawImage(nx=psf_size[1], ny=psf_size[1], wcs=local).array)
    wide_noiseless = np.array(wide_noiseless)
    wide_noise = np.asarray(wide_noise, np.float64)

    def view(noiseless, psf, bands, wcs, rms):
        rms = np.broadcast_to(np.asarray(rms, np.float64).reshape(-1, 1, 1), noiseless.shape)
        return {
            "images": (noiseless + rng.normal(0, 1, noiseless.shape) * rms).astype(np.float32),
            "variance": (rms**2).astype(np.float32),
            "psf": np.asarray(psf, np.float32),
            "bands": bands,
            "wcs": wcs,
            "noiseless": noiseless,
        }

    sharp = view(sharp_noiseless, sharp_psf_img, (SHARP_BAND,), w_sharp, sharp_noise)
    wide = view(wide_noiseless, wide_psf, WIDE_BANDS, w_wide, wide_noise)
    return SimulatedPair(sharp, wide, truth)


__all__ = ["SimulatedPair", "simulate_pair", "tan_wcs"]
