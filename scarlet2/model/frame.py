"""The model frame: bands, pixel grid, WCS and the narrow model PSF sources are rendered with."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import equinox as eqx
import numpy as np

from ..errors import InputError
from . import grids
from .positions import to_pixel
from .psf import DEFAULT_MODEL_PSF_SIGMA, PSF, GaussianPSF


class Frame(eqx.Module):
    """Model frame.

    Parameters
    ----------
    bands
        Band names, in the order of every spectrum.
    shape
        (ny, nx) pixels.
    wcs
        Optional astropy WCS (celestial, 2-d) of the pixel grid.
    psf
        Model-frame PSF, narrower than every observation's PSF (default ``GaussianPSF()``, sigma 0.7 px,
        for well-sampled data); rendering warns, naming the band, when an observation's PSF is
        narrower (undersampled data need a narrower one).
    """

    bands: tuple[str, ...] = eqx.field(static=True)
    shape: tuple[int, int] = eqx.field(static=True)
    psf: PSF
    wcs: Any = eqx.field(static=True, default=None)

    def __init__(self, bands: Sequence[str], shape: tuple[int, int], wcs=None, psf: PSF | None = None):
        self.bands = tuple(str(b) for b in bands)
        if len(set(self.bands)) != len(self.bands):
            raise InputError(f"Frame bands must be unique, got {self.bands}")
        if len(shape) != 2 or min(shape) < 1:
            raise InputError(f"Frame shape must be (ny, nx) with positive sizes, got {shape}")
        self.shape = (int(shape[0]), int(shape[1]))
        self.psf = psf if psf is not None else GaussianPSF()
        self.wcs = celestial_wcs(wcs)

    @classmethod
    def from_observations(
        cls,
        observations,
        coverage: str = "union",
        pixel_scale: float | None = None,
        psf: PSF | None = None,
    ) -> Frame:
        """The model frame of several observations on their own WCS.

        Parameters
        ----------
        observations
            Observations with celestial WCS (any pixel scale, rotation, distortion, frame).
        coverage
            ``"union"``: every observed pixel is in the frame; ``"intersection"``: only the sky
            that every observation sees (pixels of an observation outside it are not fitted).
        pixel_scale
            Arcseconds. None (default): the finest observation's pixel grid (its projection,
            orientation and pixel scale), extended to the coverage, so that observation is
            rendered without resampling; where its pixels are not square (or skewed), a
            north-up grid at the scale of their finer axis. A number: a north-up TAN grid at
            that scale in ICRS.
        psf
            Model PSF. Default: the widest circular Gaussian of sigma in [0.7,
            :data:`MODEL_PSF_MAX_SIGMA`] frame pixels that the observed PSFs at the frame's
            pixel scale do not exceed at any frequency (:data:`MODEL_PSF_MAX_GAIN`): the wider,
            the less power point sources carry at the frame's Nyquist frequency.

        The bands are the union of the observations' bands, in order of appearance.
        """
        return _frame_from_observations(cls, list(observations), coverage, pixel_scale, psf)

    @property
    def n_bands(self) -> int:
        return len(self.bands)

    def without_wcs(self) -> Frame:
        """Same frame without its WCS: what compiled code sees, so tiles with different WCS
        share one compilation."""
        return Frame(self.bands, self.shape, None, self.psf)

    def to_pixel(self, center) -> np.ndarray:
        """A centre as (y, x) pixels: from an astropy SkyCoord (needs the WCS) or a pixel pair."""
        return to_pixel(center, self.wcs)

    def check_inside(self, yx, what="source"):
        y, x = yx
        ny, nx = self.shape
        if not (-0.5 <= y <= ny - 0.5 and -0.5 <= x <= nx - 0.5):
            raise InputError(f"{what} centre (y={y:.2f}, x={x:.2f}) lies outside the frame of shape {self.shape}")


def celestial_wcs(wcs, where: str = "wcs"):
    """The celestial part of an astropy WCS (None stays None).

    Raises
    ------
    InputError
        ``wcs`` is not an astropy WCS (a header string, a dict), or has no celestial axes
        (LINEAR or spectral axes only), or astropy cannot map its pixels to the sky and back.
    """
    if wcs is None:
        return None
    if not (hasattr(wcs, "celestial") and hasattr(wcs, "pixel_to_world_values")):
        raise InputError(f"{where} must be an astropy.wcs.WCS (e.g. WCS(fits_header)), got {type(wcs).__name__}")
    if not wcs.has_celestial:
        ctype = list(getattr(wcs.wcs, "ctype", []))
        raise InputError(f"{where} has no celestial axes (CTYPE {ctype}); give a sky WCS (e.g. RA---TAN, DEC--TAN)")
    wcs = wcs.celestial
    try:
        ra, dec = wcs.pixel_to_world_values(0.0, 0.0)
        x, y = wcs.world_to_pixel_values(ra, dec)
        ok = bool(np.isfinite([ra, dec, x, y]).all() and abs(x) < 1e-2 and abs(y) < 1e-2)
    except Exception:  # wcslib raises several types for degenerate transformations
        ok = False
    if not ok:
        raise InputError(f"{where}: astropy cannot map pixel (0, 0) to the sky and back (a singular or broken WCS)")
    return wcs


def _frame_from_observations(cls, observations, coverage, pixel_scale, psf):
    if coverage not in ("union", "intersection"):
        raise InputError(f"coverage must be 'union' or 'intersection', got {coverage!r}")
    if not observations:
        raise InputError("Frame.from_observations needs at least one observation")
    for k, o in enumerate(observations):
        if getattr(o, "wcs", None) is None:
            raise InputError(f"observation {k} ({o.label}) has no WCS: a frame on the sky needs one for each")
    bands = list(dict.fromkeys(b for o in observations for b in o.bands))
    scales = [grids.pixel_scale(o.wcs) for o in observations]
    finest = observations[int(np.argmin(scales))].wcs
    if pixel_scale is None and grids.is_square(finest):
        ref = finest
    elif pixel_scale is None:  # non-square or skewed pixels: a square grid at their finer axis
        ref = _north_up(observations, float(np.linalg.svd(finest.pixel_scale_matrix, compute_uv=False)[-1] * 3600))
    else:
        if not float(pixel_scale) > 0:
            raise InputError(f"pixel_scale must be a positive number of arcseconds, got {pixel_scale}")
        ref = _north_up(observations, float(pixel_scale))
    boxes = [grids.footprint(o.data.shape[-2:], o.wcs, ref, f"observation {o.label}") for o in observations]
    lows = np.array([np.floor(lo + 0.5 + 1e-6) for lo, _ in boxes])
    highs = np.array([np.ceil(hi - 0.5 - 1e-6) for _, hi in boxes])
    if coverage == "union":
        lo, hi = lows.min(axis=0), highs.max(axis=0)
    else:
        lo, hi = lows.max(axis=0), highs.min(axis=0)
    if np.any(hi < lo):
        raise InputError(f"the observations {[o.label for o in observations]} have no sky in common")
    for o, (blo, bhi) in zip(observations, boxes, strict=True):
        if np.any(bhi < lo - 0.5) or np.any(blo > hi + 0.5):
            raise InputError(f"observation {o.label} does not overlap the frame")
    shape = (int(hi[0] - lo[0] + 1), int(hi[1] - lo[1] + 1))
    if psf is None:
        psf = GaussianPSF(_model_psf_sigma(observations, ref))
    return cls(bands, shape, wcs=_shifted(ref, int(lo[0]), int(lo[1])), psf=psf)


#: The default model PSF of :meth:`Frame.from_observations` is the widest circular Gaussian
#: up to this sigma (frame pixels) ...
MODEL_PSF_MAX_SIGMA = 1.0
#: ... whose transfer function no observed PSF on the frame's pixel scale exceeds by more than
#: this factor at any frequency (the difference kernel would deconvolve).
MODEL_PSF_MAX_GAIN = 1.5


def _model_psf_sigma(observations, ref) -> float:
    """Sigma (frame pixels) of the default model PSF (see :meth:`Frame.from_observations`)."""
    ref_scale = grids.pixel_scale(ref)
    stamps = [
        np.asarray(p, np.float64)
        for o in observations
        if abs(grids.pixel_scale(o.wcs) / ref_scale - 1) < 0.01 and getattr(o.psf, "array", None) is not None
        for p in np.asarray(o.psf.array)
    ]
    for sigma in np.arange(MODEL_PSF_MAX_SIGMA, DEFAULT_MODEL_PSF_SIGMA - 1e-9, -0.05):
        if all(_gain(p, sigma) <= MODEL_PSF_MAX_GAIN for p in stamps):
            return float(sigma)
    return DEFAULT_MODEL_PSF_SIGMA


def _gain(stamp, sigma) -> float:
    """Largest ratio of a PSF stamp's transfer to a pixelized Gaussian's of ``sigma``."""
    ky = np.fft.fftfreq(stamp.shape[0])[:, None]
    kx = np.fft.rfftfreq(stamp.shape[1])[None, :]
    model = np.exp(-2 * np.pi**2 * sigma**2 * (ky**2 + kx**2)) * np.sinc(ky) * np.sinc(kx)
    return float(np.max(np.abs(np.fft.rfft2(stamp / stamp.sum())) / np.maximum(model, 1e-300)))


def _shifted(wcs, oy: int, ox: int):
    """``wcs`` with pixel (oy, ox) as its new pixel (0, 0) (SIP reference point moved along)."""
    out = wcs.deepcopy()
    out.wcs.crpix = out.wcs.crpix - np.array([ox, oy], np.float64)
    if out.sip is not None:
        from astropy.wcs import Sip

        s = out.sip
        out.sip = Sip(s.a, s.b, s.ap, s.bp, np.asarray(s.crpix) - np.array([ox, oy], np.float64))
    out.wcs.set()
    return out


def _north_up(observations, scale: float):
    """A north-up TAN WCS in ICRS at ``scale`` arcsec/pixel, centred on the observations."""
    from astropy.coordinates import SkyCoord
    from astropy.wcs import WCS

    pts = []
    for o in observations:
        sky = o.wcs.pixel_to_world(*grids.boundary(o.data.shape[-2:])[:, ::-1].T).icrs
        pts.append(sky.cartesian.xyz.value.T)
    mean = np.concatenate(pts).mean(axis=0)
    centre = SkyCoord(*mean, representation_type="cartesian", frame="icrs")
    centre = SkyCoord(centre.spherical.lon, centre.spherical.lat, frame="icrs")
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.radesys = "ICRS"
    w.wcs.crval = [centre.ra.deg, centre.dec.deg]
    w.wcs.crpix = [1.0, 1.0]
    w.wcs.cdelt = [-scale / 3600, scale / 3600]
    w.wcs.set()
    return w
