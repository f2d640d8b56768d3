"""Parameter errors from the inverse Fisher information.

The Fisher information of a Gaussian likelihood is ``J^T W J`` (``J`` the Jacobian of the
rendered observations in the free parameters, ``W`` the inverse variances), plus the Hessian of
the negative log prior where the scene has priors. ``J`` comes from central differences of the
forward render, all columns in one compiled program: compiling a forward render costs a fraction
of the forward-over-reverse Hessian's compilation, which dominated the errors' time
(docs/performance.md). Scenes too large for ``J`` to fit in :data:`JACOBIAN_BYTES` use the exact
Hessian of the negative log posterior instead (the same matrix at a noiseless optimum).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from ..errors import InputError
from ..model.parameter import free_parameters, free_slots, log_prior, parameter_names, set_values
from ..model.scene import Scene
from ..ops.jit import compiled, platform, to_device
from ..render.canvas import render_canvas, render_sky
from ..render.observe import prepare
from .objective import neg_log_posterior_core

#: Most free parameters for which a dense Fisher matrix is formed.
MAX_DENSE = 4000


#: Bytes of working memory the Hessian's columns may take at once: each column is a
#: forward-over-reverse pass over the model canvas, so a large frame computes few at a time.
HESSIAN_BYTES = 2**30


def hessian_batch(n_free: int, renderers) -> int:
    """Hessian columns computed together: all of them for small canvases (one vmapped pass),
    fewer for large ones (a function of the canvas and the parameter count only)."""
    canvas = renderers[0].geometry.canvas_shape
    per_column = 16 * 4 * canvas[0] * canvas[1] * max(len(r.band_index) for r in renderers)  # ~16 canvas buffers
    return int(np.clip(HESSIAN_BYTES // per_column, 1, max(n_free, 1)))


#: Bytes the Jacobian (free parameters x observed pixels) may take; beyond, the exact Hessian.
JACOBIAN_BYTES = 2**30

#: Relative step of the central differences: about the cube root of float32's epsilon, where
#: truncation and round-off errors balance (~1e-5 of each Jacobian column), times the magnitude
#: of the parameter's slot (at least 1: pixels for centres, the unit for shapes).
FD_STEP = 5e-3


def difference_steps(slots, values) -> tuple[np.ndarray, np.ndarray]:
    """``(offsets, weights)``, each (n, 2): the derivative of the model along each flat free
    entry is ``sum_k weights[:, k] * (model(x + offsets[:, k] e) - model(x))``. Central
    differences (offsets +-h), or second-order one-sided ones (d, 2d) inward where a central step
    would leave the parameter's domain (a Sersic index at its bound, an ellipticity at the
    disk's edge). Differences of renders, so pixels a parameter does not touch get exactly 0
    (a band whose pixels are all masked stays without information)."""
    offsets, weights = [], []
    for (p, _), v in zip(slots, values, strict=True):
        v = np.asarray(v, np.float64)
        h = FD_STEP * max(float(np.abs(v).max(initial=0.0)), 1.0)
        for k in range(v.size):

            def inside(t, v=v, k=k, p=p):
                moved = v.copy().ravel()
                moved[k] += t
                return _inside(p.constraint, moved.reshape(v.shape))

            if inside(h) and inside(-h):
                offsets.append((h, -h))
                weights.append((0.5 / h, -0.5 / h))
            else:
                # toward the domain's inside, shorter: near a bound the model bends faster
                d = h / 4 if inside(h / 4) and inside(h / 2) else -h / 4
                offsets.append((d, 2 * d))
                weights.append((2.0 / d, -0.5 / d))
    return np.asarray(offsets), np.asarray(weights)


def _inside(constraint, x) -> bool:
    """Whether ``x`` lies in the constraint's domain: its inverse exists and maps back (the unit
    disk's inverse clips instead of failing). Constraints without host transforms: assumed."""
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):  # outside: NaN, said here
        u = constraint.inverse_numpy(x)
        if u is None:
            return True
        return bool(np.all(np.isfinite(u)) and np.allclose(constraint.forward_numpy(u), x, rtol=1e-6, atol=1e-9))


def whitened_model(scene, renderers):
    """The function from the flat free entries of ``scene`` to ``W^(1/2)`` times its model in
    every observed pixel (observations concatenated, each flattened as (band, y, x)); traced."""
    _, unravel = ravel_pytree([p.value for p, _ in free_slots(scene)])
    geometry, dtype = renderers[0].geometry, renderers[0].data.dtype

    def whitened(v):
        s = set_values(scene, unravel(v))
        canvas, sky = render_canvas(s, geometry, dtype), render_sky(s)
        return jnp.concatenate([(jnp.sqrt(r.weights) * r(canvas, sky)).ravel() for r in renderers])

    return whitened


def _fisher(x, offsets, weights, scene, renderers, batch: int):
    whitened = whitened_model(scene, renderers)
    at_x = whitened(x)

    def column(args):
        e, t, c = args
        return c[0] * (whitened(x + t[0] * e) - at_x) + c[1] * (whitened(x + t[1] * e) - at_x)

    jac = jax.lax.map(column, (jnp.eye(x.size, dtype=x.dtype), offsets, weights), batch_size=batch)
    # HIGHEST: full float32 on accelerators too (their default dot may round to tf32/bf16)
    return jnp.matmul(jac, jac.T, precision=jax.lax.Precision.HIGHEST)


def _prior_hessian(x, scene):
    _, unravel = ravel_pytree([p.value for p, _ in free_slots(scene)])
    return jax.hessian(lambda v: -log_prior(set_values(scene, unravel(v))))(x)


def _hessian(x, scene, renderers, batch: int):
    _, unravel = ravel_pytree([p.value for p, _ in free_slots(scene)])

    def f(v):
        return neg_log_posterior_core(set_values(scene, unravel(v)), renderers)

    grad = jax.grad(f)

    def column(e):  # forward-over-reverse, as jax.hessian; the Hessian is symmetric
        return jax.jvp(grad, (x,), (e,))[1]

    return jax.lax.map(column, jnp.eye(x.size, dtype=x.dtype), batch_size=batch)


def uncertainties(scene: Scene, observations, covariance: bool = False) -> dict[str, np.ndarray]:
    """1-sigma errors of every free parameter (constrained space), from the inverse Fisher
    information at ``scene`` (meant to be an optimum; :func:`fisher_information`).

    Returns a dict from each free parameter's path in the scene (``"sources[1].offset"``,
    ``"sources[1].components[0].morphology.r_e"``; :func:`scarlet2.parameter_names`) to its
    error, in the parameter's shape, ordered as :func:`scarlet2.free_parameters` (shared
    parameters repeat their error). The covariance is over the distinct
    slots of :func:`scarlet2.model.parameter.free_slots`; see :func:`covariance_from_hessian` for
    degenerate directions (parameters they dominate get ``inf``).
    With ``covariance=True`` also the full covariance matrix over the flattened free parameters.
    """
    errs, cov, _ = fisher_errors(scene, observations)
    labeled = dict(zip(parameter_names(scene), errs, strict=True))
    return (labeled, cov) if covariance else labeled


def fisher_errors(scene: Scene, observations) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """:func:`uncertainties` with the covariance: ``(errors, cov, cov_floored)``, where
    ``cov_floored`` is the part of ``cov`` that comes from directions raised to the curvature
    floor (:func:`covariance_from_hessian`). A combination ``a`` of parameters (a source's total
    flux in a band) is unconstrained when ``a @ cov_floored @ a`` is most of ``a @ cov @ a``.
    """
    core, renderers = prepare(scene, observations)
    slots = free_slots(core)
    if not slots:
        raise InputError("The scene has no free parameters: there are no errors to compute")
    values = [np.asarray(p.value) for p, _ in slots]  # flattened on the host: no eager ops
    dtype = renderers[0].data.dtype  # the observation's precision, as in the fit
    x = np.concatenate([v.ravel() for v in values]).astype(dtype)
    if x.size > MAX_DENSE:
        raise InputError(
            f"{x.size} free parameters: too many for a dense Fisher matrix (limit {MAX_DENSE}); "
            "fix free-form morphologies or sample the posterior instead"
        )
    h = fisher_information(x, values, core, renderers)
    cov, var, cov_floored = covariance_from_hessian(h, rtol=100 * np.finfo(dtype).eps, floored=True)  # 1e-5 (f32)
    err = np.sqrt(var)
    cuts = np.cumsum([v.size for v in values])[:-1]
    per_slot = [e.reshape(v.shape) for e, v in zip(np.split(err, cuts), values, strict=True)]
    errs = [None] * len(free_parameters(core))
    for (_, members), e in zip(slots, per_slot, strict=True):
        for i in members:
            errs[i] = e
    return errs, cov, cov_floored


def fisher_information(x: np.ndarray, values, core: Scene, renderers) -> np.ndarray:
    """The Fisher information matrix (float64, host) over the flat free entries ``x`` (their
    slots' ``values``) of ``core`` (:func:`~scarlet2.render.observe.prepare`); the exact
    Hessian of the negative log posterior where the Jacobian exceeds :data:`JACOBIAN_BYTES`."""
    on = platform(renderers[0].data)
    dtype = x.dtype
    batch = hessian_batch(x.size, renderers)
    pixels = sum(int(np.prod(r.data.shape)) for r in renderers)
    if x.size * pixels * dtype.itemsize > JACOBIAN_BYTES:
        return np.asarray(compiled(_hessian, on)(to_device(x, dtype), core, renderers, batch), np.float64)
    offsets, weights = difference_steps(free_slots(core), values)
    args = (to_device(x, dtype), to_device(offsets, dtype), to_device(weights, dtype), core, renderers, batch)
    info = np.asarray(compiled(_fisher, on)(*args), np.float64)
    if any(p.prior is not None for p, _ in free_slots(core)):
        info += np.asarray(compiled(_prior_hessian, on)(to_device(x, dtype), core), np.float64)
    return info


def covariance_from_hessian(h, rtol=1e-5, floored=False):
    """Covariance and per-parameter variances from a Hessian of the negative log posterior.

    The Hessian is equilibrated (unit diagonal) and eigen-decomposed.

    - A clearly negative curvature (below ``-rtol`` times the largest) means the fit ended against
      a bound (a Sersic index at its limit, an ellipticity at the disk's edge): there is no
      Gaussian approximation in that direction. The parameter that dominates it is held fixed
      (variance ``inf``, no covariance with the others), and the rest is conditional on it, as
      fitters report parameters at limits; repeated until no such direction is left.
    - Curvatures within ``rtol`` of zero are at the noise level of the Hessian (``rtol`` ~ 100
      machine epsilons of its computation) or real degeneracies (how a source's flux splits
      between bulge and disk). They are raised to that floor, so the covariance is positive
      semi-definite and combinations orthogonal to the degeneracy (the total flux) keep finite
      errors; a parameter whose variance comes mostly from floored directions gets ``inf``.
      With ``floored=True`` also the part of the covariance from those directions, so that the
      same rule can be applied to combinations of parameters.
    """
    h = 0.5 * (h + h.T)
    n = h.shape[0]
    d = np.sqrt(np.abs(np.diag(h)))
    d[d == 0] = 1.0
    hs = h / d[:, None] / d[None, :]
    keep = np.ones(n, bool)
    while keep.any():
        lam, v = np.linalg.eigh(hs[np.ix_(keep, keep)])
        if lam[-1] <= 0:
            keep[:] = False
        elif lam[0] < -rtol * lam[-1]:
            keep[np.flatnonzero(keep)[np.argmax(np.abs(v[:, 0]))]] = False  # at a bound: hold fixed
        else:
            break
    cov, var, cov_low = np.zeros((n, n)), np.full(n, np.inf), np.zeros((n, n))
    np.fill_diagonal(cov, np.inf)
    np.fill_diagonal(cov_low, np.inf)
    if keep.any():
        floor = rtol * lam[-1]
        inv = 1.0 / np.maximum(lam, floor)
        sub = (v * inv) @ v.T / d[keep, None] / d[None, keep]
        low = lam < floor
        share = (v**2 * inv) / ((v**2) @ inv)[:, None]  # each direction's part of each variance
        dominated = share[:, low].sum(axis=1) > 0.5
        cov[np.ix_(keep, keep)] = sub
        cov_low[np.ix_(keep, keep)] = (v[:, low] * inv[low]) @ v[:, low].T / d[keep, None] / d[None, keep]
        var[keep] = np.where(dominated, np.inf, np.diag(sub))
    return (cov, var, cov_low) if floored else (cov, var)
