"""Sources found in the residual of a fit: light that no source of the scene explains.

A faint source on a brighter neighbour's slope makes no peak of its own in the data, and a
catalogue may simply lack a source; either way its light goes to whichever model is nearest
(a neighbour's wing, a free form, the sky). Once the known sources are fitted, that light
stands out in the residual, where the same detection finds it.
"""

from __future__ import annotations

import equinox as eqx
import numpy as np

from ..errors import InputError
from ..model.observation import Observation
from ..model.scene import Scene
from ..model.source import Source
from ..ops.jit import to_device
from ..render.geometry import grid_offset
from ..render.observe import render
from .detection import detect_peaks

#: Residual peaks closer than this (pixels, about a PSF FWHM) to a fitted centre are taken for
#: that source's model mismatch, not for a new source.
RESIDUAL_CLEARANCE = 4.0


def residual_observation(scene: Scene, observation: Observation) -> Observation:
    """``observation`` with the scene's model subtracted from its data."""
    model = np.asarray(render(scene, observation))
    data = np.asarray(observation.data) - model
    return eqx.tree_at(lambda o: o.data, observation, to_device(data, observation.data.dtype))


def residual_peaks(
    scene: Scene,
    observation: Observation,
    threshold: float = 5.0,
    min_separation: int = 3,
    clearance: float = RESIDUAL_CLEARANCE,
    pixels: bool = False,
    among=None,
    exclude=None,
):
    """Peaks of the fit's residual (:func:`~scarlet2.infer.detection.detect_peaks`) that lie at
    least ``clearance`` pixels from every source centre of ``scene`` (of the sources at indices
    ``among`` in ``scene.sources``, when given) and outside the ``exclude`` mask of the
    observation's pixels (where a source's own structure is expected, e.g. a free form's
    territory).

    Returns
    -------
    (positions, snr[, pixels], residual): positions (n, 2) as (y, x) in the observation's
    pixels (it must be on the scene's grid), their S/N (and their integer peak pixels with
    ``pixels=True``), and the residual :class:`~scarlet2.Observation` they were found in.
    """
    offset = grid_offset(observation, scene.frame)
    if offset is None:
        raise InputError(f"observation {observation.label} is not on the scene's pixel grid: no residual detection")
    resid = residual_observation(scene, observation)
    found = detect_peaks(resid, threshold, min_separation, pixels=pixels)
    members = scene.sources if among is None else [scene.sources[i] for i in among]
    members = [s for s in members if isinstance(s, Source)]
    centres = [np.asarray(s.origin, float) + np.asarray(s.offset.value, float) for s in members]
    centres = np.array(centres).reshape(-1, 2) - np.asarray(offset)
    pos = found[0]
    if len(centres):
        clear = np.array([np.min(np.hypot(*(centres - p).T)) >= clearance for p in pos], bool).reshape(-1)
    else:
        clear = np.ones(len(pos), bool)
    if exclude is not None and len(pos):
        iy, ix = (np.clip(np.round(pos[:, k]).astype(int), 0, exclude.shape[k] - 1) for k in (0, 1))
        clear &= ~exclude[iy, ix]
    return (*(a[clear] for a in found), resid)


__all__ = ["RESIDUAL_CLEARANCE", "residual_observation", "residual_peaks"]
