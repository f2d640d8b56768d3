"""Maximum a-posteriori fitting with optax, compiled once per scene structure.

The iteration loop is a ``lax.while_loop`` inside a jitted chunk of ``chunk`` steps; the host only
wakes between chunks (progress bar, early stop), so there is no host sync per step. Every array
(data, weights, initial values, step sizes, tolerances) is a traced argument, and the optimizer is
a module-level object unless the user passes one: a second fit of a scene with the same structure
reuses the compiled code.
"""

from __future__ import annotations

import dataclasses
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from ..errors import InputError
from ..model.parameter import free_parameters, free_slots, log_prior
from ..model.scene import Scene
from ..ops.jit import compiled, platform, to_device
from ..render.boxes import box_leakage, warn_box_leakage
from ..render.observe import as_observations, prepare
from ..render.parts import fixed_parts
from .objective import loss_flat
from .packing import pack_host, pack_stepsizes, unpack, unpack_host
from .uncertainty import uncertainties

#: Seconds between progress updates that a fit aims at (see ``fit``'s loop).
PROGRESS_INTERVAL_S = 1.0

#: Default optimizer: Adam's normalised direction; per-parameter step sizes scale it.
DEFAULT_OPTIMIZER = optax.chain(optax.scale_by_adam(), optax.scale(-1.0))


def free_count(scene: Scene) -> int:
    """Free parameter entries that can change the model: every free entry, less a free form's
    pixels beyond its support (multiplied by 0, they cannot fit the data)."""
    n = sum(int(np.size(p.value)) for p, _ in free_slots(scene))
    for src in scene.sources:
        for c in getattr(src, "components", ()):
            m = c.morphology
            if getattr(m, "support", None) is not None and not m.array.fixed:
                support = np.asarray(m.support)
                n -= int(support.size - np.count_nonzero(support))
    return n


@dataclasses.dataclass
class FitInfo:
    """What a fit did: loss history, iterations, convergence and goodness of fit."""

    loss_history: np.ndarray
    iterations: int
    converged: bool
    chi2: float
    n_pixels: int
    n_free: int
    errors: dict | None = None  # parameter path -> error (scarlet2.uncertainties)
    box_leakage: np.ndarray | None = None  # per source: bound on its flux beyond its box

    @property
    def dof(self) -> int:
        """Unmasked pixel values minus free parameter entries that can change the model
        (:func:`free_count`; <= 0 when the data cannot constrain the model)."""
        return self.n_pixels - self.n_free

    @property
    def chi2_dof(self) -> float:
        """chi^2 per degree of freedom; NaN without degrees of freedom."""
        return self.chi2 / self.dof if self.dof > 0 else float("nan")


def _start(scene, optimizer, dtype):
    """The initial state, built on the host: no compiled program of its own. The optimizer's
    state is a zero placeholder of the right structure; the first chunk initialises it on
    device (at iteration 0), so the optimizer's ``init`` needs no separate compilation."""
    u = pack_host(scene, dtype)
    u_spec = jax.ShapeDtypeStruct(u.shape, u.dtype)
    opt_state = jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), jax.eval_shape(optimizer.init, u_spec))
    inf = np.asarray(np.inf, dtype)
    return _State(u, opt_state, inf, inf, np.zeros((), np.int32), np.zeros((), bool), u, inf)


class _State(eqx.Module):
    u: jax.Array  # all free parameters, flat and unconstrained (scarlet2.infer.packing)
    opt_state: object
    loss: jax.Array
    change: jax.Array  # moving average of |relative loss change|: robust to Adam's step noise
    it: jax.Array
    converged: jax.Array
    best_u: jax.Array  # Adam does not decrease the loss monotonically: return the best point seen
    best_loss: jax.Array


def _run_chunk(state, scene, renderers, parts, optimizer, stepsizes, steps, rtol, min_iter, chunk: int):
    """Up to ``steps`` (<= chunk) optimizer steps on device; stops early at convergence.

    ``parts``: the held and free-spectrum sources as observed (:func:`~scarlet2.render.parts.fixed_parts`),
    or None. Returns the new state, the chunk's loss history and chi^2 at the new parameters.
    """
    grad_fn = jax.value_and_grad(loss_flat)
    history = jnp.full((chunk,), jnp.nan, state.loss.dtype)
    fresh = optimizer.init(state.u)  # used at iteration 0 (see _start)
    opt_state = jax.tree.map(lambda a, b: jnp.where(state.it == 0, a, b), fresh, state.opt_state)
    state = eqx.tree_at(lambda s: s.opt_state, state, opt_state)

    def cond(carry):
        s, _, i = carry
        return (i < steps) & ~s.converged

    def body(carry):
        s, hist, i = carry
        loss, g = grad_fn(s.u, scene, renderers, parts)
        updates, opt_state = optimizer.update(g, s.opt_state, s.u)
        u = s.u + stepsizes * updates
        rel = jnp.abs(s.loss - loss) / jnp.abs(loss)
        # the average starts at the first measured change (not at 1, which alone took ~90 steps
        # to decay below 1e-4: a warm start could not stop before that)
        average = jnp.where(jnp.isfinite(s.change), 0.9 * s.change + 0.1 * rel, rel)
        change = jnp.where(jnp.isfinite(rel), average, s.change)
        converged = (change <= rtol) & (s.it + 1 >= min_iter)
        hist = hist.at[i].set(loss)
        better = loss < s.best_loss
        best_u = jnp.where(better, s.u, s.best_u)
        best_loss = jnp.where(better, loss, s.best_loss)
        return _State(u, opt_state, loss, change, s.it + 1, converged, best_u, best_loss), hist, i + 1

    state, history, _ = jax.lax.while_loop(cond, body, (state, history, jnp.zeros((), jnp.int32)))
    # chi^2 = 2 (loss + log prior) at the best point: no second copy of the model in the program
    priored = any(p.prior is not None for p, _ in free_slots(scene))
    chi2 = 2 * (state.best_loss + log_prior(unpack(scene, state.best_u))) if priored else 2 * state.best_loss
    return state, history, chi2


def fit(
    scene: Scene,
    observations,
    *,
    max_iter: int = 1000,
    rtol: float = 1e-6,
    min_iter: int = 50,
    optimizer: optax.GradientTransformation | None = None,
    chunk: int = 100,
    progress: bool = True,
    errors: bool = False,
) -> tuple[Scene, FitInfo]:
    """Fit a scene to one or several observations (maximum a posteriori).

    Parameters
    ----------
    scene
        The initial :class:`~scarlet2.Scene`; it is not modified.
    observations
        An :class:`~scarlet2.Observation` or a list of them.
    max_iter
        Iteration limit.
    rtol
        Converged when the moving average (over ~10 steps, started at the first measured change)
        of the relative loss change per step falls below ``rtol``.
    min_iter
        Never stop before this many iterations.
    optimizer
        An optax transformation whose updates are *added* to the unconstrained parameters and are
        then scaled per parameter by its ``stepsize`` (default: Adam's direction with scale -1).
    chunk
        Most iterations per compiled call; the progress bar updates between calls, which take
        about :data:`PROGRESS_INTERVAL_S` on large problems.
    progress
        Show a tqdm progress bar with the loss.
    errors
        Also compute Fisher-matrix errors (:func:`scarlet2.uncertainties`) into ``info.errors``.

    Returns
    -------
    scene, info
        The fitted scene (a new pytree) and a :class:`FitInfo`.

    Warns
    -----
    BoxLeakageWarning
        When a fitted source puts more than ``BOX_LEAKAGE_WARNING`` of its flux beyond its box
        (:func:`scarlet2.box_leakage`); :func:`scarlet2.grow_boxes` makes room for a refit.
    """
    from tqdm.auto import tqdm

    for name, value, least in (("max_iter", max_iter, 1), ("chunk", chunk, 1), ("min_iter", min_iter, 0)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < least:
            raise InputError(f"{name} must be an integer >= {least}, got {value!r}")
    if not (np.ndim(rtol) == 0 and np.issubdtype(np.asarray(rtol).dtype, np.number) and 0 <= rtol < np.inf):
        raise InputError(f"rtol must be a finite number >= 0, got {rtol!r}")
    if optimizer is not None and not (
        callable(getattr(optimizer, "init", None)) and callable(getattr(optimizer, "update", None))
    ):
        raise TypeError(f"optimizer must be an optax GradientTransformation (init, update), got {optimizer!r}")
    obs = as_observations(observations)
    n_pixels = sum(o.n_pixels() for o in obs)
    if n_pixels == 0:
        raise InputError(f"Nothing to fit: every pixel of the {len(obs)} observation(s) has weight 0")
    core, renderers = prepare(scene, obs)
    free = free_parameters(core)
    if not free:
        raise InputError("The scene has no free parameters to fit")
    optimizer = DEFAULT_OPTIMIZER if optimizer is None else optimizer
    dtype = renderers[0].data.dtype
    stepsizes = pack_stepsizes(core, dtype)
    state = _start(core, optimizer, dtype)
    rtol_a, min_a = to_device(rtol, dtype), to_device(min_iter, jnp.int32)
    # a scene with held neighbours (``with_free``) renders those once, not at every step
    parts = fixed_parts(core, renderers)
    run_chunk = compiled(_run_chunk, platform(renderers[0].data), iterative=True)
    history = []
    bar = tqdm(total=max_iter, disable=not progress, desc="fit", unit="it", leave=True)
    done, converged, chi2 = 0, False, np.nan
    # iterations per call: 1 in the call that compiles, 2 in the next, then as many as take
    # about PROGRESS_INTERVAL_S at the measured speed (at most ``chunk``): a small fit runs
    # full chunks from its third call, a large frame still updates the bar every second or so
    # (``steps`` is traced: the program is compiled once)
    per_call = 1
    while done < max_iter and not converged:
        steps = min(per_call, max_iter - done)
        start = time.perf_counter()
        state, hist, chi2 = run_chunk(
            state, core, renderers, parts, optimizer, stepsizes, to_device(steps, jnp.int32), rtol_a, min_a, chunk
        )
        it, converged, loss = (int(state.it), bool(state.converged), float(state.loss))  # one sync per chunk
        elapsed = time.perf_counter() - start
        per_call = 2 if done == 0 else int(np.clip(PROGRESS_INTERVAL_S * steps / max(elapsed, 1e-9), 1, chunk))
        history.append(np.asarray(hist)[: it - done])
        bar.update(it - done)
        bar.set_postfix(loss=f"{loss:.6g}")
        done = it
    # the last state stays on screen: where the fit stopped and why
    bar.set_description_str("fit converged" if converged else "fit stopped at max_iter (not converged)")
    bar.refresh()
    bar.close()
    fitted = unpack_host(scene, state.best_u)
    chi2 = float(chi2)
    info = FitInfo(
        loss_history=np.concatenate(history) if history else np.zeros(0),
        iterations=done,
        converged=converged,
        chi2=chi2,
        n_pixels=n_pixels,
        n_free=free_count(core),
        box_leakage=box_leakage(fitted),
    )
    warn_box_leakage(fitted, info.box_leakage)
    if errors:
        info.errors = uncertainties(fitted, obs)
    return fitted, info
