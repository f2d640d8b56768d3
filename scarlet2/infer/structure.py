"""Free-form light where a profile leaves structure, decided on the fitted scene.

Sersic profiles fit simulated galaxies, but real ones have arms, rings, clumps, isophote twists
and asymmetries: on real blends a parametric fit ends with chi^2/dof well above 1 and the
misfit concentrated in the bright galaxies. Free-form pixels fit them, but starting every
galaxy free-form lets faint ones absorb their neighbours' light. So after the parametric fit
each extended source's share of the residual chi^2 is measured (each pixel's chi^2 split
between sources in proportion to their model light there); where it exceeds what noise gives by
a wide, significant margin, the source's widest profile becomes a free-form component (the
compact core keeps its profile), started from that profile plus the source's positive residual
in the pixels it dominates, and the scene is refitted from the fitted values
(:func:`scarlet2.fit_dataset`).
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from scipy import ndimage

from ..model.morphology import ArrayMorphology
from ..model.observation import Observation
from ..model.parameter import value_of
from ..model.scene import Scene
from ..model.source import Component, Source
from ..ops.fourier import box_size
from ..render.geometry import grid_offset
from ..render.observe import render
from .defaults import BULGE_FLUX_FRACTION, FREEFORM_FLOOR
from .selection import mask_on, pixels_and_model, pixels_on, without_source

#: A free form's box holds the pixels where its source's light (inverse-variance weighted band
#: sum, the S/N of one pixel's band sum) reaches this, plus a margin (pixels).
FREE_FORM_EDGE = 1.0
FREE_FORM_MARGIN = 2
#: chi^2 per pixel value over a source's territory above which its profile counts as leaving
#: structure (noise alone gives 1) ...
STRUCTURE_CHI2 = 1.2
#: ... when that excess is also this many standard deviations of chi^2 (sqrt(2 n) for n values).
STRUCTURE_SIGMA = 10.0


def territories(scene: Scene, observation: Observation) -> dict[int, np.ndarray]:
    """Each source's *territory* on the observation's pixels, by index in ``scene.sources``:
    the connected pixels about its centre where its model light exceeds all other sources'
    together and reaches :data:`FREE_FORM_EDGE` (one render per source; compute once and pass
    it to :func:`structure_tests`, :func:`to_free_form` and :func:`territory`)."""
    offset = np.asarray(grid_offset(observation, scene.frame))
    model = np.asarray(render(scene, observation), np.float64)
    return _territories(scene, _light(scene, observation, model), offset)


def structure_tests(
    scene: Scene, observation: Observation, regions=None, others=()
) -> list[tuple[int, float, float, int]]:
    """``(index, chi2_per_value, n_values, box)`` for each source of ``scene`` (points too).

    Over the source's *territory* (the connected pixels about its centre where its light exceeds
    all others' together and reaches :data:`FREE_FORM_EDGE`): ``chi2_per_value`` is the
    residual chi^2 per pixel value, ``n_values`` the number of pixel values there, ``box`` the
    free form's box side (the territory's reach plus a margin, at most the source's box).
    Empty unless the observation is on the scene's pixel grid. ``regions``: the scene's
    :func:`territories`, when already computed.

    ``others``: observations on other grids fitted jointly with it. Territories are drawn on
    ``observation`` (the sharpest: the one on the frame's grid), and each other observation's
    pixels whose centres fall in a territory add their chi^2 and values to its source's: a
    wide view sees colours that a profile fitted to the sharp view's single band can miss.
    """
    offset = grid_offset(observation, scene.frame)
    if offset is None:
        return []
    regions = territories(scene, observation) if regions is None else regions
    sums = {i: np.zeros(2) for i in regions}
    for obs in (observation, *others):
        w, data, model = pixels_and_model(scene, obs)
        chi2 = w * (data - model) ** 2
        lookup = pixels_on(obs, observation, scene.frame)
        for i, mine in regions.items():
            seen = mask_on(mine, lookup)
            sums[i] += [np.sum(chi2[:, seen]), np.sum(seen[None] & (w > 0))]
    out = []
    for i, (c2, n) in sums.items():
        if n >= 1:
            out.append((i, float(c2 / n), float(n), _box(scene.sources[i], regions[i], offset)))
    return out


def structured(scene: Scene, observation: Observation, regions=None, others=()) -> list[int]:
    """Indices of the extended, fully parametric sources whose profiles leave structure: over
    their territory (:func:`structure_tests`, with the jointly fitted ``others``) chi^2 per
    value above :data:`STRUCTURE_CHI2`, an excess of :data:`STRUCTURE_SIGMA` standard
    deviations and more than the free form's pixel count (each pixel a free parameter: it must
    explain more than it could fit of pure noise)."""
    return [
        i
        for i, _, _, box, excess in _significant(scene, observation, regions, others)
        if _parametric_extended(scene.sources[i]) and excess > box**2
    ]


def _significant(scene, observation, regions=None, others=()):
    """``(index, chi2_per_value, n_values, box, excess)`` of the sources whose territory's
    chi^2 per value exceeds :data:`STRUCTURE_CHI2` by :data:`STRUCTURE_SIGMA` sigma."""
    out = []
    for i, c, n, box in structure_tests(scene, observation, regions, others):
        excess = (c - 1) * n  # noise alone: 0 +- sqrt(2 n)
        if c > STRUCTURE_CHI2 and excess > STRUCTURE_SIGMA * np.sqrt(2 * n):
            out.append((i, c, n, box, excess))
    return out


def to_free_form(scene: Scene, observation: Observation, indices, regions=None) -> Scene:
    """The scene with each source at ``indices`` given a free-form component in place of its
    widest profile (a single profile is kept as the core, with a bulge's share of its flux,
    and the free form added beside it), in the box of :func:`structure_tests`.

    The free form may light only the source's territory (grown by :data:`FREE_FORM_MARGIN`
    pixels), so it cannot take a neighbour's light; it starts as that profile's image plus the
    source's positive residual (the data minus the whole model, in the spectrum's proportions)
    there. ``regions``: the scene's :func:`territories`, when already computed.
    """
    offset = np.asarray(grid_offset(observation, scene.frame))
    w, data, model = pixels_and_model(scene, observation)
    regions = territories(scene, observation) if regions is None else regions
    bands = [scene.frame.bands.index(b) for b in observation.bands]
    sources = list(scene.sources)
    for i in indices:
        mine = regions[i]
        src = sources[i]
        box = _box(src, mine, offset)
        src = src.with_box(box) if (box, box) != src.box else src
        comps = list(src.components)
        widest = max(range(len(comps)), key=lambda k: comps[k].morphology.extent())
        spec = np.asarray(value_of(comps[widest].spectrum), np.float64)
        half = np.array([box // 2, box // 2])
        centre = half + np.asarray(value_of(src.offset), np.float64)
        start = np.asarray(_profile_image(comps[widest].morphology, src.box, centre, scene.frame.psf), np.float64)
        if len(comps) == 1:  # the profile stays as the core, with the bulge's share of the flux
            core = _like(comps[0].spectrum, BULGE_FLUX_FRACTION * spec)
            comps = [eqx.tree_at(lambda c: c.spectrum.value, comps[0], core)]
            start = (1 - BULGE_FLUX_FRACTION) * start
        # per pixel, the amplitude of ``spec`` that best explains the residual (weighted over the
        # observation's bands, a subset of the frame's in a joint fit)
        seen = spec[list(bands)]
        amp = np.tensordot(seen, (data - model) * w, axes=1) / np.maximum(np.tensordot(seen**2, w, axes=1), 1e-300)
        amp = np.where(mine, np.clip(amp, 0, None), 0.0)
        corner = np.asarray(src.origin) - half - offset
        start = start + _cut(amp, corner, src.box)
        start = np.clip(start, FREEFORM_FLOOR * start.max(), None)
        # it may light its territory only (grown by the model PSF's reach, which blurs edges)
        support = ndimage.binary_dilation(_cut(mine, corner, src.box) > 0, iterations=FREE_FORM_MARGIN)
        start = start * support
        norm = start.sum()
        free = Component(spec * norm, ArrayMorphology(start / norm, support=support))
        comps = comps + [free] if len(comps) == 1 else [free if k == widest else c for k, c in enumerate(comps)]
        sources[i] = eqx.tree_at(lambda s: s.components, src, tuple(comps))
    return scene.replace_sources(sources)


def territory(scene: Scene, observation: Observation, indices, regions=None) -> np.ndarray:
    """The union of the :func:`territories` of the sources at ``indices``, on the
    observation's pixels: where a free form will hold their structure."""
    mine = territories(scene, observation) if regions is None else regions
    out = np.zeros(observation.data.shape[-2:], bool)
    for i in indices:
        out |= mine[i]
    return out


def _parametric_extended(src) -> bool:
    """An extended source made of profiles only (no free-form component yet)."""
    if not isinstance(src, Source) or src.kind == "point":
        return False
    return not any(hasattr(c.morphology, "array") for c in src.components)


def _light(scene: Scene, observation: Observation, model) -> dict[int, np.ndarray]:
    """Per-pixel model light (summed over bands, weighted by inverse variance) of each source,
    by index in ``scene.sources``."""
    w = np.asarray(observation.weights, np.float64)
    out = {}
    for i, src in enumerate(scene.sources):
        if not isinstance(src, Source):
            continue
        own = model - np.asarray(render(without_source(scene, i), observation), np.float64)
        out[i] = np.sum(np.clip(own, 0, None) * np.sqrt(w), axis=0)
    return out


def _territories(scene, light, offset) -> dict[int, np.ndarray]:
    """Per source: the connected pixels about its centre where its light exceeds all others'
    together and reaches :data:`FREE_FORM_EDGE`."""
    total = sum(light.values())
    out = {}
    for i, own in light.items():
        mine = (own >= total - own) & (own >= FREE_FORM_EDGE)
        labels, _ = ndimage.label(mine)
        cy, cx = np.clip(np.asarray(scene.sources[i].origin) - offset, 0, np.array(mine.shape) - 1)
        out[i] = labels == labels[cy, cx] if labels[cy, cx] else np.zeros_like(mine)
    return out


def _box(src: Source, territory, offset) -> int:
    """The free form's box side: the smallest standard size (no larger than the source's box)
    that holds its territory plus :data:`FREE_FORM_MARGIN` (each free-form pixel is a free
    parameter: a box grown for a profile's faint wing would add thousands that fit noise)."""
    ys, xs = np.nonzero(territory)
    if ys.size == 0:
        return max(src.box)
    cy, cx = np.asarray(src.origin) - offset
    reach = max(np.abs(ys - cy).max(), np.abs(xs - cx).max())
    return min(box_size(2 * (reach + FREE_FORM_MARGIN) + 1), max(src.box))


@eqx.filter_jit
def _profile_image(morphology, box, centre, psf):
    """A profile's image in its box (compiled: evaluated eagerly, a Sersic's transform costs
    seconds of dispatch)."""
    return morphology.render(box, centre, psf)


def _like(parameter, values):
    """``values`` as an array of ``parameter``'s dtype (a pytree leaf replaced in place)."""
    return jnp.asarray(values, value_of(parameter).dtype)


def _cut(image, origin, box):
    """``box`` pixels of ``image`` from ``origin`` (y, x), zero beyond its edges."""
    out = np.zeros(box)
    y0, x0 = int(origin[0]), int(origin[1])
    ys = slice(max(y0, 0), min(y0 + box[0], image.shape[0]))
    xs = slice(max(x0, 0), min(x0 + box[1], image.shape[1]))
    if ys.start < ys.stop and xs.start < xs.stop:
        out[ys.start - y0 : ys.stop - y0, xs.start - x0 : xs.stop - x0] = image[ys, xs]
    return out


__all__ = ["structure_tests", "structured", "territories", "territory", "to_free_form"]
