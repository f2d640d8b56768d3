"""Observations: data, inverse-variance weights, PSF, bands and WCS, checked on the way in."""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, DTypeLike

from ..errors import SchemaError
from ..ops.jit import to_device
from .checks import check_bands, observation_weights, recentre_psf
from .frame import celestial_wcs
from .psf import PSF, ArrayPSF


class Observation(eqx.Module):
    """Images of one instrument: on the model frame's pixel grid, or on any other celestial WCS
    (then rendered by resampling, :mod:`scarlet2.render.resample`).

    Parameters
    ----------
    images
        (n_bands, ny, nx) data; may be NaN where the weight is 0.
    weights
        Inverse variances, same shape (or one (ny, nx) plane for all bands); 0 masks a pixel.
    psf
        :class:`~scarlet2.ArrayPSF` or (band, h, w) / (h, w) images (centred on pixel
        (h // 2, w // 2), normalized here to unit sum), or an analytic PSF, at this
        observation's own pixel scale. An image whose centroid is up to
        :data:`~scarlet2.model.checks.PSF_CENTRE_TOLERANCE` px off its central pixel is recentred,
        and the shift applied is kept in ``psf_shift``.
    bands
        Band names, a subset of the frame's bands.
    wcs
        Optional astropy WCS.
    variance
        Instead of ``weights``: variances, same shape (or one plane); ``inf`` masks a pixel,
        values <= 0 or NaN raise.
    dtype
        Computation dtype (default float32).
    name
        What error messages and results call this observation (e.g. ``"hsc"``).

    Raises
    ------
    SchemaError
        A ``ValueError``, naming the band and the number of pixels, for the rules of
        :mod:`scarlet2.model.checks` (shared with :func:`scarlet2.validate`): NaN/inf data in
        unmasked pixels, negative or non-finite weights, variance <= 0 or NaN, values beyond the
        dtype's range, a non-finite or off-centre PSF, disagreeing shapes, a band list of the
        wrong length or with repeated names.
    """

    data: Array
    weights: Array
    psf: PSF
    bands: tuple[str, ...] = eqx.field(static=True)
    wcs: Any = eqx.field(static=True, default=None)
    name: str | None = eqx.field(static=True, default=None)
    psf_shift: tuple = eqx.field(static=True, default=())

    def __init__(
        self,
        images: ArrayLike,
        weights: ArrayLike | None = None,
        psf: PSF | ArrayLike | None = None,
        bands=None,
        wcs=None,
        variance: ArrayLike | None = None,
        dtype: DTypeLike = jnp.float32,
        name: str | None = None,
    ):
        data = np.asarray(images, dtype=np.float64)
        if data.ndim == 2:
            data = data[None]
        if data.ndim != 3:
            raise SchemaError(f"images must be (band, y, x) or (y, x), got shape {data.shape}")
        bands = check_bands(bands if bands is not None else range(data.shape[0]), data.shape[0])
        w = observation_weights(data, bands, variance=variance, weights=weights, dtype=dtype)
        if psf is None:
            raise SchemaError("An Observation needs a psf")
        shift = ()
        if not isinstance(psf, PSF) or isinstance(psf, ArrayPSF):
            images = psf.array if isinstance(psf, ArrayPSF) else psf
            images, shift = recentre_psf(np.asarray(images, np.float64), bands)
            psf = ArrayPSF(images)
        self.data = to_device(np.where(w > 0, np.nan_to_num(data), 0.0), dtype)
        self.weights = to_device(w, dtype)
        self.psf = psf
        self.bands = bands
        self.wcs = celestial_wcs(wcs, where=f"{name or 'observation'} wcs")
        self.name = None if name is None else str(name)
        self.psf_shift = shift

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.data.shape)

    @property
    def psf_shape(self) -> tuple[int, int]:
        return tuple(self.psf.default_shape())

    def psf_images(self) -> Array:
        return self.psf.image(self.psf_shape, n_bands=len(self.bands))

    def noise_rms(self) -> np.ndarray:
        """Per-band median noise rms over unmasked pixels (inf for a band with none)."""
        w = np.asarray(self.weights)
        return np.array([np.median(1 / np.sqrt(wb[wb > 0])) if np.any(wb > 0) else np.inf for wb in w])

    @property
    def label(self) -> str:
        """How messages name this observation: its ``name``, else its bands."""
        return repr(self.name) if self.name else f"with bands {list(self.bands)}"

    def n_pixels(self) -> int:
        return int(np.sum(np.asarray(self.weights) > 0))
