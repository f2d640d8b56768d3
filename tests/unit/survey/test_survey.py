"""A mosaic deblended region by region: truth recovered, nothing lost or doubled, no seams,
compile once, failures isolated, stores checked, fsspec URLs."""

import shutil

import numpy as np
import pytest
import xarray as xr

import scarlet2 as sc
from scarlet2.errors import InputError, SchemaError

from .conftest import TILE

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


def _match(truth, cat, radius=2.0):
    """Index of the nearest catalog row per true source and its distance (pixels)."""
    t = np.stack([truth["y"].values, truth["x"].values], 1)
    c = np.stack([cat["y"].values, cat["x"].values], 1)
    d = np.hypot(*(t[:, None, :] - c[None, :, :]).transpose(2, 0, 1))
    return d.argmin(1), d.min(1)


def test_survey_recovers_the_truth_once(field, fitted):
    out, summary, _ = fitted
    assert summary.failed == [] and summary.done == summary.n_regions == 9
    tree = sc.open_result(out)
    cat = tree["catalog"].to_dataset()
    truth = field.truth
    rows, dist = _match(truth, cat)
    bright = truth["snr"].values > 20
    assert bright.sum() >= 10
    # sources above S/N 20 are found (one here, S/N 46 at 8.9 px from an S/N 346 neighbour,
    # makes no peak of its own in the matched filter), and no two catalog rows are one source
    found = dist < 2.0
    assert found[bright].mean() >= 0.9, truth["snr"].values[bright & ~found]
    c = np.stack([cat["y"].values, cat["x"].values], 1)
    pair = np.hypot(*(c[:, None] - c[None]).transpose(2, 0, 1)) + np.eye(len(c)) * 1e9
    assert pair.min() > 3.0
    # each source is recorded by the region owning its pixel
    from scarlet2.survey.regions import owner

    own = owner(np.round(c).astype(int).clip(0, 191), (192, 192), TILE)
    assert np.mean(own == cat["region"].values) > 0.9  # fitted centres may leave the peak's pixel
    # fluxes of isolated bright sources (model family not the truth's: GalSim Sersics, bulge+disk)
    iso = bright & truth["isolated"].values
    df = np.abs(cat["flux"].values[rows[iso]] / truth["flux"].values[iso] - 1)
    assert np.median(df) < 0.05, np.median(df, axis=1)
    assert np.all(cat["flux_err"].values[rows[bright]] > 0)
    assert "Fisher information" in tree["catalog"].attrs["flux_err"]  # marginal over shapes
    assert list(cat["band"].values) == list(field.dataset["band"].values)
    assert sc.get_wcs(tree["catalog"].to_dataset()) is not None
    # sky positions through the mosaic's WCS
    w = sc.get_wcs(field.dataset)
    sky = w.pixel_to_world(cat["x"].values, cat["y"].values)
    assert np.allclose(sky.ra.deg, cat["ra"].values, atol=1e-9) and np.allclose(sky.dec.deg, cat["dec"].values)


def test_model_mosaic_has_no_seams(field, fitted):
    """Residuals at the tile edges are as small as elsewhere (a step between regions' models
    would show there)."""
    out, _, _ = fitted
    tree = sc.open_result(out)
    chi = (tree["model"]["residual"] / np.sqrt(field.dataset["variance"])).values
    assert np.isfinite(chi).all()
    edges = [TILE - 1, TILE, 2 * TILE - 1, 2 * TILE]
    at_edges = np.concatenate([chi[:, edges, :].ravel(), chi[:, :, edges].ravel()])
    assert np.sqrt(np.mean(at_edges**2)) < 1.1
    assert np.sqrt(np.mean(chi**2)) < 1.1


def test_compiles_once_per_structure(mosaic, fitted, tmp_path):
    """9 regions compile the programs of a few padded structures; a second run of the same
    mosaic (new output) compiles nothing."""
    import jax
    import zarr

    out, summary, n_compiles = fitted
    records = zarr.open_group(str(out), path="regions", mode="r")
    structures = {dict(records[k].attrs)["structure"] for k in records.group_keys()}
    assert len(structures) <= 3 < summary.n_regions
    assert n_compiles <= 6 * len(structures)
    compiles = []
    listener = lambda name, s, **kw: compiles.append(name) if "backend_compile" in name else None  # noqa: E731
    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        again = sc.survey.run(str(mosaic), "memory://survey-again.zarr", tile=TILE, workers=0, progress=False)
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
    assert compiles == []
    # the same pixels and settings give the same catalog (memory:// through fsspec)
    a = sc.open_result(out)["catalog"].to_dataset()
    b = sc.open_result("memory://survey-again.zarr")["catalog"].to_dataset()
    assert again.n_sources == summary.n_sources
    xr.testing.assert_identical(a.drop_vars("wcs"), b.drop_vars("wcs"))


def test_failed_regions_are_isolated_and_retried(field, tmp_path):
    """NaN pixels fail the regions that see them (recorded with the reason); the rest is fitted;
    --retry-failed reruns only those once the data are repaired."""
    from scarlet2.survey.regions import plan_regions

    ds = field.dataset.copy(deep=True)
    ds["image"][2, 100:102, 100:102] = np.nan  # band i
    seen = [
        r.name
        for r in plan_regions((192, 192), TILE, 32)
        if r.outer[0] <= 100 < r.outer[1] and r.outer[2] <= 100 < r.outer[3]
    ]
    src = tmp_path / "bad.zarr"
    ds.chunk({"y": TILE, "x": TILE}).to_zarr(src, zarr_format=3, consolidated=False)
    out = tmp_path / "bad-fit.zarr"
    summary = sc.survey.run(str(src), out, tile=TILE, workers=0, progress=False)
    assert summary.failed == seen and len(seen) == 4
    regions = sc.open_result(out)["regions"].to_dataset()
    error = str(regions["error"].sel(region=4).values)
    assert "'i'" in error and " 4 " in error, error  # names the band and the pixel count
    assert int((regions["status"] == "done").sum()) == 5
    before = regions["seconds"].values.copy()
    failed = (regions["status"] == "failed").values
    # repair the input in place (same shape, bands and WCS: the same input) and retry
    fixed = xr.open_zarr(src, consolidated=False)
    fixed["image"][2, 100:102, 100:102] = field.dataset["image"][2, 100:102, 100:102]
    fixed[["image"]].to_zarr(src, mode="r+", consolidated=False)
    again = sc.survey.run(str(src), out, tile=TILE, workers=0, progress=False, retry_failed=True)
    assert again.failed == [] and again.done == 4 and again.skipped == 5
    after = sc.open_result(out)["regions"].to_dataset()
    assert np.array_equal(after["seconds"].values[~failed], before[~failed])  # the others not redone


def test_bad_input_is_refused_before_any_work(field, mosaic, fitted, tmp_path):
    out, _, _ = fitted
    # an output made for another input, naming both
    other = tmp_path / "other.zarr"
    sc.simulate.simulate_field((128, 128), seed=9).to_zarr(other, chunk=TILE)
    with pytest.raises(InputError, match=r"was made for input .*field\.zarr.*not for .*other\.zarr"):
        sc.survey.run(str(other), out, tile=TILE, workers=0, progress=False)
    # other settings on the same store
    with pytest.raises(InputError, match="settings"):
        sc.survey.run(str(mosaic), out, tile=96, workers=0, progress=False)
    # a tile smaller than the PSF stamp
    with pytest.raises(InputError, match="smaller than the PSF"):
        sc.survey.run(str(mosaic), tmp_path / "x.zarr", tile=16, workers=0, progress=False)
    # a mosaic that fails the schema: nothing is written
    broken = field.dataset.drop_vars("variance")
    with pytest.raises(SchemaError, match="variance"):
        sc.survey.run(broken, tmp_path / "y.zarr", tile=TILE, workers=0, progress=False)
    assert not (tmp_path / "y.zarr").exists()
    # an existing store with resume=False
    with pytest.raises(InputError, match="already exists"):
        sc.survey.run(str(mosaic), out, tile=TILE, workers=0, progress=False, resume=False)
    # an unknown kind of flux errors, named with the choices
    with pytest.raises(InputError, match="flux_errors='fisher'.*marginal, linear"):
        sc.survey.run(str(mosaic), tmp_path / "z.zarr", tile=TILE, workers=0, progress=False, flux_errors="fisher")
    assert not (tmp_path / "z.zarr").exists()


def test_unreachable_scheduler_is_a_clear_error(mosaic, tmp_path):
    import socket

    pytest.importorskip("distributed")
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(InputError, match=f"cannot reach the dask scheduler at tcp://127.0.0.1:{port}"):
        sc.survey.run(str(mosaic), tmp_path / "z.zarr", tile=TILE, scheduler=f"tcp://127.0.0.1:{port}", progress=False)
    assert not (tmp_path / "z.zarr").exists()


def test_in_memory_dataset_and_parquet(field, tmp_path):
    """A Dataset not read from a store runs too (the regions' arrays travel with the tasks);
    the catalog also goes out as Parquet."""
    pytest.importorskip("pyarrow")
    import pandas as pd

    small = field.dataset.isel(y=slice(0, TILE), x=slice(0, TILE))
    out = tmp_path / "mem.zarr"
    summary = sc.survey.run(small, out, tile=TILE, workers=0, progress=False, parquet=str(tmp_path / "cat.parquet"))
    assert summary.n_regions == 1 and summary.failed == []
    frame = pd.read_parquet(tmp_path / "cat.parquet")
    cat = sc.open_result(out)["catalog"].to_dataset()
    assert len(frame) == cat.sizes["source"] > 0
    assert np.allclose(frame["flux_g"], cat["flux"].sel(band="g").values)
    assert set(frame["kind"]) <= {"point", "sersic", "sersic+sersic"}


def test_s3_round_trip(mosaic, fitted, tmp_path):
    """Input read from and results written to a local S3-compatible server (moto)."""
    pytest.importorskip("s3fs")
    moto_server = pytest.importorskip("moto.server")
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        import s3fs

        opts = {"key": "testing", "secret": "testing", "client_kwargs": {"endpoint_url": f"http://127.0.0.1:{port}"}}
        fs = s3fs.S3FileSystem(**opts)
        fs.mkdir("survey")
        fs.put(str(mosaic), "survey/field.zarr", recursive=True)
        summary = sc.survey.run(
            "s3://survey/field.zarr", "s3://survey/fit.zarr", tile=TILE, workers=0, progress=False,
            storage_options=opts,
        )  # fmt: skip
        assert summary.failed == []
        remote = sc.open_result("s3://survey/fit.zarr", storage_options=opts)
        local = sc.open_result(fitted[0])
        xr.testing.assert_identical(
            remote["catalog"].to_dataset().drop_vars("wcs"),
            local["catalog"].to_dataset().drop_vars("wcs"),
        )
        assert np.array_equal(remote["model"]["model"].values, local["model"]["model"].values, equal_nan=True)
    finally:
        server.stop()


def test_accessor_is_one_call(mosaic, tmp_path):
    ds = sc.open_dataset(mosaic).isel(y=slice(0, TILE), x=slice(0, TILE))
    ds.encoding.pop("scarlet2_source", None)  # a window: not the store's whole mosaic
    summary = ds.scarlet.survey(tmp_path / "acc.zarr", tile=TILE, workers=0, progress=False)
    assert summary.n_regions == 1 and (tmp_path / "acc.zarr").exists()
    shutil.rmtree(tmp_path / "acc.zarr")
