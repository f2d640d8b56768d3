"""Bad input across the API, the accessors and Zarr stores: each gets a clear error of a
documented type (docs/errors.md) naming what is wrong and where, before any expensive work, or
is handled correctly. Hostile scene stores: tests/unit/labeled/test_store.py; the command line:
tests/unit/app/test_cli_safety.py."""

import json

import numpy as np
import pytest
import xarray as xr
from astropy.wcs import WCS

import scarlet2 as sc

BANDS = ["g", "r"]


def _psf(n=2):
    return np.asarray(sc.GaussianPSF(1.5).image((15, 15), n_bands=n))


def _wcs():
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [150.0, 2.0]
    w.wcs.crpix = [10, 10]
    w.wcs.cdelt = [-0.2 / 3600, 0.2 / 3600]
    return w


@pytest.fixture(scope="module")
def good():
    rng = np.random.default_rng(0)
    return sc.from_arrays(
        rng.normal(0, 1, (2, 20, 20)), variance=np.ones((2, 20, 20)), psf=_psf(), bands=BANDS, wcs=_wcs()
    )


# --- from_arrays and validate -----------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(images=np.zeros(20)), sc.SchemaError, r"images must be \(band, y, x\) or \(y, x\), got shape \(20,\)"),
        (dict(variance=np.ones((2, 20, 21))), sc.SchemaError, r"variance has shape \(2, 20, 21\), not the shape"),
        (dict(mask=np.zeros((3, 20, 20), bool)), sc.SchemaError, r"mask has shape \(3, 20, 20\)"),
        (dict(bands=["g"]), sc.SchemaError, r"1 band names \('g',\) for 2 image planes"),
        (dict(bands=["g", "g"]), sc.SchemaError, r"names must be unique, \['g'\] repeated"),
        (dict(wcs="RA---TAN"), sc.InputError, r"wcs must be an astropy.wcs.WCS .*got str"),
        (dict(psf=np.ones((3, 15, 15))), sc.SchemaError, r"3 PSF planes for 2 bands"),
        (dict(psf=-_psf()), sc.SchemaError, r"band 'g': PSF sums to -1, not a positive flux"),
        (dict(variance=None, weight=None), sc.SchemaError, "give weights= .* or variance="),
    ],
    ids=[
        "1d-image",
        "variance-shape",
        "mask-shape",
        "bands-count",
        "bands-repeated",
        "wcs-string",
        "psf-planes",
        "psf-negative",
        "no-noise",
    ],
)
def test_from_arrays_refuses(kwargs, error, message):
    args = dict(images=np.zeros((2, 20, 20)), variance=np.ones((2, 20, 20)), psf=_psf(), bands=BANDS)
    args.update(kwargs)
    images = args.pop("images")
    with pytest.raises(error, match=message):
        sc.from_arrays(images, **args)


def test_wcs_without_celestial_axes_is_refused():
    linear = WCS(naxis=2)
    linear.wcs.ctype = ["LINEAR", "LINEAR"]
    with pytest.raises(sc.InputError, match=r"wcs has no celestial axes \(CTYPE \['LINEAR', 'LINEAR'\]\)"):
        sc.from_arrays(np.zeros((2, 20, 20)), variance=np.ones((2, 20, 20)), psf=_psf(), bands=BANDS, wcs=linear)


def test_singular_wcs_is_refused():
    w = _wcs()
    w.wcs.cd = [[1e-5, 1e-5], [1e-5, 1e-5]]  # both axes along one sky direction
    with pytest.raises(sc.InputError, match=r"astropy cannot map pixel \(0, 0\) to the sky and back"):
        sc.from_arrays(np.zeros((2, 20, 20)), variance=np.ones((2, 20, 20)), psf=_psf(), bands=BANDS, wcs=w)


@pytest.mark.parametrize("obj", [np.zeros((2, 20, 20)), None, {"image": 1}, xr.DataArray(np.zeros(3))])
def test_validate_refuses_what_is_not_a_dataset(obj):
    with pytest.raises(sc.SchemaError, match="expected an xarray.Dataset in the observation schema"):
        sc.validate(obj)


def test_write_zarr_refuses_what_is_not_xarray(tmp_path):
    with pytest.raises(TypeError, match="write_zarr writes an xarray Dataset, DataTree or DataArray, not ndarray"):
        sc.write_zarr(np.zeros(3), str(tmp_path / "a.zarr"))
    assert not (tmp_path / "a.zarr").exists()


def test_validate_names_a_bad_psf_model(good):
    ds = good.drop_vars("psf")
    with pytest.raises(sc.SchemaError, match=r"missing data variable 'psf'"):
        sc.validate(ds)


# --- Observation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(weights=np.full((2, 20, 20), np.inf)), r"weights, band 'g': 400 pixels have non-finite weights"),
        (dict(weights=-np.ones((2, 20, 20))), r"weights, band 'g': 400 pixels have negative weights"),
        (dict(psf=None), "An Observation needs a psf"),
        (dict(psf=np.full((2, 15, 15), np.nan)), r"psf, band 'g': PSF has 225 non-finite pixels"),
        (dict(psf=np.ones((2, 2, 3, 3))), r"PSF images must be \(band, y, x\) or \(y, x\)"),
        (dict(bands=["g", "r", "i"]), r"3 band names \('g', 'r', 'i'\) for 2 image planes"),
    ],
)
def test_observation_refuses(kwargs, message):
    args = dict(images=np.zeros((2, 20, 20)), weights=np.ones((2, 20, 20)), psf=_psf(), bands=BANDS)
    args.update(kwargs)
    with pytest.raises(sc.SchemaError, match=message):
        sc.Observation(**args)


def test_sentinel_variance_acts_like_a_mask():
    """1e10 and 1e30 variances (a common bad-pixel convention) are masked like inf: the same
    weights, the same degrees of freedom, whatever value the pixel holds."""
    rng = np.random.default_rng(1)
    images = rng.normal(0, 1, (2, 20, 20))
    bad = rng.uniform(size=(2, 20, 20)) < 0.1
    weights = []
    for sentinel in (np.inf, 1e10, 1e30):
        var = np.where(bad, sentinel, 1.0)
        obs = sc.Observation(np.where(bad, 1e4, images), variance=var, psf=_psf(), bands=BANDS)
        weights.append(np.asarray(obs.weights))
        assert obs.n_pixels() == int((~bad).sum())
    np.testing.assert_array_equal(weights[0], weights[1])
    np.testing.assert_array_equal(weights[0], weights[2])


def test_sentinel_variance_through_the_dataset_path(good):
    var = good.variance.values.copy()
    var[0, :2] = 1e30
    obs = good.assign(variance=(good.variance.dims, var)).scarlet.observation()
    assert obs.n_pixels() == good.image.size - 40


# --- the core API -----------------------------------------------------------------------------


def _scene(frame=None):
    frame = frame or sc.Frame(BANDS, (20, 20))
    with sc.Scene(frame) as scene:
        sc.PointSource((10.0, 10.0), spectrum=np.ones(2))
    return scene


@pytest.mark.parametrize(
    "make, error, message",
    [
        (lambda: sc.Frame(BANDS, (0, 20)), sc.InputError, r"Frame shape must be \(ny, nx\) with positive sizes"),
        (lambda: sc.Frame(["g", "g"], (20, 20)), sc.InputError, "Frame bands must be unique"),
        (lambda: sc.Frame(BANDS, (20, 20), wcs="x"), sc.InputError, "wcs must be an astropy.wcs.WCS"),
        (lambda: sc.Parameter(np.nan), sc.InputError, "1 non-finite entries"),
        (lambda: sc.Parameter(1.0, (2.0, 3.0)), sc.InputError, r"outside the open interval \(2.0, 3.0\)"),
        (lambda: sc.Parameter(1.0, "banana"), sc.InputError, "Unknown constraint 'banana'"),
        (lambda: sc.Parameter(1.0, stepsize=0), sc.InputError, "stepsize must be finite and > 0"),
        (lambda: sc.Parameter(1.0, prior="normal"), sc.InputError, "A prior must be a distribution with log_prob"),
        (lambda: sc.GaussianPSF(-1.0), sc.InputError, "GaussianPSF sigma must be > 0"),
        (lambda: sc.MoffatPSF(2.0, beta=1.0), sc.InputError, r"MoffatPSF beta must be > 1"),
        (lambda: sc.ArrayMorphology(np.ones((4, 5))), sc.InputError, r"odd shape, got \(4, 5\)"),
        (lambda: sc.Sersic(1.0, 2.0, ellipticity=(0.1, 0.0), q=0.5), sc.InputError, "not both"),
        (lambda: sc.Source((5.0, 5.0), spectrum=np.ones(2)), sc.InputError, "Give spectrum= and morphology="),
        (lambda: sc.Source((np.nan, 5.0), spectrum=np.ones(2), morphology=sc.Point()), sc.InputError, "not finite"),
        (lambda: sc.Source((1.0, 2.0, 3.0), spectrum=np.ones(2), morphology=sc.Point()), sc.InputError, r"\(n, 2\)"),
    ],
)
def test_core_constructors_refuse(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_sky_centre_without_a_wcs():
    from astropy.coordinates import SkyCoord

    with sc.Scene(sc.Frame(BANDS, (20, 20))), pytest.raises(sc.InputError, match="sky coordinates need a WCS"):
        sc.PointSource(SkyCoord(150.0, 2.0, unit="deg"), spectrum=np.ones(2))


def test_spectrum_of_the_wrong_length():
    with sc.Scene(sc.Frame(BANDS, (20, 20))), pytest.raises(sc.InputError, match=r"spectrum has shape \(3,\)"):
        sc.PointSource((10.0, 10.0), spectrum=np.ones(3))


def test_fit_refuses_bad_options_before_compiling():
    scene = _scene()
    obs = sc.Observation(np.zeros((2, 20, 20)), weights=np.ones((2, 20, 20)), psf=_psf(), bands=BANDS)
    for kwargs, message in [
        (dict(max_iter=0), "max_iter must be an integer >= 1"),
        (dict(max_iter=True), "max_iter must be an integer"),
        (dict(rtol=-1.0), "rtol must be a finite number >= 0"),
        (dict(chunk=2.5), "chunk must be an integer"),
    ]:
        with pytest.raises(sc.InputError, match=message):
            sc.fit(scene, obs, **kwargs)
    with pytest.raises(TypeError, match="optimizer must be an optax GradientTransformation"):
        sc.fit(scene, obs, optimizer="adam")
    with pytest.raises(TypeError, match="Expected an Observation or a list of Observations, got str"):
        sc.fit(scene, "obs.zarr")
    with pytest.raises(sc.InputError, match="No observations given"):
        sc.fit(scene, [])


def test_observation_band_not_in_the_frame():
    obs = sc.Observation(np.zeros((1, 20, 20)), weights=np.ones((1, 20, 20)), psf=_psf(1), bands=["z"])
    with pytest.raises(sc.InputError, match=r"Observation bands \['z'\] are not in the frame's bands"):
        sc.render(_scene(), obs)


def test_observation_on_another_grid():
    obs = sc.Observation(np.zeros((2, 30, 30)), weights=np.ones((2, 30, 30)), psf=_psf(), bands=BANDS)
    with pytest.raises(
        sc.InputError,
        match=r"observation with bands \['g', 'r'\] of shape \(30, 30\) is not on the frame's grid \(20, 20\), and "
        "resampling",
    ):
        sc.render(_scene(), obs)


@pytest.mark.parametrize(
    "positions, message",
    [
        (np.zeros((3, 3)), r"positions must be \(n, 2\) pixel \(y, x\) pairs, got shape \(3, 3\)"),
        (np.array([[1.0, np.inf]]), r"positions \[0\] are not finite"),
        (np.array([[5.0, 50.0]]), r"position 0 centre \(y=5.00, x=50.00\) lies outside the frame"),
        ([["a", "b"]], "positions: not numbers"),
    ],
)
def test_initialize_refuses_positions(positions, message):
    obs = sc.Observation(np.zeros((2, 20, 20)), weights=np.ones((2, 20, 20)), psf=_psf(), bands=BANDS)
    with pytest.raises(sc.InputError, match=message):
        sc.initialize(obs, positions)


# --- the Dataset face -------------------------------------------------------------------------


def test_empty_catalog_is_not_blamed_on_detection(good):
    with pytest.raises(sc.InputError, match=r"the catalog has no sources \(0 rows\)"):
        good.scarlet.fit(catalog=np.zeros((0, 2)))
    with pytest.raises(sc.InputError, match=r"the catalog has no sources"):
        good.scarlet.fit(catalog={"y": np.zeros(0), "x": np.zeros(0)})


@pytest.mark.parametrize(
    "catalog, message",
    [
        (np.zeros((4, 3)), r"catalog positions must be \(n, 2\)"),
        ({"a": [1.0], "b": [2.0]}, r"catalog needs 'y' and 'x' or 'ra' and 'dec' columns, has \['a', 'b'\]"),
        ({"y": [1.0, np.nan], "x": [2.0, 3.0]}, r"catalog positions \[1\] are not finite"),
    ],
)
def test_bad_catalogs(good, catalog, message):
    with pytest.raises(sc.InputError, match=message):
        good.scarlet.fit(catalog=catalog)


def test_ra_dec_catalog_without_a_wcs(good):
    ds = good.drop_vars("wcs")
    with pytest.raises(sc.InputError, match="catalog gives ra/dec but the observation has no WCS"):
        ds.scarlet.fit(catalog={"ra": [150.0], "dec": [2.0]})


def test_unknown_model_preset(good):
    with pytest.raises(sc.InputError, match=r"unknown model 'bulge-only'"):
        good.scarlet.fit(catalog=np.array([[10.0, 10.0]]), model="bulge-only")


def test_truncated_chunk_names_the_variable_and_store(good, tmp_path):
    path = tmp_path / "obs.zarr"
    sc.write_zarr(good, str(path))
    chunk = next(p for p in (path / "image").rglob("*") if p.is_file() and p.name != "zarr.json")
    chunk.write_bytes(chunk.read_bytes()[:10])
    ds = sc.open_dataset(str(path))
    with pytest.raises(sc.StoreError, match=r"variable 'image' of .*obs\.zarr.*: its data cannot be read"):
        ds.scarlet.observation()


def test_garbage_zarr_json_names_the_store(good, tmp_path):
    path = tmp_path / "obs.zarr"
    sc.write_zarr(good, str(path))
    (path / "zarr.json").write_text("{ garbage")
    with pytest.raises(sc.StoreError, match=r"obs\.zarr: not a readable Zarr store"):
        sc.open_dataset(str(path))


def test_missing_store_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nowhere\.zarr"):
        sc.open_dataset(str(tmp_path / "nowhere.zarr"))


def test_psf_model_attribute_of_an_unknown_type(good):
    ds = good.drop_vars("psf")
    ds.attrs["psf_model"] = json.dumps({"type": "airy", "fwhm": 2.0})
    with pytest.raises(sc.SchemaError, match=r"attrs\['psf_model'\]: unknown type 'airy'"):
        sc.to_observation(ds)


@pytest.mark.parametrize("n", [1, 3])
def test_tiny_images_fit_without_a_linear_algebra_error(n):
    """A 1 x 1 or 3 x 3 cutout (the audit found a singular-matrix error in the moments): the
    canvas still holds the PSF stamp, the fit runs; with fewer pixels than parameters chi^2/dof
    is NaN, as documented."""
    rng = np.random.default_rng(n)
    ds = sc.from_arrays(1 + rng.normal(0, 0.1, (1, n, n)), variance=np.full((1, n, n), 0.01), psf=_psf(1), bands=["g"])
    result = ds.scarlet.fit(catalog=np.array([[n // 2, n // 2]]), max_iter=30, progress=False)
    assert np.all(np.isfinite(result["catalog"]["flux"].values))
