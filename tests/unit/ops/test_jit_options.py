"""Compiler options an XLA build does not know are dropped, not fatal (jaxlib 0.11 on a GPU
machine refused ``xla_cpu_use_fusion_emitters`` and every CPU compilation failed)."""

import jax.numpy as jnp
import numpy as np

from scarlet2.ops import jit


def _double(x):
    return 2 * x


def test_an_unknown_option_is_dropped_and_remembered(monkeypatch):
    options = {"cpu": {**jit.COMPILER_OPTIONS["cpu"], "xla_no_such_option_in_any_build": True}}
    monkeypatch.setattr(jit, "COMPILER_OPTIONS", options)
    monkeypatch.setattr(jit, "_UNKNOWN", {})
    out = jit.compiled(_double, "cpu")(jnp.arange(3.0))
    np.testing.assert_array_equal(np.asarray(out), [0.0, 2.0, 4.0])
    # (a newer jaxlib may refuse one of ours as well)
    assert "xla_no_such_option_in_any_build" in jit._UNKNOWN["cpu"]
    kept = jit.compiler_options("cpu")
    assert "xla_no_such_option_in_any_build" not in kept
    assert kept["xla_backend_optimization_level"] == 1  # known to every build: kept
