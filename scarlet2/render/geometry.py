"""The padded canvas a scene is rendered into: its static layout around the frame."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from ..errors import InputError
from ..model import grids
from ..model.frame import Frame
from ..model.observation import Observation
from ..ops.fourier import fast_size

#: Model light is kept up to this fraction of the largest PSF stamp's radius beyond the frame's
#: edges (more where the FFT size leaves room; at most the whole radius, which is exact). Light
#: farther out reaches the frame only through the stamp's outer part; its measured error and
#: saving are in docs/design.md. Set it to 1.0 to keep all the light the stamps reach.
MODEL_MARGIN = 0.5


class Geometry(NamedTuple):
    """Static layout of the padded canvas the scene is rendered into (hashable).

    The frame sits at offset ``pad`` in a canvas of ``canvas_shape``; the observations' kernels
    reach ``reach`` pixels (the largest PSF stamp's radius). Model light is kept in the frame
    plus ``pad`` on every side (``kept_shape``), and the canvas is at least frame + ``pad`` +
    ``reach`` long on each axis: kept light that the FFT wraps around lands more than ``reach``
    from every frame pixel, so it never reaches the frame.
    """

    frame_shape: tuple[int, int]
    pad: tuple[int, int]
    canvas_shape: tuple[int, int]
    reach: tuple[int, int]

    @classmethod
    def build(cls, frame: Frame, observations: Sequence[Observation], margin: float | None = None) -> Geometry:
        """The layout for ``observations`` of ``frame``; ``margin`` defaults to :data:`MODEL_MARGIN`."""
        margin = MODEL_MARGIN if margin is None else margin
        if not 0 <= margin <= 1:
            raise InputError(f"margin must be in [0, 1] (a fraction of the PSF stamp's radius), got {margin}")
        reaches = [psf_reach(o, frame) for o in observations]
        reach = tuple(max(r[axis] for r in reaches) for axis in (0, 1))
        pad, canvas = [], []
        for n, r in zip(frame.shape, reach, strict=True):
            # a frame pixel sees canvas pixels within r: wrap-around stays out of the frame
            # when the canvas is >= frame + r + the kept margin on either side
            # and holds the PSF stamp (2 r + 1) itself, which a frame of a few pixels does not
            size = fast_size(max(n + r + math.ceil(margin * r), 2 * r + 1))
            pad.append(min(r, size - n - r))  # the FFT size's slack widens the margin
            canvas.append(size)
        return cls(tuple(frame.shape), tuple(pad), tuple(canvas), reach)

    @property
    def kept_shape(self) -> tuple[int, int]:
        """The canvas's leading rows and columns that hold model light: the frame and ``pad``
        around it (the canvas beyond is zero)."""
        return tuple(min(c, n + 2 * p) for c, n, p in zip(self.canvas_shape, self.frame_shape, self.pad, strict=True))


def grid_offset(observation: Observation, frame: Frame) -> tuple[int, int] | None:
    """(oy, ox) when the observation is on the frame's pixel grid, its pixel (0, 0) at frame
    pixel (oy, ox), and lies inside the frame: it is then rendered by cropping the convolved
    canvas. None when it needs resampling. Without a WCS on either, an observation of the
    frame's shape is on its grid."""
    shape = tuple(observation.data.shape[-2:])
    if frame.wcs is None or observation.wcs is None:
        return (0, 0) if shape == tuple(frame.shape) else None
    offset = grids.integer_offset(shape, observation.wcs, frame.wcs)
    if offset is None:
        return None
    inside = all(0 <= o and o + n <= f for o, n, f in zip(offset, shape, frame.shape, strict=True))
    return offset if inside else None


def psf_reach(observation: Observation, frame: Frame) -> tuple[int, int]:
    """How far (frame pixels, per axis) the observation's PSF stamp reaches in the frame."""
    h, w = observation.psf_shape
    if grid_offset(observation, frame) is not None:
        return h // 2, w // 2
    if frame.wcs is None or observation.wcs is None:
        return h // 2, w // 2  # refused when its renderer is built
    ny, nx = observation.data.shape[-2:]
    j = np.abs(grids.jacobian(((ny - 1) / 2, (nx - 1) / 2), observation.wcs, frame.wcs))
    return (
        math.ceil(j[0, 0] * (h // 2) + j[0, 1] * (w // 2)),
        math.ceil(j[1, 0] * (h // 2) + j[1, 1] * (w // 2)),
    )
