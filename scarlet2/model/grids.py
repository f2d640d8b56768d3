"""How two pixel grids on the sky relate: pixel scales, footprints, the map from one grid's pixel
centres to the other's pixel coordinates (through astropy, so FK5/ICRS frames and SIP distortion
are honoured), and whether a grid is the other shifted by whole pixels.

All host-side numpy in float64; positions are (y, x) as everywhere in scarlet2.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError

#: Two grids are "the same grid, shifted by whole pixels" when the map between them is an integer
#: translation to within this many pixels everywhere (then the fast same-grid renderer is exact).
SAME_GRID_TOLERANCE = 1e-4

#: Points per edge at which a footprint's boundary is traced (enough for SIP-curved edges).
EDGE_POINTS = 16


def pixel_scale(wcs) -> float:
    """Pixel scale of a celestial WCS in arcseconds (square root of the pixel area)."""
    return float(np.sqrt(abs(np.linalg.det(wcs.pixel_scale_matrix))) * 3600)


#: Pixels whose axes differ in scale, or are skewed, by more than this fraction are not square.
SQUARE_TOLERANCE = 1e-3


def is_square(wcs) -> bool:
    """Whether a celestial WCS has square, unskewed pixels (its scale matrix a scaled rotation
    or reflection): profiles defined in such pixels are round on the sky."""
    m = np.asarray(wcs.pixel_scale_matrix, np.float64)
    s = np.linalg.svd(m, compute_uv=False)
    return bool(s[1] > 0 and (s[0] - s[1]) <= SQUARE_TOLERANCE * s[0])


def map_pixels(yx: np.ndarray, from_wcs, to_wcs, what: str = "pixels") -> np.ndarray:
    """(..., 2) pixel (y, x) positions of ``from_wcs`` as (y, x) positions of ``to_wcs``, through
    the sky: astropy converts between the two WCS's celestial frames (e.g. FK5 -> ICRS)."""
    yx = np.asarray(yx, np.float64)
    flat = yx.reshape(-1, 2)
    sky = from_wcs.pixel_to_world(flat[:, 1], flat[:, 0])
    x, y = to_wcs.world_to_pixel(sky)
    out = np.stack([np.asarray(y, np.float64), np.asarray(x, np.float64)], -1).reshape(yx.shape)
    if not np.all(np.isfinite(out)):
        raise InputError(f"{what}: astropy cannot map them between the two WCS (non-finite pixel positions)")
    return out


def pixel_centres(shape: tuple[int, int]) -> np.ndarray:
    """(ny, nx, 2) (y, x) of every pixel centre of a grid of ``shape``."""
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return np.stack([yy, xx], -1).astype(np.float64)


def boundary(shape: tuple[int, int]) -> np.ndarray:
    """(n, 2) points along the outer edges (pixel edges at -0.5 and n - 0.5) of a grid."""
    ny, nx = shape
    t = np.linspace(0.0, 1.0, EDGE_POINTS)
    ys, xs = -0.5 + t * ny, -0.5 + t * nx
    edges = [
        np.stack([ys, np.full_like(ys, -0.5)], -1),
        np.stack([ys, np.full_like(ys, nx - 0.5)], -1),
        np.stack([np.full_like(xs, -0.5), xs], -1),
        np.stack([np.full_like(xs, ny - 0.5), xs], -1),
    ]
    return np.concatenate(edges)


def footprint(shape, from_wcs, to_wcs, what="observation") -> tuple[np.ndarray, np.ndarray]:
    """Bounding box (lo, hi) in ``to_wcs`` pixel (y, x) of a grid of ``shape`` on ``from_wcs``."""
    pts = map_pixels(boundary(shape), from_wcs, to_wcs, what)
    return pts.min(axis=0), pts.max(axis=0)


def integer_offset(shape, from_wcs, to_wcs) -> tuple[int, int] | None:
    """(oy, ox) when pixel (y, x) of ``from_wcs`` is pixel (y + oy, x + ox) of ``to_wcs``
    everywhere on a grid of ``shape`` (to :data:`SAME_GRID_TOLERANCE`), else None."""
    pts = np.concatenate(
        [boundary(shape), pixel_centres(shape)[:: max(1, shape[0] // 4), :: max(1, shape[1] // 4)].reshape(-1, 2)]
    )
    moved = map_pixels(pts, from_wcs, to_wcs)
    d = moved - pts
    o = np.round(d[0])
    if np.all(np.abs(d - o) < SAME_GRID_TOLERANCE):
        return int(o[0]), int(o[1])
    return None


def jacobian(yx, from_wcs, to_wcs, step: float = 0.5) -> np.ndarray:
    """(2, 2) d(to pixel y, x) / d(from pixel y, x) at ``yx`` (central differences)."""
    yx = np.asarray(yx, np.float64)
    pts = yx + step * np.array([[1, 0], [-1, 0], [0, 1], [0, -1]], np.float64)
    m = map_pixels(pts, from_wcs, to_wcs)
    return np.stack([(m[0] - m[1]) / (2 * step), (m[2] - m[3]) / (2 * step)], axis=-1)


def pixel_area_ratio(mapped: np.ndarray) -> np.ndarray:
    """|det J| at every pixel of a mapped grid ((ny, nx, 2) positions of the ``from`` grid's
    pixel centres in ``to`` pixels): how many ``to`` pixels one ``from`` pixel covers."""
    if min(mapped.shape[:2]) < 2:
        raise InputError(f"a grid of shape {mapped.shape[:2]} is too small to resample (at least 2 x 2 pixels)")
    dy = np.gradient(mapped, axis=0)
    dx = np.gradient(mapped, axis=1)
    return np.abs(dy[..., 0] * dx[..., 1] - dy[..., 1] * dx[..., 0])
