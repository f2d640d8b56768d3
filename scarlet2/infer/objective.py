"""The objective: Gaussian log-likelihood of the observations, log prior, chi^2."""

from __future__ import annotations

from jaxtyping import Array, Float

from ..model.parameter import log_prior
from ..model.scene import Scene
from ..model.source import Background
from ..ops.jit import compiled, platform
from ..render.canvas import has_free, render_canvas, render_sky, stack_values
from ..render.observe import prepare
from .packing import FlatView, log_det_jacobian


def log_likelihood_core(scene: Scene, renderers, stack=stack_values, held=None) -> Float[Array, ""]:
    """Sum over the renderers of -chi^2 / 2 (traceable; one canvas for all observations).

    ``held``: the canvas of the sources without free parameters (:func:`held_canvas`), rendered
    once; only the others are rendered here.
    """
    geometry, dtype = renderers[0].geometry, renderers[0].data.dtype
    if held is None:
        canvas = render_canvas(scene, geometry, dtype, stack)
    else:
        canvas = render_canvas(scene, geometry, dtype, stack, select="free") + held
    sky = render_sky(scene)
    return sum(r.log_likelihood(canvas, sky) for r in renderers)


def neg_log_posterior_core(scene: Scene, renderers, stack=stack_values, held=None) -> Float[Array, ""]:
    return -log_likelihood_core(scene, renderers, stack, held) - log_prior(scene)


def loss_flat(u: Float[Array, " n"], scene: Scene, renderers, held=None) -> Float[Array, ""]:
    """The negative log posterior at the flat unconstrained vector ``u`` (:mod:`.packing`)."""
    view = FlatView(scene, u)
    return neg_log_posterior_core(view.scene, renderers, view.stack, held)


def log_density_flat(u: Float[Array, " n"], scene: Scene, renderers, held=None) -> Float[Array, ""]:
    """Log posterior density of the flat unconstrained vector ``u``: what the sampler explores,
    the negative loss plus each constraint's log |Jacobian| (traceable)."""
    return -loss_flat(u, scene, renderers, held) + log_det_jacobian(scene, u)


def held_canvas(scene: Scene, renderers):
    """The canvas of the sources whose parameters are all fixed, or None when every source has
    a free one: a sampler of a few sources among held neighbours renders those once."""
    if all(has_free(s) for s in scene.sources if not isinstance(s, Background)):
        return None
    return compiled(_held, platform(renderers[0].data))(scene, renderers)


def _held(scene, renderers):
    return render_canvas(scene, renderers[0].geometry, renderers[0].data.dtype, select="held")


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
    "held_canvas",
    "log_density_flat",
    "log_likelihood",
    "log_likelihood_core",
    "loss_flat",
    "neg_log_posterior_core",
]
