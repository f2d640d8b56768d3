"""The README's core-API example runs as printed and fits its simulated blend."""

import re
from pathlib import Path

import numpy as np
import pytest

README = Path(__file__).resolve().parents[3] / "README.md"


def _run_block(marker: str) -> dict:
    """Run the README's python block that contains ``marker``; its namespace."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    code = next(b for b in blocks if marker in b)
    ns: dict = {}
    exec(compile(code, str(README), "exec"), ns)
    return ns


def test_core_api_example_runs_and_fits():
    ns = _run_block("simulate_blend(seed=1)")
    info, sim, fluxes = ns["info"], ns["sim"], ns["fluxes"]
    assert info.converged and 0.9 < info.chi2_dof < 1.1
    assert np.median(np.abs(fluxes / sim.truth["flux"] - 1)) < 0.02
    errors, sc = ns["errors"], ns["sc"]
    assert list(errors) == sc.parameter_names(ns["fitted"]) and len(errors) == len(sc.free_parameters(ns["fitted"]))
    assert errors["sources[0].offset"].shape == (2,) and np.all(np.isfinite(errors["sources[0].offset"]))


@pytest.mark.slow
def test_several_instruments_example_runs_and_fits():
    pytest.importorskip("galsim")
    ns = _run_block("simulate_pair(seed=2)")
    info, pair, fitted = ns["info"], ns["pair"], ns["fitted"]
    assert info.converged and 0.9 < info.chi2_dof < 1.1
    fluxes = ns["sc"].simulate.source_fluxes(fitted)
    assert np.median(np.abs(fluxes / pair.truth["flux"] - 1)) < 0.1


def test_galsim_blend_example_runs_and_deblends():
    pytest.importorskip("galsim")
    ns = _run_block("simulate_galsim_blend(seed=3)")
    blend, result = ns["blend"], ns["result"]
    cat = result["catalog"].to_dataset()
    truth = blend.truth
    # every true source found within 2 px, and its per-band flux close to the truth
    d = np.hypot(truth["y"].values[:, None] - cat["y"].values, truth["x"].values[:, None] - cat["x"].values)
    match = d.argmin(axis=1)
    assert np.all(d.min(axis=1) < 2.0) and len(set(match)) == len(match)
    df = cat["flux"].values[match] / truth["flux"].values - 1
    assert np.median(np.abs(df)) < 0.06, np.round(df, 3)
