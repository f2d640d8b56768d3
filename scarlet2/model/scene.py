"""The scene: a frame and the sources in it."""

from __future__ import annotations

import equinox as eqx
import jax
import numpy as np

from . import context
from .frame import Frame
from .source import Source


class Scene(eqx.Module):
    """A frame and its sources; an immutable pytree (fits return new scenes).

    Use as a context manager to add sources::

        with Scene(frame) as scene:
            Source(center=(10, 12), spectrum=..., morphology=Sersic(...))

    A later ``with scene:`` block appends more sources to the same scene.
    """

    frame: Frame
    sources: tuple[Source, ...]

    def __init__(self, frame: Frame, sources=()):
        self.frame = frame
        self.sources = tuple(sources)
        for i, s in enumerate(self.sources):
            origin = getattr(s, "origin", None)  # Background has none
            if origin is not None and not isinstance(origin, jax.core.Tracer):
                frame.check_inside(np.asarray(origin, float), what=f"source {i}")

    def __enter__(self):
        context.push(self)
        return self

    def __exit__(self, *exc):
        context.pop()
        return False

    def __len__(self):
        return len(self.sources)

    def __getitem__(self, i):
        return self.sources[i]

    def without_wcs(self) -> Scene:
        return Scene(self.frame.without_wcs(), self.sources)

    def with_frame(self, frame: Frame) -> Scene:
        return Scene(frame, self.sources)

    def replace_sources(self, sources) -> Scene:
        return Scene(self.frame, sources)
