"""Observation schema, validation errors, Zarr round trips, lazy open, FITS input."""

import dask
import numpy as np
import pytest
import xarray as xr
from astropy.wcs import WCS

import scarlet2 as sc
from scarlet2.demo import demo_wcs


@pytest.fixture()
def good():
    rng = np.random.default_rng(0)
    psf = np.asarray(sc.GaussianPSF(1.5).image((15, 15), n_bands=2))
    return sc.from_arrays(
        rng.normal(0, 1, (2, 30, 40)),
        variance=np.ones((2, 30, 40)),
        psf=psf,
        bands=["g", "r"],
        wcs=demo_wcs((30, 40)),
        instrument="test",
    )


def test_schema_layout(good):
    assert good["image"].dims == ("band", "y", "x") and good["psf"].dims == ("band", "psf_y", "psf_x")
    assert "wcs" in good.coords and good["image"].encoding["grid_mapping"] == "wcs"
    assert good.attrs["schema_version"] == "1" and good.attrs["pixel_scale"] == pytest.approx(0.2)
    assert isinstance(good.scarlet.wcs, WCS)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda ds: ds.rename({"band": "filter"}), "missing 'band'"),
        (lambda ds: ds.drop_vars("image"), "missing data variable 'image'"),
        (lambda ds: ds.assign_coords(band=["g", "g"]), r"coordinate 'band': names must be unique, \['g'\] repeated"),
        (lambda ds: ds.drop_vars("variance"), "missing data variable 'variance' or 'weight'"),
        (lambda ds: ds.assign(psf=ds.psf * 0), r"variable 'psf', band 'g': PSF sums to 0, not a positive flux"),
        (lambda ds: ds.assign(psf=ds.psf.roll(psf_x=2)), r"variable 'psf', band 'g': not centred"),
        (
            lambda ds: ds.assign(image=ds.image.where(ds.x != 3)),
            r"variable 'image', band 'g': 30 unmasked pixels are NaN",
        ),
        (
            lambda ds: ds.assign(variance=ds.variance.where(ds.y != 0, 0.0)),
            r"variable 'variance', band 'g': 40 unmasked pixels have variance <= 0",
        ),
        (lambda ds: ds.assign(variance=(("band", "y", "x2"), np.ones((2, 30, 39)))), r"variable 'variance' has shape"),
        (
            lambda ds: ds.assign_coords(
                wcs=xr.DataArray(0, attrs={"fits_header": "CTYPE1  = 'RA---TAN'\nCRVAL1  = 'banana'"})
            ),
            r"variable 'wcs': unparsable FITS header",
        ),
    ],
    ids=["band", "image", "band-repeated", "noise", "psf-norm", "psf-centre", "nan", "variance", "shape", "wcs"],
)
def test_validation_errors(good, mutate, message):
    with pytest.raises(sc.SchemaError, match=message):
        sc.validate(mutate(good))


def test_psf_normalization_is_one_rule_for_datasets_and_observations(good):
    """A PSF that is not normalized is normalized on both paths (validate, to_observation and
    Observation), and the two give the same Observation."""
    scaled = good.assign(psf=good.psf * 1.2)
    sc.validate(scaled)
    a = np.asarray(scaled.scarlet.observation().psf.array)
    b = np.asarray(
        sc.Observation(
            scaled.image.values, variance=scaled.variance.values, psf=scaled.psf.values, bands=["g", "r"]
        ).psf.array
    )
    np.testing.assert_allclose(a, good.psf.values / good.psf.values.sum(axis=(1, 2), keepdims=True), rtol=1e-6)
    np.testing.assert_allclose(a, b)


def test_masked_nan_is_valid(good):
    bad = good.assign(image=good.image.where(good.x != 3), mask=(good.image * 0 + (good.x == 3)).astype(bool))
    sc.validate(bad)
    obs = bad.scarlet.observation()
    assert np.all(np.asarray(obs.weights)[:, :, 3] == 0)


@pytest.mark.parametrize("store", ["local", "memory"])
def test_zarr_round_trip_keeps_wcs(good, tmp_path, store):
    url = (
        str(tmp_path / "obs.zarr") if store == "local" else f"memory://obs-{np.random.default_rng().integers(1e9)}.zarr"
    )
    sc.write_zarr(good, url)
    back = sc.open_dataset(url)
    assert "wcs" in back.coords  # decode_coords="all" restores the scalar coordinate
    assert back["image"].encoding["grid_mapping"] == "wcs"
    w0, w1 = good.scarlet.wcs, back.scarlet.wcs
    rng = np.random.default_rng(1)
    px = rng.uniform(-50, 100, (2, 200))
    a = w0.pixel_to_world_values(*px)
    b = w1.pixel_to_world_values(*px)
    np.testing.assert_allclose(a, b, atol=1e-10, rtol=0)
    xr.testing.assert_identical(good.drop_vars("wcs"), back.drop_vars("wcs").compute())
    assert back.attrs == good.attrs


def test_open_is_lazy(good, tmp_path):
    url = str(tmp_path / "lazy.zarr")
    sc.write_zarr(good, url)
    calls = []

    def counting_scheduler(dsk, keys, **kwargs):
        calls.append(keys)
        return dask.get(dsk, keys, **kwargs)

    with dask.config.set(scheduler=counting_scheduler):
        ds = sc.open_dataset(url)
        assert isinstance(ds["image"].data, dask.array.Array)
        assert calls == []  # nothing computed by opening
        float(ds["image"].mean())
    assert calls  # and the scheduler does run once we ask for values


def test_detect_and_render_through_accessor(good):
    sim = sc.simulate.simulate_blend(3)
    ds = sc.from_arrays(sim.images, variance=sim.variance, psf=sim.psfs, bands=sim.bands)
    cat = ds.scarlet.detect()
    assert cat.sizes["source"] >= len(sim.truth["y"]) - 1
    d = np.hypot(cat.y.values[:, None] - sim.truth["y"], cat.x.values[:, None] - sim.truth["x"]).min(axis=0)
    assert np.median(d) < 1.0  # detections sit on the true galaxies
    scene = sc.initialize(ds.scarlet.observation(), sim.positions)
    model = ds.scarlet.render(scene)
    assert model.dims == ("band", "y", "x") and list(model.band.values) == list(sim.bands)
    assert float(model.sum()) > 0


def test_unknown_model_preset_is_named(good):
    presets = r"\['freeform', 'parametric', 'single'\]"
    with pytest.raises(ValueError, match=r"unknown model 'bulge-only'; presets: " + presets):
        good.scarlet.fit(catalog=np.array([[15.0, 20.0]]), model="bulge-only", progress=False)


def test_write_zarr_refuses_an_existing_store(good, tmp_path):
    ds = good
    path = tmp_path / "obs.zarr"
    sc.write_zarr(ds, path)
    with pytest.raises(FileExistsError, match=r"obs\.zarr already exists; pass mode='w' to overwrite it"):
        sc.write_zarr(ds, path)
    sc.write_zarr(ds.assign(image=ds.image * 2), path, mode="w")
    assert float(sc.open_dataset(path).image.sum()) == pytest.approx(2 * float(ds.image.sum()))
    with pytest.raises(ValueError, match=r"obs\.zarr: no scarlet2 scene \(attrs\['structure'\]\) in its root"):
        sc.load_scene(path)
