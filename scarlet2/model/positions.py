"""Positions: sky coordinates or pixel pairs -> pixel (y, x), in one place.

Pixel positions are (y, x) with numpy's convention (pixel (iy, ix) has its centre at integer
coordinates); astropy's WCS speaks (x, y), which is swapped here and nowhere else.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError


def is_sky(positions) -> bool:
    """Whether ``positions`` is an astropy SkyCoord (scalar or array)."""
    return hasattr(positions, "frame") and hasattr(positions, "ra")


def to_pixels(positions, wcs=None, what: str = "positions") -> np.ndarray:
    """(n, 2) pixel (y, x) from a SkyCoord (scalar or array; needs ``wcs``), an (n, 2) array of
    pixel (y, x) pairs, or one pair.

    Raises
    ------
    InputError
        Naming ``what``: sky positions without a WCS, the wrong shape, non-finite entries.
    """
    if isinstance(positions, list | tuple) and positions and all(is_sky(p) for p in positions):
        from astropy.coordinates import SkyCoord

        # a list of SkyCoords, as users write; each taken to ICRS first (frames may differ)
        positions = SkyCoord([SkyCoord(p).icrs for p in positions])
    if is_sky(positions):
        if wcs is None:
            raise InputError(f"{what}: sky coordinates need a WCS (give the frame or observation one)")
        x, y = wcs.world_to_pixel(positions)
        yx = np.stack([np.atleast_1d(y), np.atleast_1d(x)], axis=-1).astype(np.float64)
    else:
        try:
            yx = np.asarray(positions, dtype=np.float64)
        except (TypeError, ValueError) as err:
            raise InputError(f"{what}: not numbers ({err})") from None
        if yx.shape == (2,):
            yx = yx[None]
        if yx.ndim != 2 or yx.shape[1] != 2:
            raise InputError(f"{what} must be (n, 2) pixel (y, x) pairs, got shape {yx.shape}")
    bad = np.flatnonzero(~np.all(np.isfinite(yx), axis=1))
    if bad.size:
        raise InputError(f"{what} {bad.tolist()} are not finite")
    return yx


def to_pixel(center, wcs=None, what: str = "centre") -> np.ndarray:
    """One position as a (y, x) pair (see :func:`to_pixels`)."""
    yx = to_pixels(center, wcs, what)
    if yx.shape[0] != 1:
        raise InputError(f"{what} must be one position, got {yx.shape[0]}")
    return yx[0]


def sky_to_pixels(ra, dec, wcs, what: str = "positions") -> np.ndarray:
    """(n, 2) pixel (y, x) of ICRS right ascensions and declinations in degrees (converted to
    the WCS's own frame, e.g. FK5, by astropy)."""
    from astropy.coordinates import SkyCoord

    if wcs is None:
        raise InputError(f"{what}: ra/dec need a WCS")
    ra, dec = np.atleast_1d(np.asarray(ra, np.float64)), np.atleast_1d(np.asarray(dec, np.float64))
    if ra.shape != dec.shape or ra.ndim != 1:
        raise InputError(f"{what}: ra and dec must be 1-d of one length, got shapes {ra.shape} and {dec.shape}")
    return to_pixels(SkyCoord(ra, dec, unit="deg", frame="icrs"), wcs, what=what)


def pixels_to_sky(yx, wcs) -> tuple[np.ndarray, np.ndarray]:
    """(ra, dec) in degrees (ICRS) of (n, 2) pixel (y, x) positions."""
    yx = np.asarray(yx, np.float64).reshape(-1, 2)
    sky = wcs.pixel_to_world(yx[:, 1], yx[:, 0])
    sky = sky.icrs if hasattr(sky, "icrs") else sky
    return sky.ra.deg, sky.dec.deg
