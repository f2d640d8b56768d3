"""The model frame: bands, pixel grid, WCS and the narrow model PSF sources are rendered with."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import equinox as eqx
import numpy as np

from ..errors import InputError
from .positions import to_pixel
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
        Model-frame PSF, narrower than every observation's PSF (default ``GaussianPSF()``, sigma 0.7 px,
        for well-sampled data); rendering warns, naming the band, when an observation's PSF is
        narrower (undersampled data need a narrower one).
    """

    bands: tuple[str, ...] = eqx.field(static=True)
    shape: tuple[int, int] = eqx.field(static=True)
    psf: PSF
    wcs: Any = eqx.field(static=True, default=None)

    def __init__(self, bands: Sequence[str], shape: tuple[int, int], wcs=None, psf: PSF | None = None):
        self.bands = tuple(str(b) for b in bands)
        if len(set(self.bands)) != len(self.bands):
            raise InputError(f"Frame bands must be unique, got {self.bands}")
        if len(shape) != 2 or min(shape) < 1:
            raise InputError(f"Frame shape must be (ny, nx) with positive sizes, got {shape}")
        self.shape = (int(shape[0]), int(shape[1]))
        self.psf = psf if psf is not None else GaussianPSF()
        self.wcs = celestial_wcs(wcs)

    @property
    def n_bands(self) -> int:
        return len(self.bands)

    def without_wcs(self) -> Frame:
        """Same frame without its WCS: what compiled code sees, so tiles with different WCS
        share one compilation."""
        return Frame(self.bands, self.shape, None, self.psf)

    def to_pixel(self, center) -> np.ndarray:
        """A centre as (y, x) pixels: from an astropy SkyCoord (needs the WCS) or a pixel pair."""
        return to_pixel(center, self.wcs)

    def check_inside(self, yx, what="source"):
        y, x = yx
        ny, nx = self.shape
        if not (-0.5 <= y <= ny - 0.5 and -0.5 <= x <= nx - 0.5):
            raise InputError(f"{what} centre (y={y:.2f}, x={x:.2f}) lies outside the frame of shape {self.shape}")


def celestial_wcs(wcs, where: str = "wcs"):
    """The celestial part of an astropy WCS (None stays None).

    Raises
    ------
    InputError
        ``wcs`` is not an astropy WCS (a header string, a dict), or has no celestial axes
        (LINEAR or spectral axes only), or astropy cannot map its pixels to the sky and back.
    """
    if wcs is None:
        return None
    if not (hasattr(wcs, "celestial") and hasattr(wcs, "pixel_to_world_values")):
        raise InputError(f"{where} must be an astropy.wcs.WCS (e.g. WCS(fits_header)), got {type(wcs).__name__}")
    if not wcs.has_celestial:
        ctype = list(getattr(wcs.wcs, "ctype", []))
        raise InputError(f"{where} has no celestial axes (CTYPE {ctype}); give a sky WCS (e.g. RA---TAN, DEC--TAN)")
    wcs = wcs.celestial
    try:
        ra, dec = wcs.pixel_to_world_values(0.0, 0.0)
        x, y = wcs.world_to_pixel_values(ra, dec)
        ok = bool(np.isfinite([ra, dec, x, y]).all() and abs(x) < 1e-2 and abs(y) < 1e-2)
    except Exception:  # wcslib raises several types for degenerate transformations
        ok = False
    if not ok:
        raise InputError(f"{where}: astropy cannot map pixel (0, 0) to the sky and back (a singular or broken WCS)")
    return wcs
