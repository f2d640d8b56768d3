"""The objective: Gaussian log-likelihood of the observations, log prior, chi^2."""

from __future__ import annotations

from jaxtyping import Array, Float

from ..model.parameter import log_prior
from ..model.scene import Scene
from ..ops.jit import compiled, platform
from ..render.canvas import render_canvas, render_sky, stack_values
from ..render.convolve import gaussian_log_likelihood
from ..render.observe import prepare
from ..render.parts import Parts, render_parts
from .packing import FlatView, log_det_jacobian


def log_likelihood_core(scene: Scene, renderers, stack=stack_values, parts: Parts | None = None) -> Float[Array, ""]:
    """Sum over the renderers of -chi^2 / 2 (traceable; one canvas for all observations).

    ``parts``: the held sources and linear components as observed (:func:`~scarlet2.render.parts.fixed_parts`),
    rendered once; only the moving sources are rendered here.
    """
    if parts is not None:
        images = render_parts(scene, renderers, parts, stack)
        return sum(gaussian_log_likelihood(m, r.data, r.weights) for m, r in zip(images, renderers, strict=True))
    canvas = render_canvas(scene, renderers[0].geometry, renderers[0].data.dtype, stack)
    sky = render_sky(scene)
    return sum(r.log_likelihood(canvas, sky) for r in renderers)


def neg_log_posterior_core(scene: Scene, renderers, stack=stack_values, parts=None) -> Float[Array, ""]:
    return -log_likelihood_core(scene, renderers, stack, parts) - log_prior(scene)


def loss_flat(u: Float[Array, " n"], scene: Scene, renderers, parts=None) -> Float[Array, ""]:
    """The negative log posterior at the flat unconstrained vector ``u`` (:mod:`.packing`)."""
    view = FlatView(scene, u)
    return neg_log_posterior_core(view.scene, renderers, view.stack, parts)


def log_density_flat(u: Float[Array, " n"], scene: Scene, renderers, parts=None) -> Float[Array, ""]:
    """Log posterior density of the flat unconstrained vector ``u``: what the sampler explores,
    the negative loss plus each constraint's log |Jacobian| (traceable)."""
    return -loss_flat(u, scene, renderers, parts) + log_det_jacobian(scene, u)


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
