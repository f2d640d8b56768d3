"""Process-wide settings the user makes explicitly: XLA's CPU thread pool."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import scarlet2 as sc

_PROBE = r"""
import json, os, sys
import scarlet2 as sc
previous = sc.set_cpu_threads(int(sys.argv[1]))
import jax, jax.numpy as jnp
jax.block_until_ready(jnp.fft.rfft2(jnp.ones((5, 100, 90))))  # starts the CPU client
pool = sum(open(f"/proc/self/task/{t}/comm").read().strip() == "tf_XLAEigen" for t in os.listdir("/proc/self/task"))
try:
    sc.set_cpu_threads(int(sys.argv[1]) + 1)
    late = None
except RuntimeError as err:
    late = str(err)
sc.set_cpu_threads(int(sys.argv[1]))  # the setting in force: accepted
print(json.dumps(dict(previous=previous, pool=pool, late=late)))
"""


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="counts threads through Linux's /proc")
@pytest.mark.parametrize("n", [1, 3])
def test_set_cpu_threads_sizes_xla_pool(n):
    env = {k: v for k, v in os.environ.items() if k != "PJRT_NPROC"}
    proc = subprocess.run([sys.executable, "-c", _PROBE, str(n)], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["previous"] is None
    assert out["pool"] == n  # XLA's intra-op threads, one per requested thread
    assert out["late"] is not None and "PJRT_NPROC" in out["late"] and "before the first JAX computation" in out["late"]


@pytest.mark.parametrize("bad", [0, -2, 1.5, True, "2"])
def test_set_cpu_threads_rejects_non_positive(bad):
    with pytest.raises(ValueError, match="positive number of threads"):
        sc.set_cpu_threads(bad)
