"""Parameters: the leaves of a scene that a fit or a sampler may change."""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, DTypeLike

from ..errors import InputError
from ..ops.jit import to_device
from .constraints import Constraint, Interval, Positive, UnitDisk, as_constraint


class Parameter(eqx.Module):
    """A constrained, optionally fixed, optionally priored value.

    Parameters
    ----------
    value
        Initial value in the constrained space (a scalar or array).
    constraint
        ``None``/"real", "positive", "simplex", "unit_disk", ``(lower, upper)`` or a
        :class:`~scarlet2.constraints.Constraint`.
    prior
        Any distribution with ``log_prob`` (numpyro, distrax), evaluated on the constrained value.
    fixed
        Excluded from fitting and sampling when true.
    stepsize
        Optimizer step in unconstrained units (default 0.03). An array leaf, not static: data-
        dependent steps (e.g. a sky level in units of the noise) do not cause recompilation.
    dtype
        Storage dtype (default float32; float64 needs ``jax_enable_x64``, which we never switch on).

    share
        A name: all free parameters with the same ``share`` name are one parameter (one value,
        fitted jointly), e.g. a spectrum common to two sources. Explicit, by name, never by
        object identity.
    """

    value: Array
    constraint: Constraint = eqx.field(static=True)
    prior: Any = None
    fixed: bool = eqx.field(static=True, default=False)
    stepsize: Array
    share: str | None = eqx.field(static=True, default=None)

    def __init__(
        self,
        value: ArrayLike,
        constraint=None,
        prior=None,
        fixed: bool = False,
        stepsize: ArrayLike | None = None,
        dtype: DTypeLike | None = None,
        share: str | None = None,
    ):
        dtype = dtype or (value.dtype if isinstance(value, jax.Array | Array) else jnp.float32)
        self.value = to_device(value, dtype)
        self.constraint = as_constraint(constraint)
        self.prior = _check_prior(prior, self.value.shape)
        self.fixed = bool(fixed)
        _check_value(self.value, self.constraint)
        stepsize = 0.03 if stepsize is None else stepsize
        _check_stepsize(stepsize)  # on the host value: no device round trip
        self.stepsize = to_device(stepsize, jnp.float32)
        self.share = None if share is None else str(share)

    @property
    def shape(self):
        return self.value.shape

    def to_unconstrained(self):
        return self.constraint.inverse(self.value)

    def with_unconstrained(self, u):
        return eqx.tree_at(lambda p: p.value, self, self.constraint.forward(u).astype(self.value.dtype))

    def log_prior(self):
        if self.prior is None:
            return jnp.zeros((), self.value.dtype)
        # in the value's precision: a prior built from float64 numbers (under x64) must not
        # widen a float32 fit's loss or a float32 chain's log density
        return jnp.sum(self.prior.log_prob(self.value)).astype(self.value.dtype)

    def __jax_array__(self):
        return self.value


def is_parameter(x) -> bool:
    return isinstance(x, Parameter)


def as_parameter(x, constraint=None, stepsize=None) -> Parameter:
    """Wrap a plain value as a free Parameter; pass Parameters through untouched."""
    if isinstance(x, Parameter):
        return x
    return Parameter(x, constraint=constraint, stepsize=stepsize)


def value_of(x):
    """The constrained value of a Parameter, or the array itself."""
    return x.value if isinstance(x, Parameter) else x


def parameters(tree) -> list[Parameter]:
    """All Parameters in a pytree, in flattening order."""
    return [leaf for leaf in jax.tree.leaves(tree, is_leaf=is_parameter) if is_parameter(leaf)]


def parameter_names(tree, free: bool = True) -> list[str]:
    """Each (free) Parameter's path in the pytree, as ``free_parameters`` orders them, e.g.
    ``sources[1].components[0].spectrum``: the labels of fits, errors and samples."""
    flat = jax.tree_util.tree_flatten_with_path(tree, is_leaf=is_parameter)[0]
    return [
        jax.tree_util.keystr(path).lstrip(".")
        for path, leaf in flat
        if is_parameter(leaf) and not (free and leaf.fixed)
    ]


def free_parameters(tree) -> list[Parameter]:
    return [p for p in parameters(tree) if not p.fixed]


def free_slots(tree):
    """Distinct free parameters: a list of (representative, indices into free_parameters(tree)).
    Parameters with the same ``share`` name form one slot; they must agree in shape and constraint."""
    free = free_parameters(tree)
    slots, by_name = [], {}
    for i, p in enumerate(free):
        if p.share is None:
            slots.append((p, [i]))
            continue
        if p.share in by_name:
            rep, members = slots[by_name[p.share]]
            if rep.value.shape != p.value.shape or rep.constraint != p.constraint:
                raise InputError(
                    f"shared parameter {p.share!r}: shapes {rep.value.shape} vs {p.value.shape} or "
                    f"constraints {rep.constraint} vs {p.constraint} differ"
                )
            members.append(i)
        else:
            by_name[p.share] = len(slots)
            slots.append((p, [i]))
    return slots


def replace_free(tree, new_iter):
    """``tree`` with its free Parameters replaced, in order, by the items of ``new_iter``."""
    leaves, treedef = jax.tree.flatten(tree, is_leaf=is_parameter)
    leaves = [next(new_iter) if is_parameter(x) and not x.fixed else x for x in leaves]
    return jax.tree.unflatten(treedef, leaves)


def with_value(p: Parameter, value) -> Parameter:
    """``p`` with its value replaced by the array ``value``, without ``__init__``'s checks and
    conversions (``tree_at`` or a new Parameter cost ~0.2-0.5 ms each on the host, and a fit's
    result sets hundreds). ``value`` is the first leaf of a Parameter."""
    leaves, treedef = jax.tree.flatten(p)
    return jax.tree.unflatten(treedef, [value, *leaves[1:]])


def set_values(tree, values):
    """Return ``tree`` with the free parameters set from constrained ``values``, one per slot of
    :func:`free_slots` (shared parameters get the same value)."""
    free = free_parameters(tree)
    new = [None] * len(free)
    for (_, members), v in zip(free_slots(tree), values, strict=True):
        for i in members:
            new[i] = with_value(free[i], jnp.asarray(v, free[i].value.dtype))
    return replace_free(tree, iter(new))


def with_free(tree, names, priors=None):
    """``tree`` with only the Parameters at ``names`` free and every other one fixed; ``priors``
    maps paths (free or not) to the distributions set on them.

    Paths are those of :func:`parameter_names` with ``free=False``, e.g. ``"sources[1].offset"``:
    ``with_free(scene, ["sources[1].components[0].spectrum", "sources[1].offset"])`` samples a
    star's spectrum and centre with its neighbours held at their fitted shape and flux.
    """
    priors = dict(priors or {})
    paths = parameter_names(tree, free=False)
    unknown = sorted((set(names) | set(priors)) - set(paths))
    if unknown:
        raise InputError(f"no parameters at {unknown}; the tree's parameters are {paths}")
    keep = set(names)
    flat, treedef = jax.tree_util.tree_flatten_with_path(tree, is_leaf=is_parameter)
    leaves = []
    for path, leaf in flat:
        if is_parameter(leaf):
            name = jax.tree_util.keystr(path).lstrip(".")
            leaf = Parameter(
                leaf.value,
                leaf.constraint,
                prior=priors.get(name, leaf.prior),
                fixed=name not in keep,
                stepsize=leaf.stepsize,
                dtype=leaf.value.dtype,
                share=leaf.share,
            )
        leaves.append(leaf)
    return jax.tree.unflatten(treedef, leaves)


def log_prior(tree):
    """Sum of the free parameters' log priors (a shared parameter counts once)."""
    terms = [p.log_prior() for p, _ in free_slots(tree) if p.prior is not None]
    return sum(terms[1:], terms[0]) if terms else jnp.zeros((), jnp.float32)


def _check_value(value, constraint):
    """A concrete initial value must lie inside its constraint (else the fit starts at NaN)."""
    if isinstance(value, jax.core.Tracer):
        return
    v = np.asarray(value)
    if not np.all(np.isfinite(v)):
        raise InputError(f"Parameter value has {int(np.sum(~np.isfinite(v)))} non-finite entries: {v}")
    if isinstance(constraint, Positive) and np.any(v <= 0):
        raise InputError(f"Parameter value must be > 0 for a positive constraint, got {v}")
    if isinstance(constraint, Interval) and np.any((v <= constraint.lower) | (v >= constraint.upper)):
        raise InputError(f"Parameter value {v} outside the open interval ({constraint.lower}, {constraint.upper})")
    if isinstance(constraint, UnitDisk) and np.any(np.sum(v**2, axis=-1) >= constraint.radius**2):
        raise InputError(f"Parameter value {v} has norm >= {constraint.radius} (unit-disk constraint)")


def _check_prior(prior, shape):
    """A prior needs ``log_prob``, and its shape must broadcast with the value's to no more
    elements than the value has (else ``log_prob`` would count the value several times)."""
    if prior is None:
        return None
    if not callable(getattr(prior, "log_prob", None)):
        raise InputError(f"A prior must be a distribution with log_prob (numpyro, distrax), got {prior!r}")
    batch, event = getattr(prior, "batch_shape", None), getattr(prior, "event_shape", None)
    if batch is not None and event is not None:
        prior_shape = tuple(batch) + tuple(event)
        try:
            ok = np.prod(np.broadcast_shapes(prior_shape, tuple(shape)), dtype=int) == np.prod(shape, dtype=int)
        except ValueError:
            ok = False
        if not ok:
            raise InputError(f"prior of shape {prior_shape} does not fit a parameter of shape {tuple(shape)}")
    return prior


def _check_stepsize(stepsize):
    if isinstance(stepsize, jax.core.Tracer):
        return
    s = np.asarray(stepsize)
    if not np.all(np.isfinite(s) & (s > 0)):
        raise InputError(f"Parameter stepsize must be finite and > 0, got {s}")
