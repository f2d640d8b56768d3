"""A survey killed with SIGKILL at any moment loses nothing recorded as finished, and a rerun
finishes the rest: the same catalog and mosaics as an uninterrupted run, no region done twice."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import xarray as xr

import scarlet2 as sc
from scarlet2.survey.output import read_records

from .conftest import TILE


def _command(mosaic, out):
    return [sys.executable, "-m", "scarlet2.cli", "survey", str(mosaic), "--out", str(out), "--tile", str(TILE),
            "--workers", "0", "--quiet"]  # fmt: skip


@pytest.mark.parametrize("kill_after", [2])
def test_sigkill_then_resume(mosaic, tmp_path_factory, kill_after):
    pytest.importorskip("distributed")
    work = tmp_path_factory.mktemp("resume")
    env = dict(os.environ, SCARLET2_CACHE_DIR=str(tmp_path_factory.getbasetemp() / "xla-cache"))
    whole = work / "whole.zarr"
    subprocess.run(_command(mosaic, whole), env=env, check=True, timeout=900)

    out = work / "killed.zarr"
    proc = subprocess.Popen(_command(mosaic, out), env=env)
    deadline = time.monotonic() + 600
    finished = {}
    while time.monotonic() < deadline and proc.poll() is None:
        if out.exists() and (out / "zarr.json").exists():
            try:
                finished = read_records(str(out))
            except Exception:  # read while the run writes: try again
                finished = {}
            if len(finished) >= kill_after:
                proc.send_signal(signal.SIGKILL)
                break
        time.sleep(0.02)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    before = read_records(str(out))
    assert kill_after <= len(before) < 9
    result = subprocess.run(_command(mosaic, out), env=env, timeout=900, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert f"{9 - len(before)} fitted now, {len(before)} done before" in result.stderr
    after = read_records(str(out))
    assert len(after) == 9 and all(r["status"] == "done" for r in after.values())
    for name, rec in before.items():  # finished before the kill: kept, not redone
        assert after[name] == rec
    a, b = sc.open_result(whole), sc.open_result(out)
    xr.testing.assert_identical(a["catalog"].to_dataset(), b["catalog"].to_dataset())
    for name in ("model", "residual"):
        assert np.array_equal(a["model"][name].values, b["model"][name].values, equal_nan=True)
