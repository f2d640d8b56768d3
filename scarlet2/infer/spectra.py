"""Spectra by non-negative least squares: the model is linear in them for fixed morphologies."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..model.observation import Observation
from ..model.scene import Scene
from ..model.source import Background
from ..ops.jit import compiled, platform, to_device
from ..render.observe import prepare, render_observed
from .defaults import SPECTRUM_FLOOR


def solve_linear_spectra(scene: Scene, observation: Observation, hold=()) -> Scene:
    """Scene with every spectrum set to the per-band non-negative least-squares solution for
    the current morphologies (sky levels unconstrained in sign).

    Renders each component once through the observation (the scene with that component's
    spectrum set to 1 and every other one to 0: one compiled program for all components) and
    keeps the pixels it reaches in a sparse design matrix (memory: one frame plus the
    footprints). Sources whose indices are in ``hold`` keep their spectra and stay out of the
    solution (their light is not subtracted: hold only sources that have none).
    """
    from scipy.optimize import lsq_linear

    design = _design(scene, observation, hold)
    if design is None:
        return scene
    comps, skies, band_idx, matrices, targets = design
    nb = scene.frame.n_bands
    spectra = np.array([np.asarray(scene.sources[i].components[j].spectrum.value, np.float64) for i, j in comps])
    sky = np.array(scene.sources[skies[0]].spectrum.value, np.float64) if skies else np.zeros(nb)
    live = [c for c, (i, _) in enumerate(comps) if i not in hold]
    for a, y, b in zip(matrices, targets, band_idx, strict=True):
        lo = [0.0] * len(live) + ([-np.inf] if skies else [])
        sol = lsq_linear(a, y, bounds=(lo, np.inf), lsmr_tol="auto").x
        floor = SPECTRUM_FLOOR * max(sol[: len(live)].max(), 1e-12)
        spectra[live, b] = np.maximum(sol[: len(live)], floor)
        if skies:
            sky[b] = sol[-1]
    levels = np.zeros((len(skies), nb))
    levels[:1] = sky  # the first Background takes the fitted level (this observation's bands), others 0
    return with_spectra(scene, comps, spectra, skies, levels)


def linear_flux_errors(scene: Scene, observation: Observation, hold=()) -> np.ndarray:
    """(n_sources, frame bands) 1-sigma errors of each source's total flux, conditional on the
    morphologies: the inverse of the per-band normal matrix of the linear model (components and
    sky level), summed over each source's components. NaN for sources in ``hold``, for skies
    and for bands the observation lacks; ``inf`` where the data do not constrain a flux.

    Far cheaper than the full Fisher matrix (one render per component, one small inverse per
    band); it ignores the covariance of fluxes with shapes and positions, so it is a lower bound
    on the marginal error.
    """
    out = np.full((len(scene.sources), scene.frame.n_bands), np.nan)
    design = _design(scene, observation, hold)
    if design is None:
        return out
    comps, _, band_idx, matrices, _ = design
    live = [(i, j) for i, j in comps if i not in hold]
    owner = np.array([i for i, _ in live])
    for a, b in zip(matrices, band_idx, strict=True):
        normal = (a.T @ a).toarray()
        cov = np.linalg.pinv(normal, hermitian=True)
        unconstrained = np.diag(normal)[: len(live)] <= 0
        for i in np.unique(owner):
            idx = np.flatnonzero(owner == i)
            var = cov[np.ix_(idx, idx)].sum()
            out[i, b] = np.inf if np.any(unconstrained[idx]) else np.sqrt(max(var, 0.0))
    return out


def _design(scene, observation, hold=()):
    """The weighted linear model of one observation: (components, skies, band indices, one
    sparse (pixels, live components [+ sky]) matrix per band, weighted data per band), or None
    without components. Held sources' components are rendered (the program is the scene's) but
    get no column."""
    from scipy import sparse  # heavy to import: only when initializing

    comps = [(i, j) for i, s in enumerate(scene.sources) for j in range(len(getattr(s, "components", ())))]
    skies = [i for i, s in enumerate(scene.sources) if isinstance(s, Background)]
    if not comps:
        return None
    nb = scene.frame.n_bands
    band_idx = [scene.frame.bands.index(b) for b in observation.bands]
    data = np.asarray(observation.data, np.float64)
    sw = np.sqrt(np.asarray(observation.weights, np.float64))
    nbo, ny, nx = data.shape
    column = {}
    for i, j in comps:
        if i not in hold:
            column[(i, j)] = len(column)
    if not column:
        return None
    rows = [[] for _ in range(nbo)]
    # every spectrum and sky at 0, prepared once; each image sets one component's spectrum to 1
    dark, (renderer,) = prepare(
        with_spectra(scene, comps, np.zeros((len(comps), nb)), skies, np.zeros((len(skies), nb))), [observation]
    )
    render_batch = compiled(_unit_images, platform(renderer.data))
    batch = unit_image_batch(data.shape)
    for start in range(0, len(comps), batch):
        cols = np.arange(start, start + batch)  # past the end: all dark, ignored
        if not any(c < len(comps) and comps[c] in column for c in cols):
            continue
        images = np.asarray(render_batch(dark, renderer, tuple(comps), to_device(cols, np.int32)))
        for c, img in zip(cols, images, strict=True):
            if c >= len(comps) or comps[c] not in column:
                continue
            for k in range(nbo):
                nz = np.flatnonzero(np.abs(img[k]) > 1e-7 * np.abs(img[k]).max())
                rows[k].append((nz, np.full(nz.size, column[comps[c]]), img[k].ravel()[nz].astype(np.float64)))
    ncol = len(column) + (1 if skies else 0)
    matrices, targets = [], []
    for k in range(nbo):
        r = np.concatenate([t[0] for t in rows[k]] + ([np.arange(ny * nx)] if skies else []))
        c = np.concatenate([t[1] for t in rows[k]] + ([np.full(ny * nx, len(column))] if skies else []))
        v = np.concatenate([t[2] for t in rows[k]] + ([np.ones(ny * nx)] if skies else []))
        v = v * sw[k].ravel()[r]
        matrices.append(sparse.csr_matrix((v, (r, c)), shape=(ny * nx, ncol)))
        targets.append(data[k].ravel() * sw[k].ravel())
    return comps, skies, band_idx, matrices, targets


#: Unit-spectrum component images rendered per compiled call in :func:`solve_linear_spectra`:
#: one call per batch (host overhead per call is a walk over the whole scene), and memory of
#: this many frames, not of all components ...
UNIT_IMAGE_BATCH = 8
#: ... and of at most this many bytes of rendered frames (large frames get smaller batches).
UNIT_IMAGE_BYTES = 2**28


def unit_image_batch(shape: tuple[int, int, int]) -> int:
    """Components rendered per call for observations of ``shape`` (bands, y, x): a function of
    the shape only, so one program serves every scene on that grid."""
    frame_bytes = 4 * int(np.prod(shape))
    return int(np.clip(UNIT_IMAGE_BYTES // max(frame_bytes, 1), 1, UNIT_IMAGE_BATCH))


def _unit_images(dark, renderer, comps, cols):
    """Observed images of the components ``comps[col]`` with unit spectra, one per ``col``
    (traced; ``dark`` has every spectrum at 0), rendered one after another on the device."""

    def lit(col):
        on = (jnp.arange(len(comps)) == col).astype(renderer.data.dtype)
        values = [jnp.ones_like(dark.sources[i].components[j].spectrum.value) * on[c] for c, (i, j) in enumerate(comps)]
        paths = lambda s: [s.sources[i].components[j].spectrum.value for i, j in comps]  # noqa: E731
        return render_observed(eqx.tree_at(paths, dark, values), renderer)

    return jax.lax.map(lit, cols)


def with_spectra(scene, comps, spectra, skies, levels):
    """``scene`` with the spectra of components ``comps`` ((source, component) pairs) and the
    levels of the Backgrounds ``skies`` (source indices) replaced; structure unchanged."""

    def set_value(param, value):
        return eqx.tree_at(lambda p: p.value, param, to_device(value, param.value.dtype))

    sources = list(scene.sources)
    for (i, j), spec in zip(comps, spectra, strict=True):
        new = set_value(sources[i].components[j].spectrum, spec)
        sources[i] = eqx.tree_at(lambda s, j=j: s.components[j].spectrum, sources[i], new)
    for i, level in zip(skies, levels, strict=True):
        sources[i] = eqx.tree_at(lambda s: s.spectrum, sources[i], set_value(sources[i].spectrum, level))
    return Scene(scene.frame, sources)
