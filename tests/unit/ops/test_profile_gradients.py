"""The analytic profiles' hand-written VJP (:func:`scarlet2.ops.fourier.quadratic_profile`: the
gradient in the shape index and in the quadratic form of k^2 from the forward's derivatives, the
form's part one dot) against JAX's autodiff of the same transforms, written without it."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import scarlet2 as sc
from scarlet2.ops.fourier import kgrid
from scarlet2.ops.profiles import sersic_fourier

KY, KX = kgrid((45, 45))
WEIGHTS = jnp.asarray(np.random.default_rng(0).normal(size=(45, 23)), jnp.float32)


def _sheared_k2(g1, g2):
    """|S k|^2 for reduced shear (g1, g2), as the profiles computed it before the quadratic form."""
    kxp = (1 + g1) * KX + g2 * KY
    kyp = g2 * KX + (1 - g1) * KY
    return (kxp**2 + kyp**2) / (1.0 - g1**2 - g2**2)


def _reference(kind, p):
    index, size, g1, g2 = p
    k2 = _sheared_k2(g1, g2)
    if kind == "sersic":
        return sersic_fourier(index, k2 * size**2)
    if kind == "gaussian":
        return jnp.exp(-0.5 * k2 * size**2)
    r0 = sc.Spergel(index, size).r0()
    return (1 + k2 * r0**2) ** (-(1 + index))


def _library(kind, p):
    index, size, g1, g2 = p
    e = jnp.stack([g1, g2])
    morph = {"sersic": lambda: sc.Sersic(index, size, e), "gaussian": lambda: sc.Gaussian(size, e)}
    morph = morph.get(kind, lambda: sc.Spergel(index, size, e))()
    return morph.fourier(KY, KX)


def _loss(fourier, kind):
    return lambda p: jnp.sum(WEIGHTS * fourier(kind, p) ** 2)


PARAMS = [  # index (Sersic n, Spergel nu + 1.5), size (px), g1, g2: round to elongated
    (0.5, 0.5, 0.0, 0.0),
    (1.0, 3.0, 0.3, -0.2),
    (2.7, 1.2, -0.45, 0.35),
    (4.0, 10.0, 0.1, 0.55),
    (6.0, 6.5, -0.6, 0.0),
]
KINDS = ["sersic", "gaussian", "spergel"]


def _params(kind, p):
    return jnp.asarray(p if kind != "spergel" else (p[0] - 1.5,) + p[1:], jnp.float32)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("p", PARAMS)
def test_value_and_gradient_match_autodiff(kind, p):
    p = _params(kind, p)
    v_ref, g_ref = jax.value_and_grad(_loss(_reference, kind))(p)
    v_lib, g_lib = jax.value_and_grad(_loss(_library, kind))(p)
    assert float(v_lib) == pytest.approx(float(v_ref), rel=1e-5)
    np.testing.assert_allclose(g_lib, g_ref, rtol=2e-4, atol=2e-4 * float(jnp.max(jnp.abs(g_ref))))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("mode", ["fwd-over-rev", "rev-over-rev"])
def test_hessian_matches_autodiff(kind, mode):
    # jax.hessian (forward-over-reverse, as scarlet2.uncertainties uses) and reverse-over-reverse
    # through the custom VJP; the grid's k = 0 pixel must not turn the second derivatives NaN
    hessian = jax.hessian if mode == "fwd-over-rev" else (lambda f: jax.jacrev(jax.jacrev(f)))
    p = _params(kind, PARAMS[2])
    h_ref, h_lib = hessian(_loss(_reference, kind))(p), hessian(_loss(_library, kind))(p)
    np.testing.assert_allclose(h_lib, h_ref, rtol=1e-3, atol=1e-3 * float(jnp.max(jnp.abs(h_ref))))


def test_vmapped_gradient_matches_per_component():
    ps = jnp.asarray(PARAMS, jnp.float32)
    batched = jax.vmap(jax.grad(_loss(_library, "sersic")))(ps)
    for p, g in zip(ps, batched, strict=True):
        np.testing.assert_allclose(g, jax.grad(_loss(_reference, "sersic"))(p), rtol=2e-4, atol=1e-6)
