"""The objective: Gaussian log-likelihood of the observations, log prior, chi^2."""

from __future__ import annotations

from jaxtyping import Array, Float

from ..model.parameter import log_prior
from ..model.scene import Scene
from ..ops.jit import compiled, platform
from ..render.canvas import render_canvas, render_sky, stack_values
from ..render.observe import prepare
from .packing import FlatView, log_det_jacobian


def log_likelihood_core(scene: Scene, renderers, stack=stack_values) -> Float[Array, ""]:
    """Sum over the renderers of -chi^2 / 2 (traceable; one canvas for all observations)."""
    canvas = render_canvas(scene, renderers[0].geometry, renderers[0].data.dtype, stack)
    sky = render_sky(scene)
    return sum(r.log_likelihood(canvas, sky) for r in renderers)


def neg_log_posterior_core(scene: Scene, renderers, stack=stack_values) -> Float[Array, ""]:
    return -log_likelihood_core(scene, renderers, stack) - log_prior(scene)


def loss_flat(u: Float[Array, " n"], scene: Scene, renderers) -> Float[Array, ""]:
    """The negative log posterior at the flat unconstrained vector ``u`` (:mod:`.packing`)."""
    view = FlatView(scene, u)
    return neg_log_posterior_core(view.scene, renderers, view.stack)


def log_density_flat(u: Float[Array, " n"], scene: Scene, renderers) -> Float[Array, ""]:
    """Log posterior density of the flat unconstrained vector ``u``: what the sampler explores,
    the negative loss plus each constraint's log |Jacobian| (traceable)."""
    return -loss_flat(u, scene, renderers) + log_det_jacobian(scene, u)


def chi2_core(scene: Scene, renderers) -> Float[Array, ""]:
    return compiled(_chi2, platform(renderers[0].data))(scene, renderers)


def _chi2(scene, renderers):
    return -2 * log_likelihood_core(scene, renderers)


def log_likelihood(scene: Scene, observations) -> Float[Array, ""]:
    """Gaussian log-likelihood of the scene given the observations (no normalisation constant)."""
    core, renderers = prepare(scene, observations)
    return -0.5 * chi2_core(core, renderers)


__all__ = [
    "chi2_core",
    "log_density_flat",
    "log_likelihood",
    "log_likelihood_core",
    "loss_flat",
    "neg_log_posterior_core",
]
