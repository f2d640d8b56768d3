"""Blends drawn by GalSim with per-source, per-band truth: the test bed for deblending accuracy.

Unlike :func:`scarlet2.simulate.simulate_blend` (rendered by scarlet2 itself, so the fitted model
family is the truth's), these galaxies are GalSim profiles scarlet2 does not contain exactly:
bulge (n = 4) + disk (n = 1) with their own ellipticities and angles, single Sersics with any
index in GalSim's range, exponential disks with star-forming knots (``RandomKnots``) and stars,
through per-band Moffat PSFs with per-band noise. Each source's total S/N (matched filter, all
bands) is drawn log-uniformly and its flux set to reach it exactly.

Needs GalSim (``pip install scarlet2[sim]``).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import xarray as xr

from ..errors import InputError
from ..labeled.schema import from_arrays
from . import _galsim
from .multires import tan_wcs

BANDS = ("g", "r", "i", "z", "y")
PSF_FWHM = (0.85, 0.8, 0.75, 0.7, 0.75)  # arcsec, per band
NOISE_RMS = (1.0, 1.0, 1.2, 1.5, 2.0)  # per pixel, per band
#: The kinds of source :func:`simulate_galsim_blend` draws; "star" is the only point source.
KINDS = ("star", "sersic", "bulge+disk", "knots")


@dataclasses.dataclass
class GalsimBlend:
    """A GalSim-drawn blend: the observation Dataset (with WCS) and the truth per source."""

    dataset: xr.Dataset  # observation schema: image, variance, psf, band, WCS coordinate
    #: dims (source, band[, y, x]): y, x, ra, dec, flux (total per band), kind, r_e (arcsec),
    #: snr (total, matched filter), neighbour_distance (pixels), image (isolated, noiseless)
    truth: xr.Dataset

    @property
    def positions(self) -> np.ndarray:
        """(n, 2) true pixel centres (y, x)."""
        return np.stack([self.truth["y"].values, self.truth["x"].values], axis=1)

    @property
    def noiseless(self) -> np.ndarray:
        """(band, y, x) sum of the sources' isolated images."""
        return self.truth["image"].sum("source").values


def simulate_galsim_blend(
    seed: int,
    n_sources: int | tuple[int, int] = (3, 8),
    shape=(80, 80),
    kinds: dict | None = None,
    snr_range=(50.0, 400.0),
    r_e_range=(0.25, 1.2),
    n_range=(0.5, 4.0),
    min_separation: float = 7.0,
    max_separation: float = 14.0,
    psf_fwhm=PSF_FWHM,
    noise_rms=NOISE_RMS,
    psf_size: int = 41,
) -> GalsimBlend:
    """Draw one seeded blend of galaxies (and optionally stars) with GalSim.

    The defaults are the acceptance difficulty of the deblending tests: 3-8 bulge + disk or single
    Sersic galaxies (and 15% stars), half-light radii 0.25-1.2" at 0.2"/pixel, centres 7+ pixels apart, S/N
    50-400, Moffat PSFs of 0.7-0.85" FWHM. Harder blends: ``min_separation=4`` (one PSF FWHM),
    ``snr_range=(20, 3000)``, ``n_range=(0.5, 6)``, ``kinds`` with stars and knots, ``r_e_range``
    up to several arcsec.

    Parameters
    ----------
    seed
        Seed of the numpy generator (and of GalSim's knots): the same seed, the same blend.
    n_sources
        The number of sources, or an inclusive (min, max) range to draw it from.
    kinds
        Relative frequency of each of :data:`KINDS` (default: 15% stars, the rest half ``sersic``,
        half ``bulge+disk``).
    snr_range
        Total S/N (sqrt of the sum over bands and pixels of (image / noise rms)^2), log-uniform.
    r_e_range
        Galaxy half-light radii, arcsec, log-uniform (a bulge's is 0.4 of its disk's).
    n_range
        Sersic index range of single-Sersic galaxies (GalSim allows 0.3-6.2).
    min_separation, max_separation
        Each source lies between these distances (pixels) from one source placed before it and
        at least ``min_separation`` from all of them: a connected blend.
    psf_fwhm, noise_rms
        Per-band Moffat (beta 3) FWHM in arcsec and per-pixel noise rms.
    """
    kinds = {"sersic": 0.425, "bulge+disk": 0.425, "star": 0.15} if kinds is None else dict(kinds)
    unknown = set(kinds) - set(KINDS)
    if unknown:
        raise InputError(f"unknown source kinds {sorted(unknown)}; known: {list(KINDS)}")
    if not min_separation < max_separation:
        raise InputError(f"min_separation {min_separation} must be below max_separation {max_separation}")
    rng = np.random.default_rng(seed)
    lo, hi = (n_sources, n_sources) if np.isscalar(n_sources) else n_sources
    n = int(rng.integers(lo, hi + 1))
    ny, nx = shape
    yx = _place(rng, n, shape, min_separation, max_separation)
    names = list(kinds)
    p = np.array([kinds[k] for k in names], float)
    kind = rng.choice(names, size=n, p=p / p.sum())
    r_e = np.where(kind == "star", 0.0, np.exp(rng.uniform(*np.log(r_e_range), n)))
    snr = np.exp(rng.uniform(*np.log(snr_range), n))
    parts = [
        # GalSim seeds a BaseDeviate of 0 from the clock: knot seeds start at 1
        _parts(rng, k, r / _galsim.PIXEL_SCALE, n_range, seed * 1000 + i + 1)
        for i, (k, r) in enumerate(zip(kind, r_e, strict=True))
    ]

    nb = len(psf_fwhm)
    psfs = [_galsim.moffat(f / _galsim.PIXEL_SCALE) for f in psf_fwhm]
    images = np.zeros((n, nb, ny, nx))
    for i in range(n):
        for b in range(nb):
            stamp, origin = _galsim.draw_isolated(parts[i], b, psfs[b], yx[i], shape)
            _galsim.add_stamp(images[i, b], stamp, origin)
    rms = np.asarray(noise_rms, float)
    unit_snr = np.sqrt(np.sum(images**2 / rms[None, :, None, None] ** 2, axis=(1, 2, 3)))
    scale = snr / unit_snr
    images *= scale[:, None, None, None]
    flux = scale[:, None] * np.array([sum(sed for _, sed in ps) for ps in parts])
    noise = rng.normal(0.0, 1.0, (nb, ny, nx)) * rms[:, None, None]

    wcs = tan_wcs(_galsim.PIXEL_SCALE, shape)
    psf_images = np.array([p.drawImage(nx=psf_size, ny=psf_size, scale=1.0).array for p in psfs])
    variance = np.broadcast_to((rms**2)[:, None, None], (nb, ny, nx))
    ds = from_arrays(images.sum(0) + noise, variance=variance, psf=psf_images, bands=list(BANDS[:nb]), wcs=wcs)
    ds.attrs["instrument"] = "simulated (scarlet2.simulate.simulate_galsim_blend)"
    d = np.hypot(*(yx[:, None, :] - yx[None, :, :]).transpose(2, 0, 1))
    np.fill_diagonal(d, np.inf)
    nearest = d.min(axis=1) if n > 1 else np.full(n, np.inf)
    truth = xr.Dataset(
        {
            **_galsim.truth_variables(yx, wcs, flux, kind, r_e, snr, nearest),
            "image": (("source", "band", "y", "x"), images.astype(np.float32)),
        },
        coords={"source": np.arange(n), "band": list(BANDS[:nb])},
        attrs={"seed": seed, "pixel_scale": _galsim.PIXEL_SCALE, "psf_fwhm": list(psf_fwhm)},
    )
    return GalsimBlend(ds, truth)


def _parts(rng, kind, r_e_px, n_range, seed):
    if kind == "star":
        return _galsim.star(rng)
    if kind == "sersic":
        return _galsim.sersic(rng, r_e_px, n_range)
    if kind == "bulge+disk":
        return _galsim.bulge_disk(rng, r_e_px)
    return _galsim.knotty(rng, r_e_px, seed)


def _place(rng, n, shape, min_sep, max_sep, margin=12.0, tries=10000):
    """Centres of a connected blend: the first near the middle, each next one between min_sep and
    max_sep from one placed before and at least min_sep from all, ``margin`` from the edges."""
    ny, nx = shape
    if min(ny, nx) < 2 * margin + 1:
        raise InputError(f"shape {tuple(shape)} is too small for a blend: at least {2 * margin + 1:.0f} pixels a side")
    yx = [np.array([(ny - 1) / 2, (nx - 1) / 2]) + rng.uniform(-2, 2, 2)]
    for _ in range(tries):
        if len(yx) == n:
            break
        anchor = yx[rng.integers(len(yx))]
        r, t = rng.uniform(min_sep, max_sep), rng.uniform(0, 2 * np.pi)
        c = anchor + r * np.array([np.sin(t), np.cos(t)])
        inside = margin <= c[0] <= ny - 1 - margin and margin <= c[1] <= nx - 1 - margin
        if inside and min(np.hypot(*(c - q)) for q in yx) >= min_sep:
            yx.append(c)
    if len(yx) < n:
        raise InputError(f"cannot place {n} sources {min_sep} pixels apart in a {tuple(shape)} image; make it larger")
    return np.array(yx)


__all__ = ["KINDS", "GalsimBlend", "simulate_galsim_blend"]
