"""The survey on a real dask.distributed LocalCluster: worker processes, one of them SIGKILLed
mid-run; the run finishes and its catalog and mosaics equal an undisturbed run's."""

import os
import signal
import threading
import time

import numpy as np
import pytest
import xarray as xr

import scarlet2 as sc
from scarlet2.survey.output import read_records

from .conftest import TILE

pytestmark = pytest.mark.slow


def _cluster():
    distributed = pytest.importorskip("distributed")
    from scarlet2.survey.driver import WORKER_ENV

    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, env=dict(WORKER_ENV)
    )
    return cluster, distributed.Client(cluster)


def test_worker_killed_mid_run(mosaic, tmp_path):
    cache = str(tmp_path / "xla")
    cluster, client = _cluster()
    try:
        whole = sc.survey.run(str(mosaic), tmp_path / "whole.zarr", tile=TILE, client=client, progress=False,
                              cache_dir=cache)  # fmt: skip
        assert whole.failed == []
        out = tmp_path / "killed.zarr"
        killed = []

        def kill_one():
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                try:
                    if (out / "zarr.json").exists() and len(read_records(str(out))) >= 1:
                        break
                except Exception:
                    pass
                time.sleep(0.05)
            pid = next(iter(client.run(os.getpid).values()))
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

        thread = threading.Thread(target=kill_one)
        thread.start()
        summary = sc.survey.run(str(mosaic), out, tile=TILE, client=client, progress=False, cache_dir=cache)
        thread.join()
    finally:
        client.close()
        cluster.close()
    assert killed, "no worker was killed"
    records = read_records(str(out))
    # the killed worker's region went to another worker (or, after dask's retries, is recorded failed)
    assert len(records) == 9
    if summary.failed:
        assert all("KilledWorker" in records[name]["error"] for name in summary.failed)
        return
    a, b = sc.open_result(tmp_path / "whole.zarr"), sc.open_result(out)
    xr.testing.assert_identical(a["catalog"].to_dataset(), b["catalog"].to_dataset())
    for name in ("model", "residual"):
        assert np.array_equal(a["model"][name].values, b["model"][name].values, equal_nan=True)
