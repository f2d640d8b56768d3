"""Chains spread over several devices: two host CPU devices stand in for accelerators."""

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("blackjax")

SCRIPT = """
import json, jax, numpy as np
import scarlet2 as sc
from scarlet2.infer.sample import chain_sharding
from tests.unit.infer.test_sample import _problem
_, fitted, obs = _problem(0)
post = sc.sample(fitted, obs, num_chains=4, num_warmup=150, num_samples=150, seed=0, progress=False)
table = sc.summary(post)
flux = table[table.index.str.startswith("flux[")]
print(json.dumps({"devices": len(jax.devices()), "sharded": chain_sharding("cpu", 4) is not None,
                  "odd": chain_sharding("cpu", 3) is None, "r_hat": float(flux["r_hat"].max()),
                  "shape": list(post["posterior"]["flux"].shape)}))
"""


def test_chains_spread_over_two_devices():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2", JAX_PLATFORMS="cpu")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, cwd=root, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    r = json.loads(out.stdout.strip().splitlines()[-1])
    assert r["devices"] == 2 and r["sharded"] and r["odd"]
    assert r["shape"] == [4, 150, 2, 3] and r["r_hat"] < 1.05
