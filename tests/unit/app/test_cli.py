"""The console entry point, run as a user would (a subprocess)."""

import shutil
import subprocess
import sys

import numpy as np
import pytest

import scarlet2 as sc


def _scarlet2():
    exe = shutil.which("scarlet2")
    return [exe] if exe else [sys.executable, "-m", "scarlet2.cli"]


def test_demo_writes_outputs(tmp_path):
    out = tmp_path / "demo"
    proc = subprocess.run(
        _scarlet2() + ["demo", "--out", str(out), "--quiet", "--max-iter", "400"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    assert (out / "demo_fit.png").stat().st_size > 10_000
    res = sc.open_result(str(out / "demo_fit.zarr"))
    assert res["catalog"].sizes["source"] == 5  # the demo region holds 5 galaxies
    assert {"ra", "dec"} <= set(res["catalog"].variables)
    assert "chi2/dof" in proc.stderr


def test_fit_with_catalog_csv(tmp_path):
    sim = sc.simulate.simulate_blend(1)
    ds = sc.from_arrays(sim.images, variance=sim.variance, psf=sim.psfs, bands=sim.bands)
    sc.write_zarr(ds, str(tmp_path / "in.zarr"))
    np.savetxt(tmp_path / "cat.csv", sim.positions, delimiter=",", header="y,x", comments="")
    cmd = _scarlet2() + [
        "fit",
        str(tmp_path / "in.zarr"),
        "--out",
        str(tmp_path / "out.zarr"),
        "--catalog",
        str(tmp_path / "cat.csv"),
        "--quiet",
        "--max-iter",
        "300",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    res = sc.open_result(str(tmp_path / "out.zarr"))
    assert res["catalog"].sizes["source"] == len(sim.truth["y"])
    assert "converged" in proc.stderr  # the summary says whether the fit converged
    # an existing output is refused: test_existing_output_is_refused_before_fitting


@pytest.mark.parametrize("args", [["fit"], ["nonsense"]])
def test_bad_arguments(args):
    proc = subprocess.run(_scarlet2() + args, capture_output=True, text=True)
    assert proc.returncode != 0


def test_bad_input_is_a_message_not_a_traceback(tmp_path):
    sim = sc.simulate.simulate_blend(1)
    store = str(tmp_path / "in.zarr")
    sc.write_zarr(sc.from_arrays(sim.images, variance=sim.variance, psf=sim.psfs, bands=sim.bands), store)
    (tmp_path / "cols.csv").write_text("a,b\n1,2\n")
    (tmp_path / "outside.csv").write_text("y,x\n500,5\n")
    out = str(tmp_path / "out.zarr")
    # as a user sees it, in a fresh process; more cases run in-process in test_cli_safety.py
    cases = [([store, "--catalog", str(tmp_path / "outside.csv")], "outside the frame")]
    for args, names in cases:
        proc = subprocess.run(_scarlet2() + ["fit", *args, "--out", out, "--quiet"], capture_output=True, text=True)
        assert proc.returncode == 2, proc.stderr
        assert "scarlet2 fit: error:" in proc.stderr and names in proc.stderr
        assert "Traceback" not in proc.stderr
    # --traceback shows it
    args = [store, "--catalog", str(tmp_path / "cols.csv"), "--out", out, "--quiet", "--traceback"]
    proc = subprocess.run(_scarlet2() + ["fit", *args], capture_output=True, text=True)
    assert proc.returncode != 0 and "Traceback" in proc.stderr


def test_existing_output_is_refused_before_fitting(tmp_path):
    (tmp_path / "out.zarr").mkdir()
    # the input does not exist either: the refusal comes first, without reading or fitting
    cmd = _scarlet2() + ["fit", str(tmp_path / "missing.zarr"), "--out", str(tmp_path / "out.zarr")]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 2 and "exists" in proc.stderr and "fitting" not in proc.stderr


def test_catalog_csv_read_through_fsspec():
    # like the input store, the catalog may be remote; a one-row CSV stays a column of one
    import fsspec

    from scarlet2.cli import _read_catalog

    with fsspec.open("memory://scarlet2-test/cat.csv", "wt") as fh:
        fh.write("y,x\n20.5,30.25\n")
    cat = _read_catalog("memory://scarlet2-test/cat.csv")
    np.testing.assert_array_equal(cat["y"], [20.5])
    np.testing.assert_array_equal(cat["x"], [30.25])
