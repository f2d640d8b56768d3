"""Constraints: bijections between a parameter's allowed set and unconstrained space.

Each constraint is a small frozen dataclass (hashable, compared by value) so that two scenes with
the same constraints share one compiled fit. Where numpyro has the bijection we use it.
"""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np
from numpyro.distributions import constraints as npc
from numpyro.distributions import transforms as npt

from ..errors import InputError


class Constraint:
    """Base class: ``forward`` maps unconstrained -> constrained, ``inverse`` the other way."""

    def transform(self) -> npt.Transform:
        raise NotImplementedError

    def forward(self, u):
        return self.transform()(u)

    def inverse(self, x):
        return self.transform().inv(x)

    def forward_numpy(self, u):
        """``forward`` in numpy on the host (no compilation); None where not provided."""
        return None

    def inverse_numpy(self, x):
        """``inverse`` in numpy on the host; None where not provided."""
        return None

    def unconstrained_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """Shape of the unconstrained values for constrained values of ``shape`` (static)."""
        return tuple(shape)

    def log_abs_det_jacobian(self, u):
        """log |d forward / du| summed over the parameter (for sampling in unconstrained space)."""
        t = self.transform()
        return jnp.sum(t.log_abs_det_jacobian(u, t(u)))


@dataclasses.dataclass(frozen=True)
class Real(Constraint):
    def transform(self):
        return npt.IdentityTransform()

    def forward_numpy(self, u):
        return np.asarray(u)

    def inverse_numpy(self, x):
        return np.asarray(x, np.float64)


@dataclasses.dataclass(frozen=True)
class Positive(Constraint):
    """x > 0 through exp: steps in unconstrained space are relative steps in x."""

    def transform(self):
        return npt.biject_to(npc.positive)

    def forward_numpy(self, u):
        return np.exp(u)

    def inverse_numpy(self, x):
        return np.log(np.asarray(x, np.float64))


@dataclasses.dataclass(frozen=True)
class Interval(Constraint):
    lower: float
    upper: float

    def __post_init__(self):
        if not self.lower < self.upper:
            raise InputError(f"Interval constraint needs lower < upper, got ({self.lower}, {self.upper})")

    def transform(self):
        return npt.biject_to(npc.interval(self.lower, self.upper))

    def forward_numpy(self, u):
        return self.lower + (self.upper - self.lower) / (1 + np.exp(-np.asarray(u, np.float64)))

    def inverse_numpy(self, x):
        t = (np.asarray(x, np.float64) - self.lower) / (self.upper - self.lower)
        return np.log(t) - np.log1p(-t)


@dataclasses.dataclass(frozen=True)
class Simplex(Constraint):
    """Non-negative entries summing to one (stick breaking); one fewer unconstrained entry."""

    def transform(self):
        return npt.biject_to(npc.simplex)

    def unconstrained_shape(self, shape):
        return tuple(shape[:-1]) + (shape[-1] - 1,)


@dataclasses.dataclass(frozen=True)
class UnitDisk(Constraint):
    """A 2-vector of norm < ``radius`` (ellipticity): x = radius * u / sqrt(1 + |u|^2).

    Smooth everywhere, including at the round shape u = 0 where tanh-of-norm maps are not.
    """

    radius: float = 0.95

    def forward(self, u):
        return self.radius * u / jnp.sqrt(1 + jnp.sum(u**2, axis=-1, keepdims=True))

    def forward_numpy(self, u):
        u = np.asarray(u, np.float64)
        return self.radius * u / np.sqrt(1 + np.sum(u**2, axis=-1, keepdims=True))

    def inverse(self, x):
        y = x / self.radius
        return y / jnp.sqrt(jnp.clip(1 - jnp.sum(y**2, axis=-1, keepdims=True), 1e-12))

    def inverse_numpy(self, x):
        y = np.asarray(x, np.float64) / self.radius
        return y / np.sqrt(np.clip(1 - np.sum(y**2, axis=-1, keepdims=True), 1e-12, None))

    def log_abs_det_jacobian(self, u):
        # Jacobian of u -> u / sqrt(1 + |u|^2) in 2-d: (1 + |u|^2)^(-2)
        s = jnp.sum(u**2, axis=-1)
        return jnp.sum(2 * jnp.log(self.radius) - 2 * jnp.log1p(s))


def as_constraint(spec) -> Constraint:
    """Turn a user spec (None, "positive", "real", "simplex", "unit_disk", (lo, hi)) into a Constraint."""
    if spec is None or spec == "real":
        return Real()
    if isinstance(spec, Constraint):
        return spec
    if isinstance(spec, str):
        table = {"positive": Positive, "simplex": Simplex, "unit_disk": UnitDisk}
        if spec not in table:
            raise InputError(f"Unknown constraint {spec!r}; use one of {sorted(table) + ['real']} or (lower, upper)")
        return table[spec]()
    if isinstance(spec, tuple | list) and len(spec) == 2:
        return Interval(float(spec[0]), float(spec[1]))
    raise InputError(f"Cannot interpret constraint {spec!r}")
