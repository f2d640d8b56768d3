"""Simulated multi-band blends with known truth (red bulge + blue disk galaxies, Moffat PSFs).

Images are rendered with scarlet2's own renderer, which the test suite checks against GalSim to
1e-3 of the peak, and Gaussian noise of known variance is added.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..model.frame import Frame
from ..model.morphology import Sersic
from ..model.observation import Observation
from ..model.psf import MoffatPSF
from ..model.scene import Scene
from ..model.source import Component, Source
from ..render.observe import render

BANDS = ("g", "r", "i", "z", "y")
#: Relative SEDs (per band, summing to 1): bulges are red, disks blue.
BULGE_SED = np.array([0.08, 0.15, 0.22, 0.26, 0.29])
DISK_SED = np.array([0.28, 0.25, 0.2, 0.15, 0.12])
PSF_FWHM = (3.4, 3.1, 2.9, 2.8, 2.8)  # pixels; narrower to the red, as in ground-based surveys


@dataclasses.dataclass
class SimulatedBlend:
    """A simulated blend: images, variance, PSF images and the truth."""

    images: np.ndarray  # (bands, ny, nx)
    variance: np.ndarray  # (bands, ny, nx)
    psfs: np.ndarray  # (bands, h, w)
    bands: tuple[str, ...]
    truth: dict  # y, x (n,), flux (n, bands), bulge_flux, disk_flux, and shape parameters
    noiseless: np.ndarray

    def observation(self) -> Observation:
        return Observation(self.images, variance=self.variance, psf=self.psfs, bands=self.bands)

    @property
    def positions(self) -> np.ndarray:
        return np.stack([self.truth["y"], self.truth["x"]], axis=1)


def simulate_blend(
    seed: int,
    n_galaxies: int | None = None,
    shape=(64, 64),
    noise_rms=1.0,
    flux_range=(5e3, 4e4),
    min_separation: float = 9.0,
    psf_size: int = 41,
) -> SimulatedBlend:
    """Simulate a 5-band blend of 3-6 bulge + disk galaxies.

    Parameters
    ----------
    seed
        Seed of the numpy generator: the same seed gives the same blend.
    n_galaxies
        Number of galaxies (default: drawn from 3..6).
    shape
        Image shape (ny, nx).
    noise_rms
        Gaussian noise rms per pixel (all bands).
    flux_range
        Total (all-band) flux of a galaxy, drawn log-uniformly.
    min_separation
        Minimum distance between galaxy centres (pixels).
    """
    rng = np.random.default_rng(seed)
    n = int(n_galaxies if n_galaxies is not None else rng.integers(3, 7))
    ny, nx = shape
    centre = np.array([ny / 2, nx / 2])
    pos = []
    while len(pos) < n:  # a blend: all within ~1/4 frame of the centre, not on top of each other
        p = centre + rng.uniform(-0.25, 0.25, 2) * np.array(shape)
        if all(np.hypot(*(p - q)) >= min_separation for q in pos):
            pos.append(p)
    pos = np.array(pos)
    total = np.exp(rng.uniform(*np.log(flux_range), n))
    bulge_frac = rng.uniform(0.2, 0.5, n)
    truth = {
        "y": pos[:, 0],
        "x": pos[:, 1],
        "bulge_flux": [],
        "disk_flux": [],
        "bulge_r_e": [],
        "disk_r_e": [],
        "ellipticity": [],
    }
    frame = Frame(BANDS, shape)
    with Scene(frame) as scene:
        for i in range(n):
            g = rng.uniform(0, 0.4)
            th = rng.uniform(0, np.pi)
            e = (g * np.cos(2 * th), g * np.sin(2 * th))
            rb, rd = rng.uniform(0.8, 1.6), rng.uniform(2.5, 5.0)
            fb = total[i] * bulge_frac[i] * BULGE_SED
            fd = total[i] * (1 - bulge_frac[i]) * DISK_SED
            Source(
                center=pos[i],
                components=[
                    Component(fb, Sersic(4.0, rb, (0.5 * e[0], 0.5 * e[1]))),
                    Component(fd, Sersic(1.0, rd, e)),
                ],
                box=81,
            )
            for k, v in (
                ("bulge_flux", fb),
                ("disk_flux", fd),
                ("bulge_r_e", rb),
                ("disk_r_e", rd),
                ("ellipticity", e),
            ):
                truth[k].append(v)
    truth = {k: np.asarray(v) for k, v in truth.items()}
    truth["flux"] = truth["bulge_flux"] + truth["disk_flux"]
    psfs = np.stack([np.asarray(MoffatPSF(f, 3.0).image((psf_size, psf_size)))[0] for f in PSF_FWHM])
    psfs /= psfs.sum(axis=(1, 2), keepdims=True)
    variance = np.full((len(BANDS),) + tuple(shape), noise_rms**2, np.float32)
    template = Observation(np.zeros_like(variance), variance=variance, psf=psfs, bands=BANDS)
    noiseless = np.asarray(render(scene, template), np.float64)
    images = noiseless + rng.normal(0, noise_rms, noiseless.shape)
    return SimulatedBlend(images.astype(np.float32), variance, psfs.astype(np.float32), BANDS, truth, noiseless)


def source_fluxes(scene) -> np.ndarray:
    """Per-band total flux of every (non-background) source of a scene: (n_sources, bands)."""
    return np.array([np.asarray(s.flux()) for s in scene.sources if hasattr(s, "components")])


__all__ = ["SimulatedBlend", "simulate_blend", "source_fluxes"]
