"""The Sersic transform's hand-written VJP (gradient in n and in the quadratic form of k^2 from
the table windows, the form's part as one dot) against JAX's autodiff of the same lookup."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from scarlet2.fourier import kgrid, shear_k2, shear_quadratic
from scarlet2.morphology import sersic_fourier, sersic_fourier_quadratic

KY, KX = kgrid((45, 45))
WEIGHTS = jnp.asarray(np.random.default_rng(0).normal(size=(45, 23)), jnp.float32)


def _autodiff(p):
    n, r_e, g1, g2 = p
    return jnp.sum(WEIGHTS * sersic_fourier(n, shear_k2(KY, KX, g1, g2) * r_e**2) ** 2)


def _custom(p):
    n, r_e, g1, g2 = p
    return jnp.sum(WEIGHTS * sersic_fourier_quadratic(n, shear_quadratic(g1, g2, r_e**2), KY, KX) ** 2)


PARAMS = [  # n, r_e (px), g1, g2: round to elongated, compact to extended, low to high index
    (0.5, 0.5, 0.0, 0.0),
    (1.0, 3.0, 0.3, -0.2),
    (2.7, 1.2, -0.45, 0.35),
    (4.0, 10.0, 0.1, 0.55),
    (6.0, 6.5, -0.6, 0.0),
]


@pytest.mark.parametrize("p", PARAMS)
def test_value_and_gradient_match_autodiff(p):
    p = jnp.asarray(p, jnp.float32)
    v_auto, g_auto = jax.value_and_grad(_autodiff)(p)
    v_custom, g_custom = jax.value_and_grad(_custom)(p)
    assert float(v_custom) == pytest.approx(float(v_auto), rel=1e-5)
    np.testing.assert_allclose(g_custom, g_auto, rtol=2e-4, atol=2e-4 * float(jnp.max(jnp.abs(g_auto))))


@pytest.mark.parametrize("p", PARAMS[1:4])
def test_hessian_matches_autodiff(p):
    # forward-over-reverse (jax.hessian, as scarlet2.uncertainties uses) through the custom VJP
    p = jnp.asarray(p, jnp.float32)
    h_auto, h_custom = jax.hessian(_autodiff)(p), jax.hessian(_custom)(p)
    np.testing.assert_allclose(h_custom, h_auto, rtol=1e-3, atol=1e-3 * float(jnp.max(jnp.abs(h_auto))))


def test_vmapped_gradient_matches_per_component():
    ps = jnp.asarray(PARAMS, jnp.float32)
    batched = jax.vmap(jax.grad(_custom))(ps)
    for p, g in zip(ps, batched, strict=True):
        np.testing.assert_allclose(g, jax.grad(_autodiff)(p), rtol=2e-4, atol=1e-6)
