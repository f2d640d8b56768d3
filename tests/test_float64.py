"""Precision under the user's control: a float64 observation gives a float64 fit end to end.

x64 is switched on in a subprocess only: the test session itself stays in JAX's default float32.
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

SCRIPT = Path(__file__).parent / "scripts" / "float64_fit.py"


def _run(dtype):
    proc = subprocess.run([sys.executable, str(SCRIPT), dtype], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_float64_fit_is_float64_throughout():
    r64 = _run("float64")
    assert r64["model_dtype"] == "float64"
    assert r64["param_dtypes"] == ["float64"]
    assert abs(r64["chi2_dof"] - 1) < 0.03
    grad, fd = np.asarray(r64["grad"]), np.asarray(r64["fd"])
    # every stage in float64: the gradient matches central differences (step 1e-6) of a ~1e4
    # loss to 1e-5 (a float32 stage leaves ~1e-3 rounding in the loss: errors ~1e3 at this step)
    np.testing.assert_allclose(grad, fd, rtol=1e-5, atol=1e-5 * np.abs(grad).max())
    # and the same check with a float32 observation fails: the difference is real
    r32 = _run("float32")
    g32, fd32 = np.asarray(r32["grad"]), np.asarray(r32["fd"])
    assert np.max(np.abs(g32 - fd32)) > 10 * np.max(np.abs(grad - fd))
