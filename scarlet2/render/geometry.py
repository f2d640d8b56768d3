"""The padded canvas a scene is rendered into: its static layout around the frame."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

from ..errors import InputError
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
        reach = tuple(max(o.psf_shape[axis] // 2 for o in observations) for axis in (0, 1))
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
