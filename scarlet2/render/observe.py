"""The scene as each observation sees it: the compiled-code views and the rendered images."""

from __future__ import annotations

from collections.abc import Sequence

from jaxtyping import Array, Float

from ..errors import InputError
from ..model.observation import Observation
from ..model.scene import Scene
from ..ops.jit import compiled, platform
from .canvas import render_canvas, render_sky
from .convolve import ObservationRenderer, observation_renderer
from .geometry import Geometry, grid_offset
from .resample import ResampledRenderer, resampled_renderer


def as_observations(observations) -> list[Observation]:
    """An Observation or a list/tuple of them, as a non-empty list (a clear error otherwise)."""
    if isinstance(observations, Observation):
        return [observations]
    obs = list(observations) if isinstance(observations, list | tuple) else None
    if obs is None or not all(isinstance(o, Observation) for o in obs):
        got = type(observations).__name__ if obs is None else ", ".join(type(o).__name__ for o in obs)
        raise TypeError(f"Expected an Observation or a list of Observations, got {got}")
    if not obs:
        raise InputError("No observations given")
    return obs


def prepare(scene: Scene, observations) -> tuple[Scene, tuple[ObservationRenderer | ResampledRenderer, ...]]:
    """Compiled-code views: the scene without its WCS and one renderer per observation."""
    obs: Sequence[Observation] = as_observations(observations)
    frame = scene.frame
    geometry = Geometry.build(frame, obs)
    renderers = tuple(renderer(o, frame, geometry) for o in obs)
    return scene.without_wcs(), renderers


def renderer(observation: Observation, frame, geometry: Geometry):
    """The renderer for one observation: cropping the convolved canvas when it is on the frame's
    grid, resampling (:mod:`.resample`) when it is on another."""
    if grid_offset(observation, frame) is not None:
        return observation_renderer(observation, frame, geometry)
    return resampled_renderer(observation, frame, geometry)


def render_observed(scene: Scene, renderer: ObservationRenderer) -> Float[Array, "bands y x"]:
    """The model through one renderer (traceable): canvas, convolution, sky."""
    return renderer(render_canvas(scene, renderer.geometry, renderer.data.dtype), render_sky(scene))


def render(scene: Scene, observation: Observation) -> Float[Array, "bands y x"]:
    """The scene's model as seen by ``observation`` (bands x y x x)."""
    core, (renderer,) = prepare(scene, [observation])
    return render_core(core, renderer)


def render_core(core: Scene, renderer: ObservationRenderer) -> Float[Array, "bands y x"]:
    """:func:`render` of a :func:`prepare`-d scene: for many renders of one structure."""
    return compiled(render_observed, platform(renderer.data))(core, renderer)
