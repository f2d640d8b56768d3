"""Precision under the user's control: a float64 observation gives a float64 fit end to end.

x64 is switched on in a subprocess only: the test session itself stays in JAX's default float32.
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).parent / "scripts" / "float64_fit.py"


def _run(dtype):
    proc = subprocess.run([sys.executable, str(SCRIPT), dtype], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.slow  # a fresh process with x64 and a fit: ~25 s
def test_float64_fit_is_float64_throughout():
    r64 = _run("float64")
    assert r64["model_dtype"] == "float64"
    assert r64["param_dtypes"] == ["float64"]
    assert abs(r64["chi2_dof"] - 1) < 0.03
    grad = np.asarray(r64["grad"])
    # every stage in float64: the gradient matches difference quotients of a ~1e4 loss to 1e-5 (a
    # float32 stage leaves ~1e-3 rounding in the loss: errors ~1e3 at these steps)
    tol = 1e-5 * np.abs(grad) + 1e-5 * np.abs(grad).max()
    err = _gradient_error(r64)
    assert np.all(err <= tol), (np.flatnonzero(err > tol), grad[err > tol])
    # and the same check with a float32 observation fails: the difference is real
    r32 = _run("float32")
    assert np.max(_gradient_error(r32)) > 10 * np.max(err)


def _gradient_error(result):
    """Per entry, the gradient's distance to the nearest of its finite-difference estimates:
    central differences at the two larger steps, and each side's one-sided differences at the
    two smaller steps extrapolated to step 0 (Richardson). The loss's slope has kinks (the
    Sersic tables are linear in ln k): where one lies within a step, the central difference is
    the mean of two one-sided slopes, and the gradient is one of them (seen: 3 of 125 entries
    at both central steps, each within 4e-5 of one extrapolated side)."""
    grad = np.asarray(result["grad"])
    (_, h2, h3), fwd, bwd = result["steps"], np.asarray(result["forward"]), np.asarray(result["backward"])
    central = [(fwd[i] + bwd[i]) / 2 for i in (0, 1)]
    # D(h) = g + c h: g = D(h3) + (D(h3) - D(h2)) h3 / (h2 - h3)
    one_sided = [d[2] + (d[2] - d[1]) * h3 / (h2 - h3) for d in (fwd, bwd)]
    return np.min([np.abs(grad - est) for est in central + one_sided], axis=0)


MIXED = """
import json, jax, numpy as np, numpyro.distributions as dist
import scarlet2 as sc
bands, shape = ["g", "r"], (24, 24)
psf = np.asarray(sc.MoffatPSF(3.0).image((15, 15), n_bands=2))
prior = dist.LogNormal(np.log(np.array([300.0, 200.0])), 0.5)  # float64 numbers under x64
with sc.Scene(sc.Frame(bands, shape)) as scene:
    sc.Source((12.3, 11.8), spectrum=sc.Parameter(np.array([250.0, 180.0]), "positive", prior=prior),
              morphology=sc.Sersic(1.0, 2.0, (0.1, 0.0)), box=31)
blank = sc.Observation(np.zeros((2, *shape)), weights=np.ones((2, *shape)), psf=psf, bands=bands)
data = np.asarray(sc.render(scene, blank)) + np.random.default_rng(0).normal(0, 1, (2, *shape))
obs = sc.Observation(data, weights=np.ones((2, *shape)), psf=psf, bands=bands)  # float32 by default
fitted, info = sc.fit(scene, obs, progress=False, max_iter=200)
post = sc.sample(fitted, obs, num_chains=1, num_warmup=20, num_samples=10, progress=False)
fit_dtype = str(fitted.sources[0].components[0].spectrum.value.dtype)
print(json.dumps({"x64": jax.config.jax_enable_x64, "fit_dtype": fit_dtype,
                  "flux_dtype": str(post["posterior"]["flux"].dtype),
                  "lp_finite": bool(np.isfinite(post["sample_stats"]["lp"].values).all()),
                  "target": post.attrs["target_acceptance"]}))
"""


def test_float64_prior_keeps_a_float32_fit_in_float32_and_samples():
    """Under x64, a prior built from float64 numbers must not widen a float32 observation's fit
    (it made the loop's carried types disagree); the chain runs in float64 there, as BlackJAX
    draws its momenta in JAX's default float, and adapts to the float64 target acceptance."""
    pytest.importorskip("blackjax")
    env = dict(__import__("os").environ, JAX_ENABLE_X64="1", JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, "-c", MIXED], capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    assert r == {"x64": True, "fit_dtype": "float32", "flux_dtype": "float64", "lp_finite": True, "target": 0.9}
