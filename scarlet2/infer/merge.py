"""Sources that a fit brought onto one another: one object's light split between two models.

Detection can put two peaks on one object (a compact galaxy beside a neighbour makes a saddle,
a residual peak sits on a profile the first fit got wrong), and the fit then moves both models
onto it and shares its light. Two centres closer than about half a PSF FWHM are one source when
they have one colour (the two halves of one galaxy, each shaped to complement the other), or
when the brighter model, scaled per band, explains their light as well (chi^2 over their
footprint rises by less than the dropped model's parameters times ln of the pixel values there,
as for point or extended in :mod:`.selection`; a faint partner whose colour follows the noise).
The fainter is dropped, and a refit gives its light back to the other. Light the data tell
apart (a blue star on a red galaxy) keeps both.
"""

from __future__ import annotations

import numpy as np

from ..model.observation import Observation
from ..model.parameter import parameters, value_of
from ..model.scene import Scene
from ..model.source import Source
from ..render.geometry import grid_offset
from ..render.observe import render
from .selection import FOOTPRINT_SNR, pixels_and_model, without_source

#: Fitted centres closer than this (pixels, about half a PSF FWHM; compare
#: :data:`~scarlet2.infer.residual.RESIDUAL_CLEARANCE`) may be one source.
MERGE_DISTANCE = 1.5
#: Close sources whose spectra, each normalized to unit sum, differ by less than this (L1: the
#: fraction of the light that would have to change bands) have one colour. A simulated galaxy
#: fitted as two halves: 0.03; DC2's point source and a faint red Sersic 1.4 px apart: 0.35.
MERGE_COLOUR = 0.1


def source_centres(scene: Scene, indices) -> np.ndarray:
    """(n, 2) fitted centres (y, x, frame pixels) of the sources at ``indices``."""
    # on the host: Source.center would compile a device program for its two additions
    src = [scene.sources[i] for i in indices]
    return np.array([np.asarray(s.origin, float) + np.asarray(value_of(s.offset), float) for s in src]).reshape(-1, 2)


def close_pairs(scene: Scene, among=None, protected=(), distance: float = MERGE_DISTANCE) -> dict[int, int]:
    """Candidate merges by position alone: ``{dropped: kept}`` over scene indices.

    Of sources (those at ``among``, default every :class:`~scarlet2.Source`) whose fitted
    centres lie within ``distance`` pixels, the one of larger total flux (over bands) stays,
    unless the other is ``protected`` (a catalogue's source, which a source found later may
    not replace); two protected sources both stay. Taken protected first, then brightest
    first, so a chain of close sources ends in its brightest and a dropped source takes no
    other's light.
    """
    among = [i for i in (range(len(scene.sources)) if among is None else among) if isinstance(scene.sources[i], Source)]
    if len(among) < 2:
        return {}
    centres = source_centres(scene, among)
    flux = np.array([float(np.sum(scene.sources[i].flux(np))) for i in among])
    safe = np.isin(among, list(protected))
    dropped: dict[int, int] = {}
    for a in np.lexsort((-flux, ~safe)):
        if among[a] in dropped:
            continue
        near = np.hypot(*(centres - centres[a]).T) < distance
        for b in np.flatnonzero(near):
            if b != a and among[b] not in dropped and not safe[b] and (safe[a] or flux[b] <= flux[a]):
                dropped[among[b]] = among[a]
    return dropped


def merge_tests(scene: Scene, observation: Observation, pairs: dict[int, int]) -> dict[int, tuple[float, float]]:
    """``{dropped: (dchi2, penalty)}`` for candidate ``pairs``: chi^2 over the pair's footprint
    when the kept model, scaled per band, takes both models' light, minus the fit's; and the
    dropped source's free parameters times ln of the footprint's pixel values. Empty unless the
    observation is on the scene's pixel grid."""
    if not pairs or grid_offset(observation, scene.frame) is None:
        return {}
    w, data, model = pixels_and_model(scene, observation)
    resid = data - model
    own = {
        i: model - np.asarray(render(without_source(scene, i), observation), np.float64)
        for i in {*pairs, *pairs.values()}
    }
    out = {}
    for gone, kept in pairs.items():
        a, b = own[kept], own[gone]
        foot = np.sum((a + b) ** 2 * w, axis=0) > FOOTPRINT_SNR**2
        if not foot.any():
            out[gone] = (0.0, 0.0)
            continue
        d, ww, p = (x[:, foot] for x in (resid + a + b, w, a))
        scale = np.clip(np.sum(ww * d * p, axis=1) / np.maximum(np.sum(ww * p * p, axis=1), 1e-30), 0, None)
        dchi2 = np.sum(ww * (d - scale[:, None] * p) ** 2) - np.sum(ww * resid[:, foot] ** 2)
        out[gone] = (float(dchi2), _free_count(scene.sources[gone]) * float(np.log(ww.size)))
    return out


def redundant_pairs(scene: Scene, observation: Observation, among=None, protected=()) -> dict[int, int]:
    """The :func:`close_pairs` of one colour (:data:`MERGE_COLOUR`) or that pass
    :func:`merge_tests`: ``{dropped: kept}``."""
    pairs = close_pairs(scene, among, protected)
    if not pairs:
        return {}

    def shape(i):
        f = np.asarray(scene.sources[i].flux(np), float)
        return f / f.sum() if f.sum() > 0 else f

    alike = {g for g, k in pairs.items() if np.abs(shape(g) - shape(k)).sum() < MERGE_COLOUR}
    tests = merge_tests(scene, observation, {g: k for g, k in pairs.items() if g not in alike})
    return {g: k for g, k in pairs.items() if g in alike or (g in tests and tests[g][0] < tests[g][1])}


def without_sources(scene: Scene, drop) -> Scene:
    """The scene without the sources at indices ``drop``."""
    drop = set(drop)
    return scene.replace_sources([s for i, s in enumerate(scene.sources) if i not in drop])


def _free_count(src) -> int:
    return sum(int(np.size(p.value)) for p in parameters(src) if not p.fixed)


__all__ = [
    "MERGE_COLOUR",
    "MERGE_DISTANCE",
    "close_pairs",
    "merge_tests",
    "redundant_pairs",
    "source_centres",
    "without_sources",
]
