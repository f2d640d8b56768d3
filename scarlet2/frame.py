"""The model frame: bands, pixel grid, WCS and the narrow model PSF sources are rendered with."""

from __future__ import annotations

from typing import Any

import equinox as eqx
import numpy as np

from .psf import PSF, GaussianPSF


class Frame(eqx.Module):
    """Model frame.

    Parameters
    ----------
    bands
        Band names, in the order of every spectrum.
    shape
        (ny, nx) pixels.
    wcs
        Optional astropy WCS (celestial, 2-d) of the pixel grid.
    psf
        Model-frame PSF, narrower than every observation's PSF (default ``GaussianPSF(0.7)``,
        for well-sampled data); rendering warns, naming the band, when an observation's PSF is
        narrower (undersampled data need a narrower one).
    """

    bands: tuple[str, ...] = eqx.field(static=True)
    shape: tuple[int, int] = eqx.field(static=True)
    psf: PSF
    wcs: Any = eqx.field(static=True, default=None)

    def __init__(self, bands, shape, wcs=None, psf=None):
        self.bands = tuple(str(b) for b in bands)
        if len(set(self.bands)) != len(self.bands):
            raise ValueError(f"Frame bands must be unique, got {self.bands}")
        if len(shape) != 2 or min(shape) < 1:
            raise ValueError(f"Frame shape must be (ny, nx) with positive sizes, got {shape}")
        self.shape = (int(shape[0]), int(shape[1]))
        self.psf = psf if psf is not None else GaussianPSF(0.7)
        self.wcs = _celestial(wcs)

    @property
    def n_bands(self) -> int:
        return len(self.bands)

    def without_wcs(self) -> Frame:
        """Same frame without its WCS: what compiled code sees, so tiles with different WCS
        share one compilation."""
        return Frame(self.bands, self.shape, None, self.psf)

    def to_pixel(self, center) -> np.ndarray:
        """A centre as (y, x) pixels: from an astropy SkyCoord (needs the WCS) or a pixel pair."""
        if hasattr(center, "frame") and hasattr(center, "ra"):
            if self.wcs is None:
                raise ValueError("A sky-coordinate centre needs a frame with a WCS")
            x, y = self.wcs.world_to_pixel(center)
            return np.array([float(y), float(x)])
        c = np.asarray(center, dtype=np.float64)
        if c.shape != (2,) or not np.all(np.isfinite(c)):
            raise ValueError(f"A pixel centre must be a finite (y, x) pair, got {center!r}")
        return c

    def check_inside(self, yx, what="source"):
        y, x = yx
        ny, nx = self.shape
        if not (-0.5 <= y <= ny - 0.5 and -0.5 <= x <= nx - 0.5):
            raise ValueError(f"{what} centre (y={y:.2f}, x={x:.2f}) lies outside the frame of shape {self.shape}")


def _celestial(wcs):
    if wcs is None:
        return None
    if getattr(wcs, "naxis", 2) != 2:
        wcs = wcs.celestial
    return wcs
