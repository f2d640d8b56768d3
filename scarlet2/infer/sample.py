"""Posterior sampling with BlackJAX NUTS in the packed unconstrained space that ``fit`` uses.

The log density of the flat vector u is the log-likelihood of every observation, each free
parameter's log prior and each constraint's log |Jacobian| (:func:`log_density_flat`). The
chains run in whitened coordinates z, ``u = center + L z`` with ``L L^T`` the inverse Hessian at
the MAP point (:mod:`.precondition`), so that the warmup starts from the right scales and
correlations. Chains are vmapped, and spread over the devices when there are several
(:func:`chain_sharding`): window adaptation (step size and a diagonal or dense mass matrix)
runs as one compiled scan, sampling as compiled scans of ``chunk`` draws with a progress bar
between them. Scene, renderers and the whitening map are arguments of the compiled functions,
so a second ``sample`` of a scene of the same structure does not compile again.

Needs BlackJAX (``pip install scarlet2[sample]``).
"""

from __future__ import annotations

import dataclasses
import warnings

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import InputError
from ..model.morphology import ArrayMorphology
from ..model.parameter import free_slots, is_parameter, parameter_names, with_free
from ..model.scene import Scene
from ..model.source import Background
from ..ops.jit import compiled, platform, to_device
from ..render.observe import prepare, render_observed
from ..render.parts import fixed_parts
from .objective import log_density_flat
from .packing import FlatView, pack_host, pack_stepsizes, with_values
from .precondition import laplace
from .uncertainty import MAX_DENSE

#: Chains start at the mode of the sampled density (:func:`~.precondition.laplace`) plus Gaussian
#: jitter of this many 1-sigma (Fisher) errors along each well-determined direction.
INIT_JITTER = 0.5

#: Mean acceptance probability the warmup adapts the step size to (Stan's adapt_delta), for
#: float32 chains ...
TARGET_ACCEPTANCE = 0.9
#: ... and for float64 ones. On the HSC blend's parametric fit one float64 draw in 4000 diverged
#: at 0.9 (none at 0.95), on its default fit none; 0.95 halved the float64 ESS per second of the
#: side-by-side benchmark on two seeds of three (docs/performance.md).
TARGET_ACCEPTANCE_X64 = 0.9

#: Without a usable Hessian (not finite), chains start this many parameter step sizes away.
FALLBACK_JITTER = 0.1

#: :func:`sample` warns (:class:`DivergenceWarning`) when more than this fraction of the draws
#: after warmup diverged: the draws then do not represent the posterior.
DIVERGENCE_WARNING = 0.01


class DivergenceWarning(UserWarning):
    """Many NUTS draws after warmup diverged: the chains did not explore the posterior."""


@dataclasses.dataclass
class Samples:
    """What :func:`sample` drew: flat positions and sampler statistics, (chain, draw, ...)."""

    positions: np.ndarray
    stats: dict
    step_size: np.ndarray
    inverse_mass_matrix: np.ndarray  # per chain, in the whitened coordinates z
    center: np.ndarray  # of the whitened coordinates: the sampling density's mode
    whitening: np.ndarray  # L of u = center + L z (a vector of scales when diagonal)
    target_acceptance: float = TARGET_ACCEPTANCE


def _unwhiten(center, white, z):
    """u of the whitened z: ``white`` is a matrix, or a vector of scales (no Hessian: above
    MAX_DENSE parameters a dense matrix would not fit)."""
    return center + (white @ z if white.ndim == 2 else white * z)


def _whitened(center, white, scene, renderers, parts):
    def logdensity(z):
        return log_density_flat(_unwhiten(center, white, z), scene, renderers, parts)

    return logdensity


def _warmup(keys, z0, center, white, scene, renderers, parts, num_warmup: int, max_tree_depth: int, dense_mass: bool,
            target: float):  # fmt: skip
    import blackjax

    logdensity = _whitened(center, white, scene, renderers, parts)

    adapt = blackjax.window_adaptation(
        blackjax.nuts,
        logdensity,
        is_mass_matrix_diagonal=not dense_mass,
        target_acceptance_rate=target,
        max_num_doublings=max_tree_depth,
    )

    def one(key, u):
        (state, params), _ = adapt.run(key, u, num_steps=num_warmup)
        return state, params["step_size"], params["inverse_mass_matrix"]

    return jax.vmap(one)(keys, z0)


def _draws(keys, states, step_size, inv_mass, center, white, scene, renderers, parts, n: int, max_tree_depth: int):
    import blackjax

    logdensity = _whitened(center, white, scene, renderers, parts)

    def chain(key, state, eps, m):
        kernel = blackjax.nuts(logdensity, step_size=eps, inverse_mass_matrix=m, max_num_doublings=max_tree_depth).step

        def step(s, k):
            s, info = kernel(k, s)
            stats = {
                "lp": s.logdensity,
                "acceptance_rate": info.acceptance_rate,
                "diverging": info.is_divergent,
                "n_steps": info.num_integration_steps,
                "tree_depth": info.num_trajectory_expansions,
                "energy": info.energy,
            }
            return s, (_unwhiten(center, white, s.position), stats)

        return jax.lax.scan(step, state, jax.random.split(key, n))

    return jax.vmap(chain)(keys, states, step_size, inv_mass)


def sample(
    scene: Scene,
    observations,
    num_chains: int = 4,
    num_warmup: int = 500,
    num_samples: int = 1000,
    seed: int = 0,
    chunk: int = 250,
    progress: bool = True,
    max_tree_depth: int = 10,
    dense_mass: bool = False,
    target_acceptance: float | None = None,
) -> Samples:
    """NUTS draws of the scene's free parameters given the observations (flat, unconstrained).

    Chains run in coordinates whitened by the curvature at ``scene`` (meant to be the MAP
    fit; :mod:`scarlet2.infer.precondition`) and start there, jittered by :data:`INIT_JITTER`
    Fisher errors. ``max_tree_depth`` bounds NUTS's trajectory doublings (2^depth - 1 gradient
    evaluations per draw at most; ``sample_stats.tree_depth`` shows where draws hit it).
    ``dense_mass`` adapts a dense mass matrix (for strongly correlated parameters, e.g. the
    fluxes of close neighbours) instead of a diagonal one. ``target_acceptance`` is the mean
    acceptance the step size is adapted to (Stan's ``adapt_delta``): higher means smaller steps
    and fewer divergences where the curvature changes (a faint component's shape and flux);
    by default :data:`TARGET_ACCEPTANCE` for float32 chains, :data:`TARGET_ACCEPTANCE_X64` for
    float64 ones. Returns :class:`Samples`; :func:`scarlet2.labeled.posterior.posterior_tree` labels them.
    """
    if num_chains < 1 or num_warmup < 1 or num_samples < 1:
        raise InputError(
            f"num_chains, num_warmup and num_samples must be >= 1, got {num_chains}, {num_warmup}, {num_samples}"
        )
    if target_acceptance is not None and not 0 < target_acceptance < 1:
        raise InputError(f"target_acceptance must be in (0, 1), got {target_acceptance}")
    core, renderers = prepare(scene, observations)
    # BlackJAX draws momenta and step sizes in JAX's default float: under x64 a float32 chain
    # would be widened mid-trajectory, so the chain runs in float64 there (the data stay as given)
    dtype = np.promote_types(renderers[0].data.dtype, jax.dtypes.canonicalize_dtype(np.float64))
    if target_acceptance is None:
        target_acceptance = TARGET_ACCEPTANCE_X64 if dtype == np.float64 else TARGET_ACCEPTANCE
    u = pack_host(core, dtype)
    if u.size == 0:
        raise InputError("The scene has no free parameters: there is nothing to sample")
    parts = fixed_parts(core, renderers)  # held neighbours, free spectra: rendered once
    u, white, jitter = _whitening(u, core, renderers, parts)
    rng = np.random.default_rng(seed)
    z0 = (jitter * rng.standard_normal((num_chains, u.size))).astype(dtype)
    key = jax.random.PRNGKey(seed)
    k_warm, k_draw = jax.random.split(key)
    backend = platform(renderers[0].data)
    warm = compiled(_warmup, backend, iterative=True)
    spread = chain_sharding(backend, num_chains)
    keys = _put(jax.random.split(k_warm, num_chains), spread)
    z0 = _put(to_device(z0, dtype), spread)
    center, white = to_device(u, dtype), to_device(white, dtype)
    target = float(target_acceptance)
    states, eps, inv_mass = warm(
        keys, z0, center, white, core, renderers, parts, num_warmup, max_tree_depth, dense_mass, target
    )
    # every chain takes the smallest adapted step: the chains' adaptations scatter by 2x, the
    # divergences come from the larger steps, and under vmap a draw already waits for the
    # longest trajectory of any chain, so the smaller step costs little
    eps = _put(to_device(np.full(num_chains, np.min(np.asarray(eps))), dtype), spread)
    draw = compiled(_draws, backend, iterative=True)
    from tqdm.auto import tqdm

    positions, stats = [], []
    n_chunks = -(-num_samples // chunk)
    keys = jax.random.split(k_draw, n_chunks * num_chains).reshape(n_chunks, num_chains, -1)
    keys = [_put(k, spread) for k in keys]
    with tqdm(total=num_samples, disable=not progress, desc="sampling", unit="draw") as bar:
        for c in range(n_chunks):
            states, (pos, st) = draw(
                keys[c], states, eps, inv_mass, center, white, core, renderers, parts, chunk, max_tree_depth
            )
            positions.append(np.asarray(pos))
            stats.append({k: np.asarray(v) for k, v in st.items()})
            bar.update(min(chunk, num_samples - c * chunk))
    positions = np.concatenate(positions, axis=1)[:, :num_samples]
    stats = {k: np.concatenate([s[k] for s in stats], axis=1)[:, :num_samples] for k in stats[0]}
    stats["step_size"] = np.broadcast_to(np.asarray(eps)[:, None], positions.shape[:2]).copy()
    warn_divergences(stats["diverging"], u.size, white.ndim == 2)
    return Samples(
        positions,
        stats,
        np.asarray(eps),
        np.asarray(inv_mass),
        np.asarray(center),
        np.asarray(white),
        float(target_acceptance),
    )


def hold_free_forms(scene: Scene) -> Scene:
    """``scene`` with every free-form morphology's pixels held at their values (their spectra,
    centres and every other free parameter stay free), or ``scene`` itself when it has none.

    Thousands of positivity-constrained pixels put a scene above ``MAX_DENSE`` parameters,
    where chains run without the Hessian's whitening: on the HSC blend every draw of the
    default fit's free forms diverged (docs/performance.md).
    """
    held = {
        id(c.morphology.array)
        for s in scene.sources
        for c in getattr(s, "components", ())
        if isinstance(c.morphology, ArrayMorphology)
    }
    flat = jax.tree_util.tree_flatten_with_path(scene, is_leaf=is_parameter)[0]
    pixels = {jax.tree_util.keystr(path).lstrip(".") for path, leaf in flat if id(leaf) in held}
    names = parameter_names(scene)
    if not pixels & set(names):
        return scene
    return with_free(scene, [n for n in names if n not in pixels])


def warn_divergences(diverging: np.ndarray, n_free: int, whitened: bool) -> None:
    """Warn when more than :data:`DIVERGENCE_WARNING` of the draws (chain, draw) diverged,
    naming the count and, for a scene sampled without a Hessian (more than ``MAX_DENSE`` free
    parameters, e.g. free-form pixels), that cause."""
    frac = float(np.mean(diverging))
    if frac <= DIVERGENCE_WARNING:
        return
    why = (
        ""
        if whitened
        else f"; its {n_free} free parameters (above {MAX_DENSE}: free-form pixels?) ran without a Hessian's "
        "whitening. Sample a parametric fit, or hold the free forms with scarlet2.with_free"
    )
    warnings.warn(
        f"{int(np.sum(diverging))} of {diverging.size} draws ({frac:.0%}) diverged after warmup: the draws "
        f"do not represent the posterior{why}",
        DivergenceWarning,
        stacklevel=3,
    )


def _whitening(u, core, renderers, parts):
    """The center and whitening map ``L`` of the chains' coordinates and the start jitter per
    whitened coordinate; without a usable Hessian (or with more than :data:`MAX_DENSE` free
    parameters: free-form morphologies), the fit's point, the parameters' step sizes and
    :data:`FALLBACK_JITTER`."""
    found = laplace(u, core, renderers, parts) if u.size <= MAX_DENSE else None
    if found is None:
        return u, pack_stepsizes(core, u.dtype), np.full(u.size, FALLBACK_JITTER)
    center, white, determined = found
    # along degenerate directions the curvature's scale is only a bound: start at the mode there
    return center, white, np.where(determined, INIT_JITTER, 0.0)


def chain_sharding(backend: str, num_chains: int):
    """A sharding that spreads the chain axis over the backend's devices, or None with one
    device (or a number of chains they do not divide): the vmapped chains then run in
    parallel, each device its share, in the same compiled program."""
    devices = jax.devices(backend)
    if len(devices) < 2 or num_chains % len(devices):
        return None
    mesh = jax.sharding.Mesh(np.array(devices), ("chain",))
    return jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("chain"))


def _put(x, sharding):
    return x if sharding is None else jax.device_put(x, sharding)


def _constrained(u, scene):
    """Every free slot's constrained value and each source's per-band flux at ``u`` (traceable)."""
    view = FlatView(scene, u)
    values = [p.value for p, _ in free_slots(view.scene)]
    fluxes = [s.flux() for s in view.scene.sources if not isinstance(s, Background) and hasattr(s, "components")]
    return values, jnp.stack(fluxes) if fluxes else jnp.zeros((0, scene.frame.n_bands), u.dtype)


def constrained_draws(scene: Scene, positions: np.ndarray):
    """(values per free slot, fluxes) of flat draws (chain, draw, n) as host arrays (chain, draw, ...)."""
    core = scene.without_wcs()
    fn = compiled(_constrained_batch, jax.default_backend())
    c, d, n = positions.shape
    values, fluxes = fn(to_device(positions.reshape(c * d, n), positions.dtype), core)
    values = [np.asarray(v).reshape(c, d, *v.shape[1:]) for v in values]
    return values, np.asarray(fluxes).reshape(c, d, *fluxes.shape[1:])


def _constrained_batch(us, scene):
    return jax.vmap(lambda u: _constrained(u, scene))(us)


def render_draws(core: Scene, renderer, values) -> np.ndarray:
    """Model images (draw, band, y, x) through one renderer at each draw's constrained values.

    ``core, (renderer,) = prepare(scene, [observation])`` once; ``values`` holds one array
    (draw, ...) per free slot, as :func:`constrained_draws` returns them. One compiled program
    per (structure, number of draws): pass blocks of one size.
    """
    values = [to_device(v, renderer.data.dtype) for v in values]
    return np.asarray(compiled(_render_batch, platform(renderer.data))(values, core, renderer))


def _render_batch(values, scene, renderer):
    def one(vals):
        return render_observed(with_values(scene, vals, renderer.data.dtype), renderer)

    # batches of draws, not all at once: a vmap over every draw holds as many canvases
    return jax.lax.map(one, values, batch_size=8)


__all__ = [
    "DivergenceWarning",
    "Samples",
    "chain_sharding",
    "constrained_draws",
    "hold_free_forms",
    "log_density_flat",
    "render_draws",
    "sample",
    "warn_divergences",
]
