"""Run by tests/unit/infer/test_float64.py in a fresh process with x64 enabled (never switched on in the
test session itself, where it would change every other test's dtypes)."""

import json
import sys

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import scarlet2 as sc  # noqa: E402
from scarlet2 import free_parameters  # noqa: E402
from scarlet2.infer.objective import loss_flat  # noqa: E402
from scarlet2.infer.packing import pack_host  # noqa: E402
from scarlet2.render.observe import prepare  # noqa: E402
from scarlet2.simulate import simulate_blend  # noqa: E402

STEPS = (1e-6, 2.5e-7, 1e-7)


def main(dtype_name):
    dtype = {"float64": jnp.float64, "float32": jnp.float32}[dtype_name]
    sim = simulate_blend(2)
    obs = sc.Observation(sim.images, variance=sim.variance, psf=sim.psfs, bands=sim.bands, dtype=dtype)
    scene = sc.initialize(obs, sim.positions)
    fitted, info = sc.fit(scene, obs, max_iter=300, progress=False)
    core, renderers = prepare(fitted, [obs])
    u = jnp.asarray(pack_host(core, dtype))
    loss = jax.jit(loss_flat)
    grad = np.asarray(jax.jit(jax.grad(loss_flat))(u, core, renderers))
    # one-sided differences in every unconstrained parameter, forward and backward, at three
    # small steps. The tables are linear in ln k, so the loss's slope has kinks (one wherever a
    # k of some box's grid crosses a table node: a few entries of 125 have one within 1e-6),
    # and at a kink the gradient is one of the two one-sided slopes, not the central difference
    l0 = float(loss(u, core, renderers))
    fwd, bwd = {}, {}
    for h in STEPS:
        fwd[h], bwd[h] = [], []
        for k in range(u.size):
            e = jnp.zeros_like(u).at[k].set(h)
            fwd[h].append((float(loss(u + e, core, renderers)) - l0) / h)
            bwd[h].append((l0 - float(loss(u - e, core, renderers))) / h)
    out = {
        "model_dtype": str(sc.render(fitted, obs).dtype),
        "param_dtypes": sorted({str(p.value.dtype) for p in free_parameters(fitted)}),
        "chi2_dof": info.chi2_dof,
        "grad": grad.tolist(),
        "steps": list(STEPS),
        "forward": [fwd[h] for h in STEPS],
        "backward": [bwd[h] for h in STEPS],
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1])
