"""The rules observation data must follow, one function per rule.

:class:`~scarlet2.Observation` and :func:`scarlet2.validate` (the Dataset schema) both apply
these, so an input is accepted or refused the same way on either path, with the same message.
Each rule raises :class:`~scarlet2.SchemaError` naming where (an argument or a Dataset
variable, given as ``where``), the band and the number of pixels.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import SchemaError
from ..ops.centroid import fourier_shift, windowed_centroid

#: A pixel whose weight is below this fraction of its band's median weight is masked: a variance
#: a million times the typical one is the 1e10 or 1e30 some pipelines put on bad pixels, not a
#: measurement, and counting such pixels as data would corrupt the sky, the detection image and
#: the degrees of freedom.
MASK_WEIGHT_RATIO = 1e-6

#: How far (pixels) a PSF image's centroid may sit from its central pixel (h // 2, w // 2).
#: Closer PSFs are recentred (a PSF rendered at a star's sub-pixel position, as survey pipelines
#: deliver them, or an instrument model ~1 px off like the shared HST one); farther is taken
#: for a mistake (a rolled or mis-cut stamp) and refused: it would move every source by as much.
PSF_CENTRE_TOLERANCE = 1.5

#: Offsets (pixels) below this are left alone: recentring them would only add round-off.
PSF_RECENTRE_MIN = 1e-3

#: A PSF stamp whose border pixels hold more than this fraction of its flux is too small for its
#: pixel scale: the light it leaves out would be missing from every source.
PSF_EDGE_FRACTION = 0.02


def check_bands(bands: Sequence[str], n_planes: int | None = None, where: str = "bands") -> tuple[str, ...]:
    """Band names as strings: unique, and one per image plane when ``n_planes`` is given."""
    bands = tuple(str(b) for b in bands)
    if n_planes is not None and len(bands) != n_planes:
        raise SchemaError(f"{where}: {len(bands)} band names {bands} for {n_planes} image planes")
    repeated = sorted({b for b in bands if bands.count(b) > 1})
    if repeated:
        raise SchemaError(f"{where}: names must be unique, {repeated} repeated in {list(bands)}")
    return bands


def check_shape(where: str, array: np.ndarray, shape: tuple[int, ...], reference: str = "the images") -> None:
    """``array`` has the images' ``shape``."""
    if tuple(array.shape) != tuple(shape):
        raise SchemaError(f"{where} has shape {tuple(array.shape)}, not the shape of {reference} {tuple(shape)}")


def check_variance(variance: np.ndarray, bands, masked: np.ndarray | None = None, where: str = "variance") -> None:
    """Variance > 0 wherever the pixel is not masked (``inf`` masks; 0, negative or NaN do not:
    they would be infinite or undefined weights)."""
    for k, b in enumerate(bands):
        bad = ~(variance[k] > 0)
        if masked is not None:
            bad &= ~masked[k]
        n = int(np.sum(bad))
        if n:
            raise SchemaError(
                f"{where}, band {b!r}: {n} unmasked pixels have variance <= 0 or NaN "
                "(give them variance inf, or weight 0, to mask them)"
            )


def check_weights(weights: np.ndarray, bands, where: str = "weights", dtype=np.float32) -> None:
    """Weights finite, >= 0 and representable in the computation ``dtype``."""
    limit = np.finfo(dtype).max
    for k, b in enumerate(bands):
        w = weights[k]
        n = int(np.sum(~np.isfinite(w)))
        if n:
            raise SchemaError(f"{where}, band {b!r}: {n} pixels have non-finite weights")
        n = int(np.sum(w < 0))
        if n:
            raise SchemaError(f"{where}, band {b!r}: {n} pixels have negative weights")
        n = int(np.sum(w > limit))
        if n:
            raise SchemaError(
                f"{where}, band {b!r}: {n} pixels have weights beyond the {np.dtype(dtype).name} range "
                f"(inverse variance > {limit:.3g}); rescale the data and their variance"
            )


def check_data(data: np.ndarray, good: np.ndarray, bands, where: str = "images", dtype=np.float32) -> None:
    """Finite values, representable in the computation ``dtype``, wherever the pixel counts."""
    limit = np.finfo(dtype).max
    for k, b in enumerate(bands):
        n = int(np.sum(~np.isfinite(data[k]) & good[k]))
        if n:
            raise SchemaError(
                f"{where}, band {b!r}: {n} unmasked pixels are NaN or inf (give them weight 0 to mask them)"
            )
        with np.errstate(invalid="ignore"):
            n = int(np.sum((np.abs(data[k]) > limit) & good[k]))
        if n:
            raise SchemaError(
                f"{where}, band {b!r}: {n} unmasked pixels are beyond the {np.dtype(dtype).name} range "
                f"(|value| > {limit:.3g}); rescale the data"
            )


def check_psf(psf: np.ndarray, bands, where: str = "psf") -> np.ndarray:
    """PSF images (band, h, w), or one (h, w) image for every band, in float64, normalized to unit
    sum and recentred (see :func:`psf_offsets`). Refused: non-finite pixels, a sum that is not
    positive, a stamp too small to hold the PSF (:data:`PSF_EDGE_FRACTION`), a centroid
    farther than :data:`PSF_CENTRE_TOLERANCE` from the central pixel (h // 2, w // 2)."""
    return recentre_psf(psf, bands, where)[0]


def recentre_psf(psf: np.ndarray, bands, where: str = "psf") -> tuple[np.ndarray, tuple]:
    """:func:`check_psf` and the shift it applied per band, ((dy, dx), ...) pixels: the PSF's
    windowed centroid (:func:`~scarlet2.ops.centroid.windowed_centroid`) is moved onto its
    central pixel by a band-limited shift, so sources land at their catalogue positions."""
    psf = np.asarray(psf, np.float64)
    if psf.ndim == 2:
        psf = psf[None]
    if psf.ndim != 3:
        raise SchemaError(f"{where}: PSF images must be (band, y, x) or (y, x), got shape {psf.shape}")
    if psf.shape[0] == 1 and len(bands) > 1:
        psf = np.broadcast_to(psf, (len(bands),) + psf.shape[1:])
    if psf.shape[0] != len(bands):
        raise SchemaError(f"{where}: {psf.shape[0]} PSF planes for {len(bands)} bands {list(bands)}")
    h, w = psf.shape[-2:]
    out, shifts = np.empty(psf.shape), []
    for k, (b, p) in enumerate(zip(bands, psf, strict=True)):
        n = int(np.sum(~np.isfinite(p)))
        if n:
            raise SchemaError(f"{where}, band {b!r}: PSF has {n} non-finite pixels")
        s = p.sum()
        if not s > 0:
            raise SchemaError(f"{where}, band {b!r}: PSF sums to {s:.4g}, not a positive flux")
        border = (p.sum() - p[1:-1, 1:-1].sum()) / s if min(h, w) > 2 else 1.0
        if border > PSF_EDGE_FRACTION:
            raise SchemaError(
                f"{where}, band {b!r}: the {h}x{w} PSF stamp is too small for its pixel scale "
                f"({border:.1%} of its flux in the border pixels); give a stamp that holds the PSF's wings"
            )
        cy, cx = windowed_centroid(p)
        dy, dx = h // 2 - cy, w // 2 - cx
        if abs(dy) > PSF_CENTRE_TOLERANCE or abs(dx) > PSF_CENTRE_TOLERANCE:
            raise SchemaError(
                f"{where}, band {b!r}: not centred (PSF centroid at ({cy:.2f}, {cx:.2f}), expected "
                f"({h // 2}, {w // 2}) within {PSF_CENTRE_TOLERANCE} px); sources would be shifted by as much"
            )
        if max(abs(dy), abs(dx)) > PSF_RECENTRE_MIN:
            p = fourier_shift(p, dy, dx)
        else:
            dy = dx = 0.0
        shifts.append((float(dy), float(dx)))
        out[k] = p / p.sum()
    return out, tuple(shifts)


def observation_weights(
    data: np.ndarray,
    bands,
    *,
    variance: np.ndarray | None = None,
    weights: np.ndarray | None = None,
    mask: np.ndarray | None = None,
    where: dict | None = None,
    dtype=np.float32,
) -> np.ndarray:
    """Apply every data and noise rule; return the inverse-variance weights (0 = masked).

    ``variance`` (``inf`` masks) or ``weights`` (0 masks), one of them; ``mask`` (True = bad)
    optional. Each may be one (y, x) plane for all bands. ``where`` names the arguments or
    variables in messages (keys ``"data"``, ``"variance"``, ``"weights"``, ``"mask"``).
    """
    names = {"data": "images", "variance": "variance", "weights": "weights", "mask": "mask"} | dict(where or {})
    if data.ndim != 3:
        raise SchemaError(f"{names['data']} must be (band, y, x) or (y, x), got shape {data.shape}")
    if (variance is None) == (weights is None):
        raise SchemaError("give weights= (inverse variance) or variance=, one of them")
    shape = data.shape

    def full(name, a, dt):
        a = np.asarray(a, dt)
        if a.ndim == 2:
            a = np.broadcast_to(a, shape)
        check_shape(names[name], a, shape, names["data"])
        return a

    masked = full("mask", mask, bool) if mask is not None else np.zeros(shape, bool)
    if variance is not None:
        var = full("variance", variance, np.float64)
        check_variance(var, bands, masked, names["variance"])
        with np.errstate(divide="ignore", invalid="ignore"):
            w = np.where(masked | ~(var > 0), 0.0, 1.0 / var)
    else:
        w = np.where(masked, 0.0, full("weights", weights, np.float64))
    check_weights(w, bands, names["variance" if variance is not None else "weights"], dtype)  # one pass for both
    w = mask_sentinel_weights(w)
    check_data(data, w > 0, bands, names["data"], dtype)
    return w


def mask_sentinel_weights(weights: np.ndarray) -> np.ndarray:
    """Weights with those below :data:`MASK_WEIGHT_RATIO` of their band's median set to 0."""
    out = np.array(weights, np.float64)
    for w in out:
        good = w[w > 0]
        if good.size:
            w[w < MASK_WEIGHT_RATIO * np.median(good)] = 0.0
    return out
