"""Regions of a mosaic: square tiles (the cores) and their halos, on the mosaic's pixel grid.

Every region is fitted in an array of one fixed shape, ``(tile + 2 halo)^2``, its core at
``(halo, halo)``; what lies beyond the mosaic is padding with weight 0. One shape means one
compiled program per scene structure for every region of a run (:mod:`.kernel`).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..errors import InputError


@dataclasses.dataclass(frozen=True)
class Region:
    """One tile of a mosaic: its core (the pixels and sources it owns) and its outer box (the core
    and its halo, clipped to the mosaic), as half-open pixel ranges ``(y0, y1, x0, x1)``."""

    index: int
    row: int
    col: int
    core: tuple[int, int, int, int]
    outer: tuple[int, int, int, int]
    tile: int
    halo: int

    @property
    def name(self) -> str:
        return f"r{self.row:03d}c{self.col:03d}"

    @property
    def padded_shape(self) -> tuple[int, int]:
        """The fixed (y, x) shape every region is fitted in."""
        n = self.tile + 2 * self.halo
        return n, n

    @property
    def origin(self) -> tuple[int, int]:
        """Mosaic pixel of the padded array's pixel (0, 0): the core starts at (halo, halo)."""
        return self.core[0] - self.halo, self.core[2] - self.halo

    @property
    def inset(self) -> tuple[int, int]:
        """Where the outer box's first pixel lands in the padded array."""
        return self.outer[0] - self.origin[0], self.outer[2] - self.origin[1]

    def owns(self, pixels) -> np.ndarray:
        """Which integer mosaic pixels (n, 2) lie in this region's core."""
        p = np.asarray(pixels).reshape(-1, 2)
        y0, y1, x0, x1 = self.core
        return (p[:, 0] >= y0) & (p[:, 0] < y1) & (p[:, 1] >= x0) & (p[:, 1] < x1)


def plan_regions(shape, tile: int, halo: int) -> list[Region]:
    """The regions covering a mosaic of ``shape`` (y, x), row by row.

    Raises
    ------
    InputError
        ``tile`` or ``halo`` not a positive / non-negative integer.
    """
    for name, value, least in (("tile", tile, 1), ("halo", halo, 0)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < least:
            raise InputError(f"{name} must be an integer >= {least}, got {value!r}")
    ny, nx = (int(s) for s in shape)
    regions = []
    for row, y0 in enumerate(range(0, ny, tile)):
        for col, x0 in enumerate(range(0, nx, tile)):
            y1, x1 = min(y0 + tile, ny), min(x0 + tile, nx)
            outer = (max(y0 - halo, 0), min(y1 + halo, ny), max(x0 - halo, 0), min(x1 + halo, nx))
            regions.append(Region(len(regions), row, col, (y0, y1, x0, x1), outer, int(tile), int(halo)))
    return regions


def owner(pixels, shape, tile: int) -> np.ndarray:
    """Index (in :func:`plan_regions` order) of the region owning each integer mosaic pixel."""
    p = np.asarray(pixels, int).reshape(-1, 2)
    ncol = -(-int(shape[1]) // tile)
    return (p[:, 0] // tile) * ncol + p[:, 1] // tile


__all__ = ["Region", "owner", "plan_regions"]
