"""Sources that a fit brought onto one another: one object's light split between two models.

Detection can put two peaks on one object (a compact galaxy beside a neighbour makes a saddle,
a residual peak sits on a profile the first fit got wrong), and the fit then moves both models
onto it and shares its light. Two centres closer than about half a PSF FWHM and of one
colour are not two resolved sources: the fainter is dropped, and a refit gives its light back
to the other. Two of different colours (a red bulge and a blue star-forming knot, a star on a
galaxy) are light the data tell apart, and both stay.
"""

from __future__ import annotations

import numpy as np

from ..model.parameter import value_of
from ..model.scene import Scene
from ..model.source import Source

#: Fitted centres closer than this (pixels, about half a PSF FWHM; compare
#: :data:`~scarlet2.infer.residual.RESIDUAL_CLEARANCE`) are one source.
MERGE_DISTANCE = 1.5
#: ... and whose spectra, each normalized to unit sum, differ by less than this (L1: the
#: fraction of the light that would have to change bands). On DC2, a point source and a faint
#: red Sersic 1.4 px apart differ by 0.35 and dropping the Sersic cost chi^2 900; a simulated
#: galaxy fitted twice, 0.03.
MERGE_COLOUR = 0.1


def source_centres(scene: Scene, indices) -> np.ndarray:
    """(n, 2) fitted centres (y, x, frame pixels) of the sources at ``indices``."""
    # on the host: Source.center would compile a device program for its two additions
    src = [scene.sources[i] for i in indices]
    return np.array([np.asarray(s.origin, float) + np.asarray(value_of(s.offset), float) for s in src]).reshape(-1, 2)


def close_pairs(
    scene: Scene, among=None, protected=(), distance: float = MERGE_DISTANCE, colour: float = MERGE_COLOUR
) -> dict[int, int]:
    """Sources to drop, each mapped to the source that takes its light: ``{dropped: kept}`` over
    scene indices.

    Of sources (those at ``among``, default every :class:`~scarlet2.Source`) whose fitted
    centres lie within ``distance`` pixels and whose normalized spectra differ (L1) by less
    than ``colour``, the one of larger total flux (over bands) stays,
    unless the other is ``protected`` (a catalogue's source, which a source found later may
    not replace); two protected sources both stay. Taken protected first, then brightest
    first, so a chain of close sources ends in its brightest and a dropped source takes no
    other's light.
    """
    among = [i for i in (range(len(scene.sources)) if among is None else among) if isinstance(scene.sources[i], Source)]
    if len(among) < 2:
        return {}
    centres = source_centres(scene, among)
    spectra = np.array([np.asarray(scene.sources[i].flux(np), float) for i in among])
    flux = spectra.sum(axis=1)
    shape = spectra / np.where(flux > 0, flux, 1.0)[:, None]
    safe = np.isin(among, list(protected))
    dropped: dict[int, int] = {}
    for a in np.lexsort((-flux, ~safe)):
        if among[a] in dropped:
            continue
        near = np.hypot(*(centres - centres[a]).T) < distance
        near &= np.abs(shape - shape[a]).sum(axis=1) < colour
        for b in np.flatnonzero(near):
            if b != a and among[b] not in dropped and not safe[b] and (safe[a] or flux[b] <= flux[a]):
                dropped[among[b]] = among[a]
    return dropped


def without_sources(scene: Scene, drop) -> Scene:
    """The scene without the sources at indices ``drop``."""
    drop = set(drop)
    return scene.replace_sources([s for i, s in enumerate(scene.sources) if i not in drop])


__all__ = ["MERGE_COLOUR", "MERGE_DISTANCE", "close_pairs", "source_centres", "without_sources"]
