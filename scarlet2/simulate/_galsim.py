"""GalSim pieces shared by the simulators: galaxy and star profiles, PSFs, drawing in stamps.

A source is a list of ``(profile, sed)`` parts: a unit-flux GalSim profile and its share of the
source's flux per band (the shares of all parts sum to 1 over bands). Drawing a source's parts
with a band's PSF gives its isolated noiseless image in that band.
"""

from __future__ import annotations

import numpy as np

PIXEL_SCALE = 0.2  # arcsec per pixel
#: Relative SEDs over grizy: red (bulges, early types), blue (disks, star formers), stars.
RED_SED = np.array([0.08, 0.15, 0.22, 0.26, 0.29])
BLUE_SED = np.array([0.28, 0.25, 0.2, 0.15, 0.12])
STAR_SED = np.array([0.15, 0.2, 0.22, 0.22, 0.21])
#: GalSim accuracy: Fourier-space folding and maxk thresholds (its defaults are 5e-3, 1e-3).
FOLDING_THRESHOLD = 2e-3


def gsparams():
    import galsim

    return galsim.GSParams(folding_threshold=FOLDING_THRESHOLD, maxk_threshold=1e-3)


def _shear(g, theta):
    return dict(g1=g * np.cos(2 * theta), g2=g * np.sin(2 * theta))


def _jitter(rng, sed, spread=0.3):
    s = sed * rng.uniform(1 - spread, 1 + spread, len(sed))
    return s / s.sum()


def star(rng):
    import galsim

    return [(galsim.DeltaFunction(), _jitter(rng, STAR_SED))]


def sersic(rng, r_e_px, n_range=(0.5, 4.0)):
    """A single Sersic, index uniform in ``n_range``, reduced shear up to 0.5, red if n > 2."""
    import galsim

    n = rng.uniform(*n_range)
    sed = _jitter(rng, RED_SED if n > 2 else BLUE_SED, 0.15)
    prof = galsim.Sersic(n, half_light_radius=r_e_px, gsparams=gsparams())
    return [(prof.shear(**_shear(rng.uniform(0, 0.5), rng.uniform(0, np.pi))), sed)]


def bulge_disk(rng, r_e_px, own_shapes=True):
    """A red n = 4 bulge and a blue n = 1 disk; the bulge is smaller and rounder, with its own
    ellipticity and angle when ``own_shapes`` (else half the disk's shear at its angle)."""
    import galsim

    frac = rng.uniform(0.2, 0.6)
    g, th = rng.uniform(0, 0.5), rng.uniform(0, np.pi)
    bulge_shear = _shear(rng.uniform(0, 0.3), rng.uniform(0, np.pi)) if own_shapes else _shear(0.5 * g, th)
    bulge = galsim.Sersic(4.0, half_light_radius=0.4 * r_e_px, gsparams=gsparams()).shear(**bulge_shear)
    disk = galsim.Sersic(1.0, half_light_radius=r_e_px, gsparams=gsparams()).shear(**_shear(g, th))
    return [(bulge, frac * _jitter(rng, RED_SED, 0.15)), (disk, (1 - frac) * _jitter(rng, BLUE_SED, 0.15))]


def knotty(rng, r_e_px, seed):
    """An exponential disk with star-forming clumps (GalSim ``RandomKnots``): a share of the light
    in 10-40 knots following the disk, bluer than it."""
    import galsim

    if int(seed) == 0:  # GalSim would seed it from the clock: not reproducible
        raise ValueError("knotty needs a nonzero seed")
    frac = rng.uniform(0.2, 0.5)
    g, th = rng.uniform(0, 0.4), rng.uniform(0, np.pi)
    disk = galsim.Exponential(half_light_radius=r_e_px, gsparams=gsparams()).shear(**_shear(g, th))
    knots = galsim.RandomKnots(
        int(rng.integers(10, 41)),
        half_light_radius=r_e_px,
        flux=1.0,
        rng=galsim.BaseDeviate(int(seed)),
        gsparams=gsparams(),
    ).shear(**_shear(g, th))
    sed = _jitter(rng, BLUE_SED, 0.15)
    return [(disk, (1 - frac) * _jitter(rng, 0.5 * (RED_SED + BLUE_SED), 0.1)), (knots, frac * sed)]


def moffat(fwhm_px, beta=3.0):
    import galsim

    return galsim.Moffat(beta=beta, fwhm=fwhm_px, trunc=4 * fwhm_px, gsparams=gsparams())


def draw_isolated(parts, band, psf, yx, shape, flux=1.0, max_stamp=256):
    """``(image, (y0, x0))``: one source's noiseless image in ``band`` through ``psf``, in a stamp
    placed at pixel offset (y0, x0) of a ``shape`` image (numpy convention: pixel centres at
    integers), holding ``flux`` times the source's share in that band."""
    import galsim

    prof = galsim.Sum([p.withFlux(flux * sed[band]) for p, sed in parts])
    prof = galsim.Convolve(prof, psf)
    n = int(min(max(prof.getGoodImageSize(1.0), 32), max_stamp)) | 1
    iy, ix = int(np.round(yx[0])), int(np.round(yx[1]))
    stamp = galsim.ImageD(n, n)
    stamp.setCenter(ix, iy)
    prof.drawImage(stamp, scale=1.0, offset=(yx[1] - ix, yx[0] - iy))
    ny, nx = shape
    bounds = stamp.bounds & galsim.BoundsI(0, nx - 1, 0, ny - 1)
    if not bounds.isDefined():
        return np.zeros((0, 0)), (0, 0)
    return stamp[bounds].array, (bounds.ymin, bounds.xmin)


def add_stamp(image, stamp, origin):
    y0, x0 = origin
    h, w = stamp.shape
    image[y0 : y0 + h, x0 : x0 + w] += stamp


def truth_variables(yx, wcs, flux, kind, r_e, snr, neighbour_distance) -> dict:
    """The per-source truth both simulators report: pixel and sky centres, per-band flux, kind,
    half-light radius (arcsec), S/N and distance to the nearest neighbour (pixels)."""
    sky = wcs.pixel_to_world(yx[:, 1], yx[:, 0])
    return {
        "y": ("source", yx[:, 0]),
        "x": ("source", yx[:, 1]),
        "ra": ("source", sky.ra.deg),
        "dec": ("source", sky.dec.deg),
        "flux": (("source", "band"), flux),
        "kind": ("source", np.asarray(kind).astype(str)),
        "r_e": ("source", r_e),
        "snr": ("source", snr),
        "neighbour_distance": ("source", neighbour_distance),
    }
