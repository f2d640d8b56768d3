"""Smoke test: the side-by-side harness runs end to end on a tiny case (our side only)."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "benchmarks"))

import compare  # noqa: E402


@pytest.mark.slow  # benchmark scripts: nightly, with the benchmarks
def test_harness_runs_on_tiny_case(tmp_path):
    out = compare.main(["--cases", "tiny", "--repeat", "1", "--iters", "40", "--no-reference", "--out", str(tmp_path)])
    m = out["summary"]["tiny"]["ours"]
    assert m["per_iter_ms"] > 0 and m["total_s"] > 0 and m["peak_rss_mb"] > 50
    assert 0.5 < m["chi2_per_pixel"] < 50 and 0 <= m["flux_err_median"] < 1
    # compile time is measured from JAX's events: the first fit traces and compiles, the refit not
    assert 0 < m["xla_s"] < m["compile_s"] < m["total_s"]
    assert m["refit_xla_s"] == 0
    saved = json.loads((tmp_path / "latest.json").read_text())
    assert saved["meta"]["iters"] == 40
    assert "| tiny | ours |" in (tmp_path / "latest.md").read_text()


@pytest.mark.slow
def test_micro_benchmark_setup_runs():
    import jax
    import test_micro

    from scarlet2.infer.objective import loss_flat

    core, renderers, u = test_micro._setup(2, shape=(48, 48))
    loss, grad = jax.value_and_grad(loss_flat)(u, core, renderers)
    assert bool(jax.numpy.isfinite(loss)) and grad.shape == u.shape


@pytest.mark.slow
def test_chunk_cost_runs_on_tiny_case():
    import chunk_cost

    out = chunk_cost.main(["--case", "tiny", "--variants", "full,no-sersic", "--repeat", "1", "--runs", "2"])
    full, bare = out["full"], out["no-sersic"]
    assert "Sersic" in full["groups"] and "Sersic" not in bare["groups"]
    assert bare["n_sources"] < full["n_sources"]
    assert all(full[k] > 0 for k in ("trace_s", "lower_s", "xla_s", "iter_ms"))
