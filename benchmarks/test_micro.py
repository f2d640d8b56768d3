"""Micro-benchmarks (pytest-benchmark): render, log-likelihood and gradient by number of sources.

    python -m pytest benchmarks/test_micro.py --benchmark-only

Not collected by the default test run (testpaths = tests).
"""

import jax
import numpy as np
import pytest

import scarlet2 as sc
from scarlet2.infer.objective import log_likelihood_core, loss_flat
from scarlet2.infer.packing import pack
from scarlet2.render.canvas import render_canvas
from scarlet2.render.observe import prepare


def _setup(n_sources, shape=(128, 128)):
    rng = np.random.default_rng(n_sources)
    psf = np.asarray(sc.MoffatPSF(3.0).image((41, 41), n_bands=5))
    obs = sc.Observation(rng.normal(0, 1, (5,) + shape), weights=np.ones((5,) + shape), psf=psf, bands=list("grizy"))
    with sc.Scene(sc.Frame(list("grizy"), shape)) as scene:
        for _ in range(n_sources):
            sc.Source(
                rng.uniform(10, shape[0] - 10, 2),
                spectrum=rng.uniform(50, 100, 5),
                morphology=sc.Sersic(rng.uniform(1, 4), rng.uniform(1.5, 4), rng.uniform(-0.2, 0.2, 2)),
                box=35,
            )
    core, renderers = prepare(scene, obs)
    return core, renderers, pack(core)


@pytest.mark.parametrize("n", [1, 4, 16, 64])
def test_render(benchmark, n):
    core, renderers, _ = _setup(n)
    f = jax.jit(lambda s: renderers[0](render_canvas(s, renderers[0].geometry)))
    jax.block_until_ready(f(core))
    benchmark(lambda: jax.block_until_ready(f(core)))


@pytest.mark.parametrize("n", [1, 4, 16, 64])
def test_log_likelihood(benchmark, n):
    core, renderers, _ = _setup(n)
    f = jax.jit(log_likelihood_core)
    jax.block_until_ready(f(core, renderers))
    benchmark(lambda: jax.block_until_ready(f(core, renderers)))


@pytest.mark.parametrize("n", [1, 4, 16, 64])
def test_gradient(benchmark, n):
    core, renderers, u = _setup(n)
    f = jax.jit(jax.value_and_grad(loss_flat))
    jax.block_until_ready(f(u, core, renderers))
    benchmark(lambda: jax.block_until_ready(f(u, core, renderers)))
