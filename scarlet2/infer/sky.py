"""Per-band sky level, noise and weight statistics of an observation."""

from __future__ import annotations

import numpy as np
from astropy.stats import sigma_clipped_stats

from ..model.observation import Observation
from .defaults import SKY_CLIP_SIGMA


def band_weights(obs: Observation) -> np.ndarray:
    """Per band, the median weight of the unmasked pixels (0 for a band with none)."""
    w = np.asarray(obs.weights, np.float64)
    return np.array([np.median(b[b > 0]) if np.any(b > 0) else 0.0 for b in w])


def sky_levels(obs: Observation) -> tuple[np.ndarray, np.ndarray]:
    """Sigma-clipped median (sky) and noise rms per band over unmasked pixels."""
    data, w = np.asarray(obs.data, np.float64), np.asarray(obs.weights)
    sky = np.array(
        [
            sigma_clipped_stats(d[wb > 0], sigma=SKY_CLIP_SIGMA)[1] if np.any(wb > 0) else 0.0
            for d, wb in zip(data, w, strict=True)
        ]
    )
    return sky, obs.noise_rms()
