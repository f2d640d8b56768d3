"""Source detection: peaks of a PSF-matched-filtered, inverse-variance weighted band sum."""

from __future__ import annotations

import numpy as np
from jaxtyping import Float
from scipy import ndimage

from ..model import grids
from ..model.frame import Frame
from ..model.observation import Observation
from .sky import band_weights, filled_data, sky_levels


def detect_peaks(
    obs: Observation,
    threshold: float = 5.0,
    min_separation: int = 3,
    edge: int = 1,
    pixels: bool = False,
    curvature_threshold: float = 5.0,
) -> tuple[Float[np.ndarray, "n 2"], Float[np.ndarray, " n"]]:
    """Positions (n, 2) as (y, x) and detection S/N of peaks above ``threshold`` sigma.

    With ``pixels=True`` also the peaks' integer pixels (n, 2): unlike the centroids they do not
    move with the sky level, so overlapping cut-outs agree on them (survey regions own sources
    by them).

    The detection image is the sky-subtracted, inverse-variance weighted sum of the bands,
    filtered with the mean PSF (the matched filter for faint point-like sources); its noise
    follows from the weights: sqrt(sum_b w_b) * sqrt(sum k^2) for the unit-sum kernel k.
    A source on the slope of a brighter neighbour often has no maximum of its own there, only
    a bump: so peaks of the filtered image's curvature (its negative Laplacian) count too,
    where the curvature reaches ``curvature_threshold`` sigma of its own noise and the filtered
    image ``threshold`` (``curvature_threshold=np.inf``: maxima only). Peaks closer than
    ``min_separation`` pixels keep the brighter one; sub-pixel positions are the 3x3 centroid
    of the map the peak was found in.
    """
    data = filled_data(obs)
    sky, _ = sky_levels(obs)
    wb = band_weights(obs)
    det = np.tensordot(wb, data - sky[:, None, None], axes=1)
    psf = np.asarray(obs.psf_images(), np.float64).mean(axis=0)
    kernel = psf / psf.sum()
    # zero-padded like ndimage.convolve(mode="constant"), by FFT where that is cheaper (large
    # frames); an even kernel gets a zero row/column so its centre stays at shape // 2
    from scipy import signal  # heavy to import: only when detecting

    kernel = np.pad(kernel, [(0, 1 - s % 2) for s in kernel.shape])
    filt = signal.convolve(det, kernel, mode="same", method="auto")
    noise = np.sqrt(wb.sum())
    rms = max(noise * np.sqrt(np.sum(kernel**2)), 1e-30)
    size = 2 * min_separation + 1
    bright = filt > threshold * rms
    peaks = (filt == ndimage.maximum_filter(filt, size=size)) & bright
    curv = np.zeros_like(filt)
    if np.isfinite(curvature_threshold):
        lap = signal.convolve(kernel, _NEG_LAPLACIAN)  # odd size: the centre stays put
        curv = signal.convolve(det, lap, mode="same", method="auto")
        crms = max(noise * np.sqrt(np.sum(lap**2)), 1e-30)
        bumps = (curv == ndimage.maximum_filter(curv, size=size)) & (curv > curvature_threshold * crms) & bright
        peaks |= bumps
    if edge:
        peaks[:edge], peaks[-edge:], peaks[:, :edge], peaks[:, -edge:] = False, False, False, False
    iy, ix = np.nonzero(peaks)
    order = np.argsort(-filt[iy, ix])
    iy, ix = iy[order], ix[order]
    keep = _separated(np.stack([iy, ix], axis=-1), min_separation)
    iy, ix = iy[keep], ix[keep]
    local_max = filt == ndimage.maximum_filter(filt, size=3)
    pos = []
    for y, x in zip(iy, ix, strict=True):
        # a bump's maximum of filt lies towards its neighbour: centroid the curvature there
        field = filt if local_max[y, x] else curv
        win = np.clip(field[max(y - 1, 0) : y + 2, max(x - 1, 0) : x + 2], 0, None)
        yy, xx = np.mgrid[max(y - 1, 0) : y + 2, max(x - 1, 0) : x + 2]
        s = win.sum()
        pos.append((np.sum(win * yy) / s, np.sum(win * xx) / s) if s > 0 else (y, x))
    out = np.array(pos, float).reshape(-1, 2), filt[iy, ix] / rms
    return (*out, np.stack([iy, ix], axis=-1).reshape(-1, 2)) if pixels else out


#: 5-point negative Laplacian: convolved with the PSF, it turns a bump on a slope into a maximum.
_NEG_LAPLACIAN = np.array([[0.0, -1.0, 0.0], [-1.0, 4.0, -1.0], [0.0, -1.0, 0.0]])


def _separated(pix, min_separation):
    """Mask of the pixels (ordered brightest first) that lie more than ``min_separation`` from
    every brighter one kept. Only pairs that close are visited (a k-d tree), so a large frame's
    thousands of peaks cost no quadratic loop."""
    from scipy.spatial import cKDTree

    keep = np.ones(len(pix), bool)
    close = [[] for _ in range(len(pix))]
    for a, b in cKDTree(pix).query_pairs(min_separation) if len(pix) > 1 else ():
        close[max(a, b)].append(min(a, b))  # the fainter one defers to the brighter
    for j in range(len(pix)):
        keep[j] = not any(keep[k] for k in close[j])
    return keep


def detect_positions(
    observations, frame: Frame, threshold: float = 5.0, min_separation: int = 3
) -> tuple[Float[np.ndarray, "n 2"], Float[np.ndarray, " n"]]:
    """Peaks of several observations as frame pixel (y, x) positions, and their S/N.

    Each observation is searched on its own grid (:func:`detect_peaks`), sharpest (finest pixel
    scale) first; a peak of a coarser observation is kept only where no peak already kept lies
    within its ``min_separation`` (in its own pixels): the coarse data add what the sharp data do
    not cover or do not see, and do not double what they resolve.
    """
    obs = sorted(observations, key=lambda o: grids.pixel_scale(o.wcs) if o.wcs is not None and frame.wcs else 0.0)
    kept, snrs = np.zeros((0, 2)), np.zeros(0)
    for o in obs:
        pos, snr = detect_peaks(o, threshold=threshold, min_separation=min_separation)
        if frame.wcs is not None and o.wcs is not None:
            pos = grids.map_pixels(pos, o.wcs, frame.wcs, f"peaks of observation {o.label}")
            radius = min_separation * grids.pixel_scale(o.wcs) / grids.pixel_scale(frame.wcs)
        else:
            radius = min_separation
        for p, s in zip(pos, snr, strict=True):
            ny, nx = frame.shape
            outside = not (-0.5 <= p[0] <= ny - 0.5 and -0.5 <= p[1] <= nx - 0.5)
            if outside or (kept.size and np.min(np.hypot(*(kept - p).T)) < radius):
                continue
            kept, snrs = np.vstack([kept, p]), np.append(snrs, s)
    return kept, snrs
