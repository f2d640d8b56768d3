"""Spectra by non-negative least squares: the model is linear in them for fixed morphologies."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..model.observation import Observation
from ..model.parameter import is_parameter, with_value
from ..model.scene import Scene
from ..model.source import Background
from ..ops.jit import compiled, platform, to_device, to_devices
from ..render.observe import prepare, render_observed
from ..render.stamps import has_stamps, observed_stamps
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
        sol = bounded_lstsq(a, y, np.array(lo))
        floor = SPECTRUM_FLOOR * max(sol[: len(live)].max(), 1e-12)
        spectra[live, b] = np.maximum(sol[: len(live)], floor)
        if skies:
            sky[b] = sol[-1]
    levels = np.zeros((len(skies), nb))
    levels[:1] = sky  # the first Background takes the fitted level (this observation's bands), others 0
    return with_spectra(scene, comps, spectra, skies, levels)


def bounded_lstsq(a, y, lower) -> np.ndarray:
    """``argmin |a x - y|^2`` subject to ``x >= lower``, for a tall sparse ``a`` with few columns.

    Solved on the square root of the normal equations, ``r = sqrt(L) V^T`` from the eigenvectors
    of ``a^T a`` (``|r x - t|^2`` equals the original objective up to a constant): a bounded
    problem of (columns x columns) instead of one over every pixel, which iterative sparse
    solvers took seconds for on a survey region. Directions the data do not constrain
    (eigenvalues below 1e-12 of the largest) get no pull.
    """
    from scipy.optimize import lsq_linear

    normal = np.asarray((a.T @ a).toarray() if hasattr(a, "toarray") else a.T @ a, np.float64)
    b = np.asarray(a.T @ y, np.float64).ravel()
    lam, vec = np.linalg.eigh(normal)
    keep = lam > 1e-12 * max(lam.max(), 0.0)
    root = np.sqrt(np.where(keep, lam, 0.0))
    r = root[:, None] * vec.T
    t = np.where(keep, (vec.T @ b) / np.where(keep, root, 1.0), 0.0)
    if np.all(np.isneginf(lower)):
        return np.linalg.lstsq(r, t, rcond=None)[0]
    return lsq_linear(r, t, bounds=(lower, np.inf), method="bvls").x


def flux_scale(component) -> float:
    """A component's flux per unit spectrum: 1 for profiles (normalized), the image's sum for a
    free form (its pixels carry the scale)."""
    m = component.morphology
    return float(np.sum(m.image(np))) if hasattr(m, "array") else 1.0


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
    scale = np.array([flux_scale(scene.sources[i].components[j]) for i, j in live])
    for a, b in zip(matrices, band_idx, strict=True):
        normal = (a.T @ a).toarray()
        cov = np.linalg.pinv(normal, hermitian=True)
        unconstrained = np.diag(normal)[: len(live)] <= 0
        for i in np.unique(owner):
            idx = np.flatnonzero(owner == i)
            var = scale[idx] @ cov[np.ix_(idx, idx)] @ scale[idx]
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
    live = [c for c, ij in enumerate(comps) if ij in column]
    core, (renderer,) = prepare(scene, [observation])
    if has_stamps(renderer):
        images = _stamp_images(core, renderer, [comps[c] for c in live], (ny, nx))
    else:
        # every spectrum and sky at 0: the renders light the components of one slot at a time
        dark, (renderer,) = prepare(
            with_spectra(scene, comps, np.zeros((len(comps), nb)), skies, np.zeros((len(skies), nb))), [observation]
        )
        images = _unit_images_packed(scene, observation, dark, renderer, comps, live, data.shape)
    rows = [[] for _ in range(nbo)]
    for ij, (img, (y0, _, x0, _)) in images.items():
        for k in range(nbo):
            sub = img[k]
            if sub.size == 0:  # the source's box lies outside this observation
                continue
            yy, xx = np.nonzero(np.abs(sub) > 1e-7 * np.abs(sub).max())
            nz = (yy + y0) * nx + (xx + x0)
            rows[k].append((nz, np.full(nz.size, column[ij]), sub[yy, xx]))
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


def _stamp_images(core, renderer, comps, shape) -> dict:
    """(source, component) -> (unit image cut to the observation (bands, h, w), its rectangle
    (y0, y1, x0, x1)): one stamp each (:func:`~scarlet2.render.stamps.observed_stamps`)."""
    ny, nx = shape
    out = {}
    for ij, (stamp, (y0, x0)) in observed_stamps(core, renderer, comps).items():
        h, w = stamp.shape[-2:]
        cy0, cy1, cx0, cx1 = max(y0, 0), min(y0 + h, ny), max(x0, 0), min(x0 + w, nx)
        out[ij] = (stamp[:, cy0 - y0 : max(cy1, cy0) - y0, cx0 - x0 : max(cx1, cx0) - x0], (cy0, cy1, cx0, cx1))
    return out


def _unit_images_packed(scene, observation, dark, renderer, comps, live, shape) -> dict:
    """:func:`_stamp_images` for observations on other grids: whole renders of several
    components whose footprints do not touch, cut to each footprint."""
    rects = _footprints(scene, observation, comps, live)
    slots = _pack(live, rects)
    render_batch = compiled(_unit_images, platform(renderer.data))
    batch = unit_image_batch(shape)
    out = {}
    for start in range(0, len(slots), batch):
        masks = np.zeros((batch, len(comps)), np.float32)  # past the last slot: all dark, ignored
        for row, slot in enumerate(slots[start : start + batch]):
            masks[row, slot] = 1.0
        images = np.asarray(render_batch(dark, renderer, tuple(comps), to_device(masks, renderer.data.dtype)))
        for slot, img in zip(slots[start : start + batch], images, strict=False):
            for c in slot:
                y0, y1, x0, x1 = rects[c]
                out[comps[c]] = (np.asarray(img[:, y0:y1, x0:x1], np.float64), rects[c])
    return out


#: Slots of unit-spectrum components rendered per compiled call in :func:`solve_linear_spectra`:
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


def _footprints(scene, observation, comps, live):
    """Observation pixels ``(y0, y1, x0, x1)`` that can hold light of each live component (index
    into ``comps`` -> rectangle): its source's box grown by the PSF's reach where the observation
    is on the frame's grid (the convolved box has that support), the whole image elsewhere."""
    from ..render.geometry import grid_offset, psf_reach

    ny, nx = observation.data.shape[-2:]
    offset = grid_offset(observation, scene.frame)
    if offset is None:
        return {c: (0, ny, 0, nx) for c in live}
    ry, rx = psf_reach(observation, scene.frame)
    rects = {}
    for c in live:
        src = scene.sources[comps[c][0]]
        oy, ox = np.asarray(src.origin, int) - np.asarray(offset)
        hy, hx = src.box[0] // 2 + ry + 1, src.box[1] // 2 + rx + 1
        rects[c] = (max(oy - hy, 0), min(oy + hy + 1, ny), max(ox - hx, 0), min(ox + hx + 1, nx))
    return rects


def _pack(live, rects) -> list[list[int]]:
    """Components in slots whose footprints do not touch (first fit): one render per slot gives
    each member's image exactly, since the renders are linear and the footprints disjoint."""
    slots, taken = [], []
    for c in live:
        y0, y1, x0, x1 = rects[c]
        for slot, boxes in zip(slots, taken, strict=True):
            if all(y1 <= b0 or b1 <= y0 or x1 <= a0 or a1 <= x0 for b0, b1, a0, a1 in boxes):
                slot.append(c)
                boxes.append(rects[c])
                break
        else:
            slots.append([c])
            taken.append([rects[c]])
    return slots


def _unit_images(dark, renderer, comps, masks):
    """Observed images of the components lit by each row of ``masks`` (1 = unit spectrum, 0 =
    dark; traced, ``dark`` has every spectrum at 0), rendered one after another on the device."""

    def lit(on):
        values = [jnp.ones_like(dark.sources[i].components[j].spectrum.value) * on[c] for c, (i, j) in enumerate(comps)]
        paths = lambda s: [s.sources[i].components[j].spectrum.value for i, j in comps]  # noqa: E731
        return render_observed(eqx.tree_at(paths, dark, values), renderer)

    return jax.lax.map(lit, masks)


def with_spectra(scene, comps, spectra, skies, levels):
    """``scene`` with the spectra of components ``comps`` ((source, component) pairs) and the
    levels of the Backgrounds ``skies`` (source indices) replaced; structure unchanged."""

    params = [scene.sources[i].components[j].spectrum for i, j in comps]
    params += [scene.sources[i].spectrum for i in skies]
    values = to_devices([*spectra, *levels], [p.value.dtype for p in params])
    new = {id(p): with_value(p, v) for p, v in zip(params, values, strict=True)}
    if len(new) < len(params):  # one Parameter object in two places: set each place
        sources = eqx.tree_at(
            lambda ss: [ss[i].components[j].spectrum.value for i, j in comps] + [ss[i].spectrum.value for i in skies],
            list(scene.sources),
            values,
        )
        return Scene(scene.frame, sources)
    # one walk over the scene's Parameters (tree_at over every spectrum's path took ~60 ms)
    leaves, treedef = jax.tree.flatten(list(scene.sources), is_leaf=is_parameter)
    leaves = [new.get(id(x), x) if is_parameter(x) else x for x in leaves]
    return Scene(scene.frame, jax.tree.unflatten(treedef, leaves))
