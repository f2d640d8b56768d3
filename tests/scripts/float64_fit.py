"""Run by tests/test_float64.py in a fresh process with x64 enabled (never switched on in the
test session itself, where it would change every other test's dtypes)."""

import json
import sys

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import scarlet2 as sc  # noqa: E402
from scarlet2 import fitting  # noqa: E402
from scarlet2.packing import pack_host  # noqa: E402
from scarlet2.parameter import free_parameters  # noqa: E402
from scarlet2.simulate import simulate_blend  # noqa: E402


def main(dtype_name):
    dtype = {"float64": jnp.float64, "float32": jnp.float32}[dtype_name]
    sim = simulate_blend(2)
    obs = sc.Observation(sim.images, variance=sim.variance, psf=sim.psfs, bands=sim.bands, dtype=dtype)
    scene = sc.initialize(obs, sim.positions)
    fitted, info = sc.fit(scene, obs, max_iter=300, progress=False)
    core, renderers = fitting.prepare(fitted, [obs])
    u = jnp.asarray(pack_host(core, dtype))
    loss = jax.jit(fitting._loss_u)
    grad = np.asarray(jax.jit(jax.grad(fitting._loss_u))(u, core, renderers))
    # central differences in every unconstrained parameter, at two small steps: the tables are
    # linear in ln k, so their slope has kinks, and a step that straddles one (for some k of the
    # grid) gives the mean of the two one-sided slopes instead of the gradient
    fd = {}
    for h in (1e-6, 2.5e-7):
        fd[h] = []
        for k in range(u.size):
            e = jnp.zeros_like(u).at[k].set(h)
            fd[h].append((float(loss(u + e, core, renderers)) - float(loss(u - e, core, renderers))) / (2 * h))
    out = {
        "model_dtype": str(sc.render(fitted, obs).dtype),
        "param_dtypes": sorted({str(p.value.dtype) for p in free_parameters(fitted)}),
        "chi2_dof": info.chi2_dof,
        "grad": grad.tolist(),
        "fd": fd[1e-6],
        "fd_small": fd[2.5e-7],
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1])
