"""Box diagnostics: how much of a source's light its box cannot hold, and boxes grown to fit."""

from __future__ import annotations

import warnings

import numpy as np

from ..model.scene import Scene
from ..model.source import Source
from ..ops.fourier import BOX_SIZES

#: :func:`scarlet2.fit` warns when a fitted source's :func:`box_leakage` bound exceeds this.
BOX_LEAKAGE_WARNING = 0.2


class BoxLeakageWarning(UserWarning):
    """A source's profile reaches well beyond its box (see :func:`box_leakage`)."""


def warn_box_leakage(scene, leak, threshold: float = BOX_LEAKAGE_WARNING):
    """Warn, naming the sources, when ``leak`` (from :func:`box_leakage`) exceeds ``threshold``."""
    bad = [i for i, lk in enumerate(leak) if lk > threshold]
    if bad:
        what = ", ".join(f"source {i} ({leak[i]:.0%} beyond its {max(scene.sources[i].box)}-px box)" for i in bad)
        warnings.warn(
            f"{what}: a box's FFT wraps that light around inside the box, so these model images are "
            "wrong although their fluxes add up; refit scarlet2.grow_boxes(scene) or give larger boxes",
            BoxLeakageWarning,
            stacklevel=3,
        )


def box_leakage(scene: Scene) -> np.ndarray:
    """Per source (in ``scene.sources`` order), an upper bound on the fraction of its flux that
    its profiles put beyond its box (flux-weighted over components and bands; 0 for
    backgrounds, point sources and pixel arrays).

    A box is rendered by an FFT of its own size, so light beyond it wraps around into the box
    instead of being cut: a box well below its profile's size (a galaxy whose r_e grew in the
    fit, a high-n wing) makes a wrong image with the right total flux.
    """
    out = np.zeros(len(scene.sources))
    for i, s in enumerate(scene.sources):
        comps = getattr(s, "components", ())
        if not comps or not hasattr(s, "box"):
            continue
        out[i] = box_leakage_at(s, min(s.box))
    return out


def grow_boxes(scene: Scene, max_leakage: float = 0.05, max_box: int | None = None) -> Scene:
    """The scene with each source's box enlarged to the smallest standard size whose
    :func:`box_leakage` bound is at most ``max_leakage`` (boxes only grow; pixel-array
    morphologies keep theirs). ``max_box`` caps the size (default: the largest standard size).
    A fit of the result compiles anew for the new box sizes.

    A box is not bounded by the frame: the light beyond it wraps around into it, the frame
    included (a box of twice a 64 px frame put 0.1-0.2% too much of a Sersic n = 5-6 galaxy's
    light into the frame).
    """
    cap = max_box or BOX_SIZES[-1]
    leak = box_leakage(scene)
    sources = []
    for s, lk in zip(scene.sources, leak, strict=True):
        comps = getattr(s, "components", ())
        if lk <= max_leakage or any(hasattr(c.morphology, "array") for c in comps):
            sources.append(s)
            continue
        box = max(s.box)
        for size in (b for b in BOX_SIZES if max(s.box) < b <= cap):
            box = size
            if box_leakage_at(s, size) <= max_leakage:
                break
        sources.append(s.with_box(box))
    return scene.replace_sources(sources)


def box_leakage_at(source: Source, box: int) -> float:
    """:func:`box_leakage` of one source if its box were ``box`` pixels."""
    comps = source.components
    fluxes = np.array([max(float(np.sum(c.flux(xp=np))), 0.0) for c in comps])
    leaks = np.array([c.morphology.flux_outside(box / 2) for c in comps])
    return float(fluxes @ leaks / fluxes.sum()) if fluxes.sum() > 0 else float(leaks.max())
