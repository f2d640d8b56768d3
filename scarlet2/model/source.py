"""Sources: a centre and one or more components, each a spectrum times a morphology."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike

from ..errors import InputError
from ..ops.fourier import box_size
from ..ops.jit import to_device
from . import context
from .morphology import Morphology, Point
from .parameter import Parameter, as_parameter, value_of
from .positions import to_pixel
from .psf import DEFAULT_MODEL_PSF_SIGMA

#: How far (pixels) a source centre may move from its integer starting pixel during a fit.
MAX_SHIFT = 2.5


class Component(eqx.Module):
    """``spectrum`` (per-band flux, shape (n_bands,)) times a unit-flux ``morphology``."""

    spectrum: Parameter
    morphology: Morphology

    def __init__(self, spectrum: ArrayLike | Parameter, morphology: Morphology):
        self.spectrum = as_parameter(spectrum, "positive", stepsize=0.03)
        if not isinstance(morphology, Morphology):
            raise TypeError(f"morphology must be a scarlet2 Morphology, got {type(morphology).__name__}")
        self.morphology = morphology

    def flux(self, xp=jnp):
        """Per-band total flux; ``xp=numpy`` computes it on the host (no device program)."""
        s = xp.asarray(value_of(self.spectrum))
        m = self.morphology
        if hasattr(m, "array"):
            return s * xp.sum(m.image(xp))
        return s


class Source(eqx.Module):
    """A source: centre + components.

    Parameters
    ----------
    center
        Astropy ``SkyCoord`` (converted with the active scene's frame WCS) or pixel (y, x).
        Stored as a fixed integer pixel plus a free sub-pixel offset, so float32 resolves
        milli-pixel shifts anywhere in a large frame.
    spectrum, morphology
        A single component; or give ``components=[Component(...), ...]``.
    box
        Box size (odd, pixels); default from the morphology's extent and the model PSF.
    fixed_center
        Keep the centre fixed in fits.
    max_shift
        How far (frame pixels) the centre may move from its starting pixel in a fit (default
        :data:`MAX_SHIFT`).
    """

    origin: Array
    offset: Parameter
    components: tuple[Component, ...]
    box: tuple[int, int] = eqx.field(static=True)

    def __init__(
        self,
        center,
        spectrum: ArrayLike | Parameter | None = None,
        morphology: Morphology | None = None,
        components: Sequence[Component] | None = None,
        box: int | tuple[int, int] | None = None,
        fixed_center: bool = False,
        max_shift: float = MAX_SHIFT,
    ):
        scene = context.active_scene()
        frame = scene.frame if scene is not None else None
        if components is None:
            if spectrum is None or morphology is None:
                raise InputError("Give spectrum= and morphology=, or components=[...]")
            components = [Component(spectrum, morphology)]
        elif spectrum is not None or morphology is not None:
            raise InputError("Give either spectrum=/morphology= or components=, not both")
        self.components = tuple(components)
        if not self.components:
            raise InputError("A source needs at least one component")
        yx = to_pixel(center, frame.wcs if frame is not None else None)
        if frame is not None:
            frame.check_inside(yx)
            for c in self.components:
                nb = value_of(c.spectrum).shape
                if nb != (frame.n_bands,):
                    raise InputError(f"spectrum has shape {nb}, the frame has {frame.n_bands} bands {frame.bands}")
        origin = np.round(yx)
        self.origin = to_device(origin, jnp.int32)
        # bounded: a centre may move up to MAX_SHIFT pixels, never wander off to a neighbour
        bound = float(max_shift)
        if not bound > 0.5:
            raise InputError(f"max_shift must exceed half a pixel (a centre starts up to 0.5 px off), got {max_shift}")
        self.offset = Parameter(yx - origin, (-bound, bound), fixed=fixed_center, stepsize=0.03)
        arrays = [value_of(c.morphology.array).shape for c in self.components if hasattr(c.morphology, "array")]
        if box is None and arrays:
            box = arrays[0]  # a pixel-array morphology is its own box
        if box is None:
            psf_sigma = frame.psf.sigma_equivalent() if frame is not None else DEFAULT_MODEL_PSF_SIGMA
            ext = max(c.morphology.extent() for c in self.components)
            box = box_size(2 * (ext + 3 * psf_sigma + 2) + 1)
        elif isinstance(box, int | np.integer):
            box = (int(box), int(box))
        self.box = (int(box), int(box)) if isinstance(box, int) else tuple(int(b) for b in box)
        wrong = [a for a in arrays if a != self.box]
        if wrong:
            raise InputError(
                f"box {self.box} does not match the pixel-array morphology's shape {wrong[0]} (its own box)"
            )
        if any(b % 2 == 0 for b in self.box):
            raise InputError(f"Source boxes must have odd sizes, got {self.box}")
        context.register(self)

    def with_box(self, box: int) -> Source:
        """This source with a ``box`` x ``box`` pixel box (odd); everything else shared."""
        if box % 2 == 0:
            raise InputError(f"Source boxes must have odd sizes, got {box}")
        if any(hasattr(c.morphology, "array") for c in self.components) and (box, box) != self.box:
            raise InputError(f"A source with a pixel-array morphology keeps its {self.box} box (asked for {box})")
        # object.__new__, not copy.copy: that calls Module.__new__, whose record of modules still
        # being initialised (equinox's) nothing clears outside __init__, so every copy was kept
        # alive with its arrays (~3 MB per survey region)
        new = object.__new__(type(self))
        for f in dataclasses.fields(self):
            object.__setattr__(new, f.name, getattr(self, f.name))
        object.__setattr__(new, "box", (int(box), int(box)))  # a static field: not a pytree leaf
        return new

    @property
    def center(self):
        """Pixel centre (y, x) as a float array."""
        return self.origin.astype(value_of(self.offset).dtype) + value_of(self.offset)

    def flux(self, xp=jnp):
        """Per-band total flux of all components (``xp=numpy``: on the host)."""
        return sum(c.flux(xp) for c in self.components)

    @property
    def kind(self) -> str:
        if len(self.components) == 1 and isinstance(self.components[0].morphology, Point):
            return "point"
        return "+".join(type(c.morphology).__name__.lower() for c in self.components)


class PointSource(Source):
    """A point source (star, quasar): one spectrum times the PSF."""

    def __init__(
        self,
        center,
        spectrum: ArrayLike | Parameter,
        box: int | None = None,
        fixed_center: bool = False,
        max_shift: float = MAX_SHIFT,
    ):
        super().__init__(
            center, spectrum=spectrum, morphology=Point(), box=box, fixed_center=fixed_center, max_shift=max_shift
        )


class Background(eqx.Module):
    """A flat sky level per band (sky-subtraction residuals, unresolved light), added to each
    observation after its PSF. ``spectrum`` is in data units per pixel and may be negative.

    ``stepsize`` is in data units: use a fraction of the noise rms.
    """

    spectrum: Parameter

    def __init__(self, spectrum: ArrayLike | Parameter, stepsize: ArrayLike | None = None, fixed: bool = False):
        self.spectrum = (
            spectrum
            if isinstance(spectrum, Parameter)
            else Parameter(spectrum, constraint=None, stepsize=stepsize, fixed=fixed)
        )
        context.register(self)

    @property
    def kind(self) -> str:
        return "background"
