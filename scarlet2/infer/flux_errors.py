"""Flux errors marginal over shapes and positions, for scenes too large for a dense Fisher matrix.

A survey region holds tens of sources and hundreds of free parameters: the full Fisher matrix
(:mod:`scarlet2.infer.uncertainty`) would take a render per parameter. Its flux block alone (the
linear model's normal matrix, :func:`~scarlet2.infer.spectra.linear_flux_errors`) is cheap but
conditional on the shapes, and a galaxy's flux trades off against its size and index: on
simulated fields those errors were 1.6x too small (MAD of the pulls).

Here the amplitudes' block is that normal matrix (with the neighbours and the sky); each
source's shape and position derivatives are forward differences cut to its footprint, where
its model reaches :data:`LIGHT_LEVEL` noise sigmas. On the frame's pixel grid they come from
the boxes alone: a box depends on its own source's parameters only, so one render of every
box moves one entry of every source, and each difference goes through the difference kernel
as a stamp (:mod:`scarlet2.render.stamps`): as many box renders as the most entries of any
source, no canvas. On other grids, whole renders each move one entry of several sources whose
footprints do not touch. Blocks between touching sources come from their overlaps, so the
matrix is the full Fisher information (up to the differences' accuracy); its inverse gives
the fluxes' marginal errors.
"""

from __future__ import annotations

import re

import jax
import numpy as np
from jax.flatten_util import ravel_pytree

from ..model.parameter import free_slots, parameter_names, set_values
from ..model.scene import Scene
from ..ops.jit import compiled, platform, to_device
from ..render.canvas import _groups
from ..render.observe import prepare
from ..render.stamps import convolve_stamps, has_stamps, unit_boxes
from .spectra import _design, _footprints, flux_scale
from .uncertainty import FD_STEP, _inside, covariance_from_hessian, whitened_model

#: Parameters with more entries than this (free-form pixel arrays) are held at their values:
#: a render per pixel is what the full Fisher matrix would cost.
MAX_SHAPE_SLOT = 16

_COMPONENT_SPECTRUM = re.compile(r"^sources\[\d+\]\.components\[\d+\]\.spectrum$")
_SOURCE = re.compile(r"^sources\[(\d+)\]\.")


def marginal_flux_errors(scene: Scene, observation, hold=()) -> np.ndarray:
    """(n_sources, frame bands) 1-sigma errors of each source's total flux from the inverse
    Fisher information over the amplitudes of every component and sky and every source's shape
    and position (free-form pixels held, :data:`MAX_SHAPE_SLOT`). NaN for sources in ``hold``,
    for skies and for bands the observation lacks; ``inf`` where the data do not constrain a flux
    (as :func:`~scarlet2.infer.uncertainty.covariance_from_hessian` decides). One observation."""
    out = np.full((len(scene.sources), scene.frame.n_bands), np.nan)
    design = _design(scene, observation, hold)
    if design is None:
        return out
    comps, _, band_idx, matrices, _ = design
    live = [c for c, (i, _) in enumerate(comps) if i not in hold]
    owner = np.array([comps[c][0] for c in live])
    scale = np.array([flux_scale(scene.sources[i].components[j]) for i, j in (comps[c] for c in live)])
    ncol, nbo = matrices[0].shape[1], len(matrices)
    core, renderers = prepare(scene, [observation])
    entries, x, steps, width = _shape_entries(core, hold)
    rects = _source_rects(scene, observation, comps, live)
    rects = _light_rects(scene, comps, live, band_idx, matrices, rects, observation.data.shape[-1])
    jacobians = _shape_jacobians(core, renderers, observation, entries, x, steps, rects, width)
    info = _information(matrices, jacobians, rects, observation.data.shape[-1])
    cov, _, cov_low = covariance_from_hessian(info, rtol=100 * np.finfo(np.float32).eps, floored=True)
    unconstrained = np.diag(info)[: nbo * ncol] <= 0
    for i in np.unique(owner):
        for k, b in enumerate(band_idx):
            mine = np.flatnonzero(owner == i)
            idx, a = k * ncol + mine, scale[mine]  # flux = sum of scale x amplitude
            var = a @ cov[np.ix_(idx, idx)] @ a
            low = a @ cov_low[np.ix_(idx, idx)] @ a
            bad = np.any(unconstrained[idx]) or not np.isfinite(var) or low > 0.5 * var
            out[i, b] = np.inf if bad else np.sqrt(max(var, 0.0))
    return out


def _information(matrices, jacobians, rects, nx) -> np.ndarray:
    """The Fisher information over [amplitudes by band, then each source's shape entries], from
    the whitened design ``matrices`` (one per band) and the sources' footprint ``jacobians``."""
    ncol, nbo = matrices[0].shape[1], len(matrices)
    first, start = {}, nbo * ncol
    for i, jac in jacobians.items():
        first[i], start = start, start + len(jac)
    info = np.zeros((start, start))
    for k, a in enumerate(matrices):
        info[k * ncol : (k + 1) * ncol, k * ncol : (k + 1) * ncol] = (a.T @ a).toarray()
    for i, jac in jacobians.items():
        y0, y1, x0, x1 = rects[i]
        si = slice(first[i], first[i] + len(jac))
        rows = ((np.arange(y0, y1)[:, None] * nx) + np.arange(x0, x1)[None, :]).ravel()
        for k, a in enumerate(matrices):
            info[k * ncol : (k + 1) * ncol, si] = a[rows].T @ jac[:, k].reshape(len(jac), -1).T
        info[si, : nbo * ncol] = info[: nbo * ncol, si].T
        for j, other in jacobians.items():  # shape against shape where footprints overlap
            overlap = _overlap(rects[i], rects[j])
            if overlap is None or first[j] < first[i]:
                continue
            block = _product(jac, rects[i], other, rects[j], overlap)
            sj = slice(first[j], first[j] + len(other))
            info[si, sj] = block
            info[sj, si] = block.T
    return info


def _shape_jacobians(core, renderers, observation, entries, x, steps, rects, width) -> dict[int, np.ndarray]:
    """Each source's whitened model derivatives (entry, band, y, x) within its footprint, from
    forward differences: one render moves an entry of each of several sources whose footprints
    do not touch (:func:`_schedule`), ``width`` renders per compiled call."""
    if not entries:
        return {}
    if has_stamps(renderers[0]):
        return _stamp_jacobians(core, renderers[0], observation, entries, x, steps, rects, width)
    differences = compiled(_differences, platform(renderers[0].data))
    plan = _schedule(entries, rects)
    n_renders = 1 + max(r for rows in plan.values() for r in rows)
    out = {i: np.zeros((len(entries[i]), *_shape(rects[i], observation)), np.float32) for i in entries}
    for start in range(0, n_renders, width):
        offsets = np.zeros((width, x.size), x.dtype)
        for i, rows in plan.items():
            for k, r in enumerate(rows):
                if start <= r < start + width:
                    offsets[r - start, entries[i][k]] = steps[entries[i][k]]
        d = np.asarray(differences(to_device(x, x.dtype), to_device(offsets, x.dtype), core, renderers))
        d = d.reshape(width, *observation.data.shape)
        for i, rows in plan.items():
            y0, y1, x0, x1 = rects[i]
            for k, r in enumerate(rows):
                if start <= r < start + width:
                    out[i][k] = d[r - start, :, y0:y1, x0:x1] / steps[entries[i][k]]
    return dict(sorted(out.items()))


def _stamp_jacobians(core, renderer, observation, entries, x, steps, rects, width) -> dict[int, np.ndarray]:
    """:func:`_shape_jacobians` for an observation on the frame's grid, from the boxes alone: a
    source's box depends on its own parameters only, so each difference moves one entry of
    every source at once (``width`` box renders, no canvas), and each derivative is its box
    difference times its spectra through the difference kernel (:func:`convolve_stamps`)."""
    offsets = np.zeros((width, x.size), x.dtype)
    for ents in entries.values():
        for k, e in enumerate(ents):
            offsets[k, e] = steps[e]
    diffs = compiled(_box_differences, platform(renderer.data))(
        to_device(x, x.dtype), to_device(offsets, x.dtype), core, renderer.data.dtype
    )
    where = {}  # (source, component) -> (group, member): the groups' layout in the boxes
    for g, members in enumerate(_groups(core).values()):
        for m, (c, _) in enumerate(members):
            where[id(c)] = (g, m)
    diffs = [(np.asarray(d, np.float64), np.asarray(corners)) for d, corners in diffs]
    bands = list(renderer.band_index)
    sw = np.sqrt(np.asarray(observation.weights, np.float64))
    ny, nx = sw.shape[-2:]
    # every (source, component)'s box differences, stacked by box shape: one convolution (one
    # kernel transform) per shape, each difference transformed once and scaled by its spectrum
    by_shape: dict = {}
    for i, ents in entries.items():
        step = np.array([steps[e] for e in ents])[:, None, None, None]
        for c in core.sources[i].components:  # a free form keeps its own box, a profile its group's
            g, m = where[id(c)]
            spec = np.asarray(c.spectrum.value, np.float64)[bands]
            images = diffs[g][0][: len(ents), m][:, None] / step
            by_shape.setdefault(images.shape[-2:], []).append((i, images, diffs[g][1][m], spec))
    jacs = {i: np.zeros((len(ents), sw.shape[0], rects[i][1] - rects[i][0], rects[i][3] - rects[i][2]))
            for i, ents in entries.items()}  # fmt: skip
    for parts in by_shape.values():
        corners = np.concatenate([np.repeat(corner[None], len(images), 0) for _, images, corner, _ in parts])
        spectra = np.concatenate([np.repeat(spec[None], len(images), 0) for _, images, _, spec in parts])
        images = np.concatenate([images for _, images, _, _ in parts])
        stamps, tops = convolve_stamps(images, corners, renderer, scale=spectra)
        h, w = stamps.shape[-2:]
        row = 0
        for i, images, _, _ in parts:
            (y0, y1, x0, x1), top, n = rects[i], tops[row], len(images)
            oy0, oy1 = max(y0, top[0], 0), min(y1, top[0] + h, ny)
            ox0, ox1 = max(x0, top[1], 0), min(x1, top[1] + w, nx)
            if oy0 < oy1 and ox0 < ox1:
                jacs[i][:, :, oy0 - y0 : oy1 - y0, ox0 - x0 : ox1 - x0] += stamps[
                    row : row + n, :, oy0 - top[0] : oy1 - top[0], ox0 - top[1] : ox1 - top[1]
                ]
            row += n
    out = {}
    for i, jac in jacs.items():
        # whitened: times sqrt(weight) over the footprint (0 beyond the observation)
        y0, y1, x0, x1 = rects[i]
        cy0, cy1, cx0, cx1 = max(y0, 0), min(y1, ny), max(x0, 0), min(x1, nx)
        jac[:, :, cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0] *= sw[None, :, cy0:cy1, cx0:cx1]
        out[i] = jac.astype(np.float32)
    return dict(sorted(out.items()))


def _box_differences(x, offsets, scene, dtype):
    """Per group of the renderer (:func:`~scarlet2.render.canvas._groups`): the unit-flux box
    images at ``x + offsets[k]`` minus at ``x`` (rows, members, h, w), and the boxes' corners."""
    _, unravel = ravel_pytree([p.value for p, _ in free_slots(scene)])

    def boxes(v):
        return unit_boxes(set_values(scene, unravel(v)), dtype)

    at_x = boxes(x)
    moved = jax.lax.map(lambda off: [b[0] - a[0] for b, a in zip(boxes(x + off), at_x, strict=True)], offsets)
    return [(d, corners) for d, (_, corners) in zip(moved, at_x, strict=True)]


def _shape(rect, observation):
    return (observation.data.shape[0], rect[1] - rect[0], rect[3] - rect[2])


def _schedule(entries, rects) -> dict[int, list[int]]:
    """Source -> the render that moves each of its entries: every render moves at most one entry
    of a source and never two sources whose footprints touch, so each source's derivative is
    its footprint's part of the render. Greedy, sources with most entries first: about as many
    renders as the most entries of mutually touching sources, not (colours x entries)."""
    used: list[list] = []  # per render: the footprints it already moves
    plan = {}
    for i in sorted(entries, key=lambda i: (-len(entries[i]), i)):
        rows, r = [], 0
        while len(rows) < len(entries[i]):
            if r == len(used):
                used.append([])
            if not _overlap_any(rects[i], used[r]):
                rows.append(r)
                used[r].append(rects[i])
            r += 1
        plan[i] = rows
    return plan


def _overlap_any(rect, others) -> bool:
    y0, y1, x0, x1 = rect
    return any(not (y1 <= b0 or b1 <= y0 or x1 <= a0 or a1 <= x0) for b0, b1, a0, a1 in others)


def _overlap(r, q):
    y0, y1, x0, x1 = max(r[0], q[0]), min(r[1], q[1]), max(r[2], q[2]), min(r[3], q[3])
    return (y0, y1, x0, x1) if y0 < y1 and x0 < x1 else None


def _product(a, ra, b, rb, overlap) -> np.ndarray:
    """``a^T b`` over the pixels both footprints hold (float64 sums of float32 derivatives)."""
    y0, y1, x0, x1 = overlap
    pa = a[:, :, y0 - ra[0] : y1 - ra[0], x0 - ra[2] : x1 - ra[2]].reshape(len(a), -1)
    pb = b[:, :, y0 - rb[0] : y1 - rb[0], x0 - rb[2] : x1 - rb[2]].reshape(len(b), -1)
    return pa.astype(np.float64) @ pb.astype(np.float64).T


def _shape_entries(core, hold):
    """(source -> flat indices of its shape and position entries, flat values, forward steps,
    the most such entries of any source): every free entry of a live source except its
    components' spectra (linear, in the design)."""
    slots = free_slots(core)
    names = parameter_names(core)
    values = [np.asarray(p.value) for p, _ in slots]
    x = np.concatenate([v.ravel() for v in values]) if values else np.zeros(0, np.float32)
    steps = np.zeros(x.size, np.float64)
    entries, counts, start = {}, {}, 0
    for (p, members), v in zip(slots, values, strict=True):
        flat = np.arange(start, start + v.size)
        start += v.size
        owners = {m.group(1) for m in (_SOURCE.match(names[k]) for k in members) if m}
        name = names[members[0]]
        linear = _COMPONENT_SPECTRUM.match(name) or (".components[" not in name and "offset" not in name)
        if v.size > MAX_SHAPE_SLOT or len(owners) != 1 or linear:
            continue  # a free form's pixels, shared between sources, an amplitude or a sky level
        i = int(owners.pop())
        counts[i] = counts.get(i, 0) + v.size
        if i in hold:
            continue
        h = FD_STEP * max(float(np.abs(v).max(initial=0.0)), 1.0)
        for k, j in enumerate(flat):
            moved = v.astype(np.float64).ravel()
            moved[k] += h
            steps[j] = h if _inside(p.constraint, moved.reshape(v.shape)) else -h  # inward at a bound
        entries.setdefault(i, []).extend(flat.tolist())
    # renders per compiled call: the most entries of any source, held ones too (the scene's
    # structure fixes it, so regions of one structure share the program)
    return entries, x, steps, max(counts.values(), default=0)


#: A source's derivatives are kept where its whitened model reaches this many noise sigmas in
#: some band: its box reaches far beyond its light, and renders can move only sources whose
#: kept areas do not touch (pixels below it add < 1e-4 of a typical information entry).
LIGHT_LEVEL = 0.01


def _light_rects(scene, comps, live, band_idx, matrices, rects, nx):
    """Each source's rectangle in ``rects`` cut to the pixels where its model (the design's
    whitened unit images times its spectra) reaches :data:`LIGHT_LEVEL` in some band, grown by
    one pixel; the whole rectangle where it reaches that nowhere."""
    found: dict[int, list] = {}
    for a, b in zip(matrices, band_idx, strict=True):
        csc = a.tocsc()
        for col, c in enumerate(live):
            i, j = comps[c]
            amp = abs(float(np.asarray(scene.sources[i].components[j].spectrum.value)[b]))
            lo, hi = csc.indptr[col], csc.indptr[col + 1]
            rows = csc.indices[lo:hi][np.abs(csc.data[lo:hi]) * amp > LIGHT_LEVEL]
            if rows.size:
                found.setdefault(i, []).append(rows)
    out = dict(rects)
    for i, parts in found.items():
        y, x = np.divmod(np.concatenate(parts), nx)
        y0, y1, x0, x1 = rects[i]
        ys, xs = (int(y.min()) - 1, int(y.max()) + 2), (int(x.min()) - 1, int(x.max()) + 2)
        out[i] = (max(ys[0], y0), min(ys[1], y1), max(xs[0], x0), min(xs[1], x1))
    return out


def _source_rects(scene, observation, comps, live):
    """Each source's footprint in the observation: the union of its components' rectangles."""
    rects = {}
    for c, r in _footprints(scene, observation, comps, live).items():
        i = comps[c][0]
        if i in rects:
            r0 = rects[i]
            r = (min(r0[0], r[0]), max(r0[1], r[1]), min(r0[2], r[2]), max(r0[3], r[3]))
        rects[i] = r
    return rects


def _differences(x, offsets, scene, renderers):
    """Whitened model at ``x + offsets[k]`` minus at ``x``, for each row of ``offsets``, one
    render at a time (renders vmapped by 4 compiled 1.6x slower, ran no faster and took 130 MB
    more on a survey region)."""
    whitened = whitened_model(scene, renderers)
    at_x = whitened(x)
    return jax.lax.map(lambda off: whitened(x + off) - at_x, offsets)
