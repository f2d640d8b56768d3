"""Point or extended, decided on the fitted scene.

Second moments of the data cannot tell a star from a compact galaxy in a blend: a neighbour's
wing skews them either way. So :func:`scarlet2.initialize` starts nearly every source extended,
and after the fit each extended source is tested against a point source on its *deblended*
light (the data minus every other source's model): the PSF, with per-band fluxes by linear least
squares, replaces the extended model where it fits as well up to the Bayesian information
criterion (the extended model's extra parameters times ln of the pixels it covers). An extended
model that took a neighbour's light fails that test even for a star: near misses are tried as
points in a refit, where the neighbours can take their light back (:func:`select_points_by_refit`).
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from scipy import ndimage

from ..model import grids
from ..model.observation import Observation
from ..model.parameter import parameters, value_of
from ..model.scene import Scene
from ..model.source import PointSource, Source
from ..render.geometry import grid_offset
from ..render.observe import as_observations, render
from .defaults import SPECTRUM_FLOOR

#: A pixel belongs to a source's footprint when the source's own model there reaches this S/N
#: (summed in quadrature over bands).
FOOTPRINT_SNR = 0.1
#: Extended sources whose point test misses by less than this many times the penalty are tried
#: as points in a refit (see :func:`select_points_by_refit`).
TRIAL_FACTOR = 5.0


def point_tests(scene: Scene, observation: Observation) -> list[tuple[int, float, float, np.ndarray]]:
    """``(index, dchi2, penalty, footprint)`` for each extended source of ``scene``.

    ``dchi2`` is chi^2 of the best point source on the source's deblended light minus the
    extended model's, over its footprint; ``penalty`` the extended model's extra parameters times
    ln of the pixels there. Empty unless the observation is on the scene's pixel grid (the PSF
    is then the observation's own).
    """
    offset = grid_offset(observation, scene.frame)
    if offset is None:
        return []
    w, data, model = pixels_and_model(scene, observation)
    resid = data - model
    psfs = np.asarray(observation.psf_images(), np.float64)
    out = []
    for i, src in enumerate(scene.sources):
        if not isinstance(src, Source) or src.kind == "point":
            continue
        own = model - np.asarray(render(without_source(scene, i), observation), np.float64)
        foot = np.sum(own**2 * w, axis=0) > FOOTPRINT_SNR**2
        if not foot.any():
            continue
        centre = np.asarray(src.center, np.float64) - np.asarray(offset)
        point = _psf_at(psfs, centre, data.shape[-2:])
        d, ww, p = (a[:, foot] for a in (resid + own, w, point))
        flux = np.clip(np.sum(ww * d * p, axis=1) / np.maximum(np.sum(ww * p * p, axis=1), 1e-30), 0, None)
        chi2_point = np.sum(ww * (d - flux[:, None] * p) ** 2)
        chi2_ext = np.sum(ww * resid[:, foot] ** 2)
        out.append((i, float(chi2_point - chi2_ext), _extra_parameters(src) * np.log(ww.size), foot))
    return out


def point_like(scene: Scene, observation: Observation) -> list[int]:
    """Indices (in ``scene.sources``) of extended sources a point source explains as well, up to
    the Bayesian information criterion (:func:`point_tests`)."""
    return [i for i, dchi2, penalty, _ in point_tests(scene, observation) if dchi2 < penalty]


def select_points_by_refit(scene: Scene, observation: Observation, fit, observations=None, **fit_options):
    """Point or extended for each source of a fitted scene, refitting where needed.

    Sources a point source explains as well on their deblended light (:func:`point_like`)
    become points. An extended model can also have taken a neighbour's light (a star fitted as a
    bulge + a wide disk), which no point source on its deblended light explains: sources within
    :data:`TRIAL_FACTOR` of the penalty become points on trial, the scene is refitted with the
    neighbours free to take their light back, and a trial point stays where chi^2 over its
    footprint rose by less than the penalty.

    Parameters
    ----------
    scene
        A fitted scene.
    observation
        The observation the tests run on (on the scene's pixel grid).
    fit
        The fitting function (:func:`scarlet2.fit`), called with ``fit_options``.
    observations
        What the refits fit (default: ``observation``); in a joint fit every observation, the
        tests on the sharpest (the one on the model's grid).

    Returns
    -------
    (scene, info, indices): the refitted scene and its fit's info (``None``, ``None`` when no
    source changed), and the indices of the sources that became points.
    """
    tests = point_tests(scene, observation)
    seen = [observation] if observations is None else as_observations(observations)
    if len(seen) > 1:  # the sharp view alone is not enough: every change is a trial, judged on all views
        sure, trial = [], [(i, penalty, foot) for i, dchi2, penalty, foot in tests if dchi2 < TRIAL_FACTOR * penalty]
    else:
        sure = [i for i, dchi2, penalty, _ in tests if dchi2 < penalty]
        trial = [(i, penalty, foot) for i, dchi2, penalty, foot in tests if penalty <= dchi2 < TRIAL_FACTOR * penalty]
    if not sure and not trial:
        return None, None, []
    observations = observation if observations is None else observations
    candidate, info = fit(to_point_sources(scene, sure + [i for i, _, _ in trial]), observations, **fit_options)
    if not trial:
        return candidate, info, sure
    # chi^2 over each trial's footprint, in every view: pixels whose centres fall in it
    lookups = [pixels_on(o, observation, scene.frame) for o in seen]
    feet = [[mask_on(foot, lk) for lk in lookups] for _, _, foot in trial]
    before, after = ([_chi2_map(s, o) for o in seen] for s in (scene, candidate))
    rise = [sum(a[m].sum() - b[m].sum() for a, b, m in zip(after, before, f, strict=True)) for f in feet]
    keep = [i for (i, penalty, _), r in zip(trial, rise, strict=True) if r < penalty]
    back = [i for i, _, _ in trial if i not in keep]
    if not back:
        return candidate, info, sorted(sure + keep)
    if not sure and not keep:  # nothing changes: the first fit stands
        return None, None, []
    mixed = candidate.replace_sources([scene.sources[k] if k in back else s for k, s in enumerate(candidate.sources)])
    refit, info = fit(mixed, observations, **fit_options)
    return refit, info, sorted(sure + keep)


def pixels_on(obs: Observation, anchor: Observation, frame):
    """For each pixel of ``obs``, the pixel of ``anchor`` (on the frame's grid) its centre falls
    in: ``(inside, y, x)`` (y, x are 0 where ``inside`` is False), or None when ``obs`` is
    ``anchor``. One astropy mapping per observation; masks then follow by indexing
    (:func:`mask_on`)."""
    if obs is anchor:
        return None
    oy, ox = grid_offset(anchor, frame)
    at = np.rint(grids.map_pixels(grids.pixel_centres(obs.data.shape[-2:]), obs.wcs, frame.wcs)).astype(int)
    y, x = at[..., 0] - oy, at[..., 1] - ox
    ny, nx = anchor.data.shape[-2:]
    inside = (y >= 0) & (y < ny) & (x >= 0) & (x < nx)
    return inside, np.where(inside, y, 0), np.where(inside, x, 0)


def mask_on(mask, lookup) -> np.ndarray:
    """A mask of the anchor's pixels as a mask of another observation's, through its
    :func:`pixels_on` ``lookup`` (``mask`` itself for the anchor, whose lookup is None)."""
    if lookup is None:
        return mask
    inside, y, x = lookup
    return inside & mask[y, x]


def _chi2_map(scene, observation):
    """Per-pixel chi^2 summed over bands."""
    w, data, model = pixels_and_model(scene, observation)
    return np.sum(w * (data - model) ** 2, axis=0)


def pixels_and_model(scene: Scene, observation: Observation):
    """``(weights, data, model)`` as float64 host arrays; data 0 where the weight is 0."""
    w = np.asarray(observation.weights, np.float64)
    data = np.where(w > 0, np.nan_to_num(np.asarray(observation.data, np.float64)), 0.0)
    return w, data, np.asarray(render(scene, observation), np.float64)


def to_point_sources(scene: Scene, indices) -> Scene:
    """The scene with the sources at ``indices`` replaced by point sources at their centres,
    holding their total flux (each band at least a small floor: spectra are positive)."""
    sources = list(scene.sources)
    for i in indices:
        src = sources[i]
        flux = np.asarray(src.flux(np), np.float64)
        flux = np.maximum(flux, max(SPECTRUM_FLOOR * flux.max(), 1e-6))
        bound = src.offset.constraint.upper  # the same freedom to move (a joint frame's is wider)
        # a centre that moved past the frame's edge (a star beyond it, seen by its wing) starts at the edge
        edge = np.asarray(scene.frame.shape) - 0.5
        centre = np.clip(np.asarray(src.center, np.float64), -0.5, edge)
        sources[i] = PointSource(centre, spectrum=flux, box=src.box[0], max_shift=bound)
    return scene.replace_sources(sources)


def without_source(scene: Scene, i: int) -> Scene:
    """The scene with source ``i``'s spectra at zero (the same structure: one compiled render)."""
    src = scene.sources[i]
    specs = [c.spectrum for c in src.components]
    zeroed = [eqx.tree_at(lambda p: p.value, s, jnp.zeros_like(value_of(s))) for s in specs]
    new = eqx.tree_at(lambda s: [c.spectrum for c in s.components], src, zeroed)
    return scene.replace_sources([new if k == i else s for k, s in enumerate(scene.sources)])


def _extra_parameters(src: Source) -> int:
    """Free parameters the extended model has beyond a point source's (shapes, and the spectra
    of components after the first)."""
    n = sum(int(np.size(p.value)) for c in src.components for p in parameters(c.morphology) if not p.fixed)
    return n + sum(int(np.size(value_of(c.spectrum))) for c in src.components[1:])


def _psf_at(psfs, centre, shape):
    """Per-band PSF images (unit sum) centred at sub-pixel ``centre`` (y, x) on a ``shape``
    grid, shifted in Fourier space (exact for band-limited PSFs)."""
    nb, h, w = psfs.shape
    iy, ix = int(round(centre[0])), int(round(centre[1]))
    shift = (centre[0] - iy, centre[1] - ix)
    out = np.zeros((nb, *shape))
    y0, x0 = iy - h // 2, ix - w // 2
    ys, xs = slice(max(y0, 0), min(y0 + h, shape[0])), slice(max(x0, 0), min(x0 + w, shape[1]))
    if ys.start >= ys.stop or xs.start >= xs.stop:
        return out
    for b in range(nb):
        moved = np.fft.ifft2(ndimage.fourier_shift(np.fft.fft2(psfs[b]), shift)).real
        out[b, ys, xs] = moved[ys.start - y0 : ys.stop - y0, xs.start - x0 : xs.stop - x0]
    return out


def select_point_sources(scene: Scene, observation: Observation) -> tuple[Scene, list[int]]:
    """``(scene, indices)``: :func:`to_point_sources` of :func:`point_like`'s answer."""
    idx = point_like(scene, observation)
    return (to_point_sources(scene, idx) if idx else scene), idx


__all__ = [
    "mask_on",
    "pixels_on",
    "point_like",
    "point_tests",
    "select_point_sources",
    "select_points_by_refit",
    "to_point_sources",
]
