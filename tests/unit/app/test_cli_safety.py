"""The command line never destroys results and refuses bad input before any work: run in-process
through ``scarlet2.cli.main`` (exit status and stderr as a user sees them), and the store swap
killed with SIGKILL in a subprocess."""

import os
import re
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import xarray as xr

import scarlet2 as sc
from scarlet2.cli import main
from scarlet2.labeled.publish import REPLACED_SUFFIX, check_output, publish


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    sim = sc.simulate.simulate_blend(1, n_galaxies=3, shape=(40, 40))
    path = tmp_path_factory.mktemp("in") / "in.zarr"
    sc.write_zarr(sc.from_arrays(sim.images, variance=sim.variance, psf=sim.psfs, bands=sim.bands), str(path))
    return path


def _run(capsys, *args):
    code = main(["fit", *map(str, args), "--quiet", "--no-cache"])
    err = capsys.readouterr().err
    return code, err


def _tree_bytes(path):
    return {p.relative_to(path): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def test_output_over_the_input_is_refused(store, capsys):
    before = _tree_bytes(store)
    for out in (store, store / "sub.zarr"):
        code, err = _run(capsys, store, "--out", out, "--overwrite")
        assert code == 2 and "is the input" in err and "refusing to write the result over it" in err
        assert "fitting" not in err and "Traceback" not in err
    assert _tree_bytes(store) == before


def test_output_that_is_a_file_is_refused_before_fitting(store, tmp_path, capsys):
    out = tmp_path / "result.zarr"
    out.write_text("my notes")
    code, err = _run(capsys, store, "--out", out, "--overwrite")
    assert code == 2 and "is a file, not a Zarr store" in err and "fitting" not in err
    assert out.read_text() == "my notes" and not (tmp_path / "result.zarr.tmp").exists()


def test_unwritable_output_is_refused_before_fitting(store, tmp_path, capsys):
    (tmp_path / "plain.txt").write_text("x")
    code, err = _run(capsys, store, "--out", tmp_path / "plain.txt" / "out.zarr")
    assert code == 2 and "cannot write next to" in err and "fitting" not in err


@pytest.mark.parametrize(
    "content, message",
    [
        ("", "is empty"),
        ("y,x\n", r"has a header \(y,x\) but no rows"),
        ("y,x\n1,2,3\n", "rows do not all have the 2 columns"),
        ("10,12\n", "the first line must name the columns"),
        ("y,x\nten,12\n", "every other line hold numbers only"),
        ("a,b\n1,2\n", "catalog needs 'y' and 'x' or 'ra' and 'dec' columns"),
    ],
    ids=["empty", "header-only", "ragged", "no-header", "text", "columns"],
)
def test_bad_csv_catalogs_are_one_line_errors(store, tmp_path, capsys, content, message):
    cat = tmp_path / "cat.csv"
    cat.write_text(content)
    code, err = _run(capsys, store, "--out", tmp_path / "o.zarr", "--catalog", cat)
    assert code == 2, err
    assert "scarlet2 fit: error:" in err and ("cat.csv" in err or "columns" in err)
    assert len([line for line in err.splitlines() if "error" in line]) == 1 and "Traceback" not in err
    assert re.search(message, err)


def test_garbage_catalog_store_names_it(store, tmp_path, capsys):
    cat = tmp_path / "cat.zarr"
    cat.mkdir()
    (cat / "zarr.json").write_text("not json")
    code, err = _run(capsys, store, "--out", tmp_path / "o.zarr", "--catalog", cat)
    assert code == 2 and "catalog" in err and "cat.zarr" in err and "Traceback" not in err


@pytest.mark.parametrize("threads, env", [("-2", None), (None, "lots")])
def test_bad_thread_settings_exit_2(store, tmp_path, capsys, monkeypatch, threads, env):
    if env is not None:
        monkeypatch.setenv("PJRT_NPROC", env)
    args = ["fit", str(store), "--out", str(tmp_path / "o.zarr"), "--no-cache"]
    code = main(args + (["--threads", threads] if threads else []))
    err = capsys.readouterr().err
    assert code == 2 and ("--threads -2" in err or "PJRT_NPROC='lots'" in err)


def test_remote_output_goes_to_the_remote_store_not_a_local_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    url = f"memory://scarlet2-cli-{np.random.default_rng().integers(1e9)}/r.zarr"
    check_output(url, overwrite=False)
    publish(xr.Dataset({"a": ("x", np.arange(3.0))}), url)
    assert not any(tmp_path.iterdir())  # no folder named 'memory:'
    np.testing.assert_array_equal(xr.open_zarr(url, consolidated=False)["a"].values, np.arange(3.0))
    with pytest.raises(sc.InputError, match="exists; pass --overwrite"):
        check_output(url, overwrite=False)


def test_interrupted_swaps_are_repaired(tmp_path):
    out = tmp_path / "r.zarr"
    publish(xr.Dataset({"a": ("x", np.arange(3.0))}), out)
    # killed between moving the old store aside and moving the new one in: the old one returns
    out.rename(str(out) + REPLACED_SUFFIX)
    check_output(out, overwrite=True)
    assert out.is_dir() and not (tmp_path / ("r.zarr" + REPLACED_SUFFIX)).exists()
    np.testing.assert_array_equal(xr.open_zarr(str(out), consolidated=False)["a"].values, np.arange(3.0))
    # killed while removing the old store after the new one is in place: the rest goes
    (tmp_path / ("r.zarr" + REPLACED_SUFFIX)).mkdir()
    check_output(out, overwrite=True)
    assert out.is_dir() and not (tmp_path / ("r.zarr" + REPLACED_SUFFIX)).exists()


WRITER = textwrap.dedent(
    """
    import sys, numpy as np, xarray as xr
    from scarlet2.labeled.publish import publish
    out = sys.argv[1]
    print("ready", flush=True)
    for k in range(1, 10**6):
        publish(xr.Dataset({"a": (("y", "x"), np.full((400, 400), float(k)))}), out)
    """
)


@pytest.mark.parametrize("delay", [0.05, 0.3, 0.7])
def test_sigkill_during_overwrite_loses_no_complete_store(tmp_path, delay):
    """A writer replacing the store over and over, killed at some moment: after the repair that
    the next run makes, a complete store of one of the versions is there."""
    out = tmp_path / "r.zarr"
    publish(xr.Dataset({"a": (("y", "x"), np.zeros((400, 400)))}), out)
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(out)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(delay)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    check_output(out, overwrite=True)
    a = xr.open_zarr(str(out), consolidated=False)["a"].values
    assert a.shape == (400, 400) and np.all(a == a[0, 0])


def test_missing_input_store_is_named(tmp_path, capsys):
    code, err = _run(capsys, tmp_path / "missing.zarr", "--out", tmp_path / "o.zarr")
    assert code == 2 and "missing.zarr" in err and "Traceback" not in err
