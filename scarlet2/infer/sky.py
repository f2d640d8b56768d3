"""Per-band sky level, noise and weight statistics of an observation."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ..model.observation import Observation
from .defaults import SKY_CLIP_SIGMA


def band_weights(obs: Observation) -> np.ndarray:
    """Per band, the median weight of the unmasked pixels (0 for a band with none)."""
    w = np.asarray(obs.weights, np.float64)
    return np.array([np.median(b[b > 0]) if np.any(b > 0) else 0.0 for b in w])


def sky_levels(obs: Observation) -> tuple[np.ndarray, np.ndarray]:
    """Sigma-clipped median (sky) and noise rms per band over unmasked pixels."""
    from astropy.stats import sigma_clipped_stats  # heavy to import: only when initializing

    data, w = np.asarray(obs.data, np.float64), np.asarray(obs.weights)
    sky = np.array(
        [
            sigma_clipped_stats(d[wb > 0], sigma=SKY_CLIP_SIGMA)[1] if np.any(wb > 0) else 0.0
            for d, wb in zip(data, w, strict=True)
        ]
    )
    return sky, obs.noise_rms()


#: Width (pixels) of the Gaussian that fills masked pixels from their unmasked neighbours.
FILL_SIGMA = 1.5


def filled_data(obs: Observation) -> np.ndarray:
    """The data in float64 with masked pixels (weight 0) filled from their unmasked neighbours
    (a normalized Gaussian convolution), for the measurements that start a fit: a masked
    pixel read as 0 would bias peaks, radii and moments (a galaxy looking like a point source).
    Where no neighbour is unmasked the value stays 0. The fit itself never sees these values."""
    data = np.asarray(obs.data, np.float64)
    valid = np.asarray(obs.weights) > 0
    if valid.all():
        return data
    out = data.copy()
    for k in range(data.shape[0]):
        if valid[k].all() or not valid[k].any():
            continue
        num = ndimage.gaussian_filter(np.where(valid[k], data[k], 0.0), FILL_SIGMA, mode="constant")
        den = ndimage.gaussian_filter(valid[k].astype(np.float64), FILL_SIGMA, mode="constant")
        fill = np.divide(num, den, out=np.zeros_like(num), where=den > 1e-3)
        out[k] = np.where(valid[k], data[k], fill)
    return out
