"""Whitening the sampler's space with the curvature at the MAP point.

A scene's flat parameters differ in scale by orders of magnitude (a flux of 1e3 next to a
centre offset of 1e-2 pixel) and are correlated (the fluxes and sizes of close neighbours).
NUTS with a mass matrix adapted from the identity then needs tiny steps and long trajectories,
and a short warmup never finds the scales. So the chains run in coordinates ``z`` with
``u = center + L z``, where ``L L^T`` is the inverse Hessian of the negative log density at the
MAP point (the Laplace approximation): the posterior is close to a unit Gaussian in ``z`` and
window adaptation only corrects what the Gaussian approximation misses. The map is linear, so
its Jacobian is a constant and drops out of the density.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ..ops.jit import compiled, platform, to_device
from .objective import log_density_flat
from .uncertainty import hessian_batch

#: Newton steps towards the mode of the sampling density, at most, and the largest step in
#: whitened units (a trust region: the Hessian far from the mode is only a guide).
NEWTON_STEPS = 20
TRUST = 3.0


def _local(u, scene, renderers, parts, batch: int):
    def f(v):
        return -log_density_flat(v, scene, renderers, parts)

    grad = jax.grad(f)

    def column(e):  # forward-over-reverse; the Hessian is symmetric
        return jax.jvp(grad, (u,), (e,))[1]

    return f(u), grad(u), jax.lax.map(column, jnp.eye(u.size, dtype=u.dtype), batch_size=batch)


def local_quadratic(u: np.ndarray, core, renderers, parts=None) -> tuple[float, np.ndarray, np.ndarray]:
    """Value, gradient and Hessian of the negative log density (:func:`log_density_flat`) at the
    flat vector ``u``, as float64 host values (``core, renderers = prepare(scene, observations)``;
    ``parts``: :func:`~scarlet2.render.parts.fixed_parts`)."""
    fn = compiled(_local, platform(renderers[0].data))
    f, g, h = fn(to_device(u, u.dtype), core, renderers, parts, hessian_batch(u.size, renderers))
    return float(f), np.asarray(g, np.float64), np.asarray(h, np.float64)


def laplace(u: np.ndarray, core, renderers, parts=None) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """``(center, L, determined)``: the mode of the sampling density and its whitening map.

    The fit's optimum is the mode of the posterior over the constrained parameters; the density
    the chains explore also holds each constraint's log |Jacobian|, which moves the mode away
    from the bounds (a component's flux near zero in one band, whose log is at -6, has its
    unconstrained mass near log(1 sigma)). The Laplace approximation at the fit's optimum is then
    off by orders of magnitude in those directions; at the sampling mode it is close. So
    ``laplace`` takes Newton steps from ``u`` (each curvature by its magnitude, steps of at
    most :data:`TRUST` whitened units, halved while the density does not rise) and whitens at
    the point where the Newton step is below 0.1 sigma. None without a usable Hessian.
    """
    rtol = 100 * np.finfo(u.dtype).eps
    f, g, h = local_quadratic(u, core, renderers, parts)
    found = whitening(h, rtol)
    trust = TRUST
    for _ in range(NEWTON_STEPS):
        if found is None or not np.isfinite(f):
            return None
        white, determined = found
        step = -(white.T @ g)
        norm = float(np.linalg.norm(step))
        if norm < 0.1:
            break
        trial = (u + white @ (step * min(1.0, trust / norm))).astype(u.dtype)
        f_new, g_new, h_new = local_quadratic(trial, core, renderers, parts)
        if np.isfinite(f_new) and f_new <= f:
            u, f, g, found = trial, f_new, g_new, whitening(h_new, rtol)
        else:
            trust = min(trust, norm) / 2
    return (u, *found) if found is not None else None


def whitening(h: np.ndarray, rtol: float) -> tuple[np.ndarray, np.ndarray] | None:
    """``(L, determined)`` with ``L L^T`` the inverse of the Hessian ``h``, made positive definite.

    ``h`` is equilibrated (unit diagonal) and eigen-decomposed; each curvature is taken by its
    magnitude (a fit that ended near a bound can leave a negative one) and raised to ``rtol``
    times the largest (the Hessian's noise level, or a true degeneracy such as a bulge/disk
    flux split). ``determined`` flags the columns of ``L`` whose curvature was above that floor:
    their scale is the posterior's, the others' only a bound. None when ``h`` is not finite or
    has no curvature at all.
    """
    h = 0.5 * (h + h.T)
    if not np.isfinite(h).all():
        return None
    d = np.sqrt(np.abs(np.diag(h)))
    d[d == 0] = 1.0
    lam, v = np.linalg.eigh(h / d[:, None] / d[None, :])
    lam = np.abs(lam)
    if lam.max() <= 0:
        return None
    floor = rtol * lam.max()
    return (v / np.sqrt(np.maximum(lam, floor))) / d[:, None], lam > floor


__all__ = ["laplace", "local_quadratic", "whitening"]
