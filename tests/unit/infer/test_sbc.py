"""Simulation-based calibration, the small version of benchmarks/sbc.py (slow): the truths'
ranks among the posterior draws are uniform and central intervals cover as they claim."""

import sys
from pathlib import Path

import pytest

pytest.importorskip("blackjax")
sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "benchmarks"))


@pytest.mark.slow
def test_sbc_ranks_are_uniform_in_float32():
    import sbc

    ranks, names, n_draws, _ = sbc.run(problems=60, seed=7, num_warmup=250, num_samples=300, progress=False)
    cal = sbc.calibration(ranks, n_draws)
    assert ranks.shape == (60, len(names)) == (60, 13)
    assert cal["pooled_p"] > 0.01, cal
    # 60 problems x 13 parameters: binomial sd of a pooled coverage is ~1.3 points, but the
    # parameters of one problem are correlated; +-8 points
    assert abs(cal["coverage68"] - 0.68) < 0.08 and abs(cal["coverage95"] - 0.95) < 0.05, cal
