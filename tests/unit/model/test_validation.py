"""Bad input raises a ValueError that names what is wrong (band, pixel count, position)."""

import warnings

import numpy as np
import pytest

import scarlet2 as sc
from scarlet2 import initialize

BANDS = ["g", "r"]


def _obs(**kw):
    args = dict(images=np.zeros((2, 20, 20)), weights=np.ones((2, 20, 20)), psf=_psf(), bands=BANDS)
    args.update(kw)
    return sc.Observation(**args)


def _psf():
    return np.asarray(sc.GaussianPSF(1.5).image((11, 11), n_bands=2))


def test_nan_in_unmasked_pixels():
    img = np.zeros((2, 20, 20))
    img[1, 3:5, 3:6] = np.nan
    with pytest.raises(ValueError, match=r"band 'r': 6 unmasked pixels are NaN"):
        _obs(images=img)


def test_inf_in_unmasked_pixels():
    img = np.zeros((2, 20, 20))
    img[0, 0, 0] = np.inf
    with pytest.raises(ValueError, match=r"band 'g': 1 unmasked pixels are NaN or inf"):
        _obs(images=img)


def test_nan_in_masked_pixels_is_fine():
    img = np.zeros((2, 20, 20))
    w = np.ones((2, 20, 20))
    img[1, 3:5, 3:6] = np.nan
    w[1, 3:5, 3:6] = 0
    obs = _obs(images=img, weights=w)
    assert np.all(np.isfinite(np.asarray(obs.data)))


def test_negative_weights():
    w = np.ones((2, 20, 20))
    w[0, :2, :2] = -1
    with pytest.raises(ValueError, match=r"band 'g': 4 pixels have negative weights"):
        _obs(weights=w)


@pytest.mark.parametrize("bad", [-1.0, 0.0, np.nan])
def test_variance_not_positive(bad):
    # zero variance would be an infinite weight: an error, like the Dataset schema's, not a mask
    v = np.ones((2, 20, 20))
    v[1, 0, :3] = bad
    message = r"variance, band 'r': 3 unmasked pixels have variance <= 0 or NaN \(give them variance inf"
    with pytest.raises(ValueError, match=message):
        sc.Observation(np.zeros((2, 20, 20)), variance=v, psf=_psf(), bands=BANDS)


def test_infinite_variance_masks():
    img, v = np.zeros((2, 20, 20)), np.full((2, 20, 20), 4.0)
    img[0, 5, 5], v[0, 5, 5] = np.nan, np.inf
    obs = sc.Observation(img, variance=v, psf=_psf(), bands=BANDS)
    w = np.asarray(obs.weights)
    assert w[0, 5, 5] == 0 and np.all(np.delete(w.ravel(), 5 * 20 + 5) == 0.25)
    assert obs.n_pixels() == 2 * 20 * 20 - 1


def test_repeated_band_names():
    with pytest.raises(ValueError, match=r"bands: names must be unique, \['g'\] repeated in \['g', 'g'\]"):
        _obs(bands=["g", "g"])


def test_psf_not_finite():
    p = _psf().copy()
    p[1, 5, 5] = np.nan
    with pytest.raises(ValueError, match=r"band 'r': PSF has 1 non-finite pixels"):
        _obs(psf=p)


def test_shapes_disagree():
    with pytest.raises(ValueError, match=r"weights has shape \(2, 20, 21\), not the shape of images \(2, 20, 20\)"):
        _obs(weights=np.ones((2, 20, 21)))


def test_band_list_mismatch():
    with pytest.raises(ValueError, match=r"3 band names .* for 2 image planes"):
        _obs(bands=["g", "r", "i"])
    with pytest.raises(ValueError, match=r"psf: 3 PSF planes for 2 bands \['g', 'r'\]"):
        _obs(psf=np.ones((3, 11, 11)))


def test_observation_bands_not_in_frame():
    obs = _obs()
    frame = sc.Frame(["g", "i"], (20, 20))
    with sc.Scene(frame) as scene:
        sc.PointSource((10, 10), spectrum=np.ones(2))
    with pytest.raises(ValueError, match=r"Observation bands \['r'\] are not in the frame's bands"):
        sc.render(scene, obs)


def test_spectrum_length_must_match_frame():
    with sc.Scene(sc.Frame(BANDS, (20, 20))):
        with pytest.raises(ValueError, match="spectrum has shape \\(3,\\), the frame has 2 bands"):
            sc.PointSource((10, 10), spectrum=np.ones(3))


def test_position_outside_frame():
    obs = _obs()
    with pytest.raises(
        ValueError, match=r"position 1 centre \(y=25.00, x=3.00\) lies outside the frame of shape \(20, 20\)"
    ):
        initialize(obs, [(10, 10), (25, 3)])
    with sc.Scene(sc.Frame(BANDS, (20, 20))):
        with pytest.raises(ValueError, match="outside the frame"):
            sc.PointSource((-3, 4), spectrum=np.ones(2))
    # a source made without a scene and handed to one is checked too
    loose = sc.PointSource((30.0, 4.0), spectrum=np.ones(2))
    with pytest.raises(ValueError, match=r"source 0 centre \(y=30.00, x=4.00\) lies outside"):
        sc.Scene(sc.Frame(BANDS, (20, 20)), (loose,))


def test_bad_constraint_and_parameter_values():
    with pytest.raises(ValueError, match="Unknown constraint"):
        sc.Parameter(1.0, constraint="bogus")
    with pytest.raises(ValueError, match="lower < upper"):
        sc.Parameter(1.0, constraint=(2.0, 1.0))


def test_parameter_value_outside_constraint():
    with pytest.raises(ValueError, match="must be > 0 for a positive constraint"):
        sc.Parameter([1.0, -2.0], constraint="positive")
    with pytest.raises(ValueError, match=r"outside the open interval \(0.3, 8.0\)"):
        sc.Sersic(n=9.0, r_e=2.0)
    with pytest.raises(ValueError, match="unit-disk"):
        sc.Sersic(n=1.0, r_e=2.0, ellipticity=(0.9, 0.5))


def test_fit_arguments_are_checked():
    obs = _obs()
    with sc.Scene(sc.Frame(BANDS, (20, 20))) as scene:
        sc.PointSource((10.0, 10.0), spectrum=np.ones(2))
    for bad in (0, -5, 2.5, True):
        with pytest.raises(ValueError, match=rf"max_iter must be an integer >= 1, got {bad!r}"):
            sc.fit(scene, obs, max_iter=bad, progress=False)
    with pytest.raises(ValueError, match="chunk must be an integer >= 1, got 0"):
        sc.fit(scene, obs, chunk=0, progress=False)
    with pytest.raises(ValueError, match="min_iter must be an integer >= 0, got -1"):
        sc.fit(scene, obs, min_iter=-1, progress=False)
    for bad in (-1e-6, float("nan"), None):
        with pytest.raises(ValueError, match=rf"rtol must be a finite number >= 0, got {bad!r}"):
            sc.fit(scene, obs, rtol=bad, progress=False)
    assert sc.fit(scene, obs, rtol=np.asarray(1e-6), max_iter=5, progress=False)[1].iterations == 5
    with pytest.raises(TypeError, match="optimizer must be an optax GradientTransformation"):
        sc.fit(scene, obs, optimizer="adam", progress=False)

    # a function that makes the observation, passed uncalled, is named
    def make_obs():
        return obs

    with pytest.raises(TypeError, match="Expected an Observation or a list of Observations, got function"):
        sc.fit(scene, make_obs, progress=False)
    with pytest.raises(TypeError, match="got Observation, str"):
        sc.fit(scene, [obs, "g-band.fits"], progress=False)


def test_all_pixels_masked():
    obs = _obs(weights=np.zeros((2, 20, 20)))
    with sc.Scene(sc.Frame(BANDS, (20, 20))) as scene:
        sc.PointSource((10, 10), spectrum=np.ones(2))
    with pytest.raises(ValueError, match=r"Nothing to fit: every pixel of the 1 observation\(s\) has weight 0"):
        sc.fit(scene, obs, progress=False)
    with pytest.raises(ValueError, match="pixels all have weight 0"):
        initialize(obs, [(10, 10)])


def test_chi2_dof_without_degrees_of_freedom():
    info = sc.FitInfo(np.zeros(1), 1, False, chi2=3.0, n_pixels=4, n_free=4)
    assert info.dof == 0 and np.isnan(info.chi2_dof)
    assert sc.FitInfo(np.zeros(1), 1, False, chi2=3.0, n_pixels=7, n_free=4).chi2_dof == 1.0


def test_model_psf_wider_than_observation_warns():
    obs = _obs(psf=sc.GaussianPSF(0.5))
    with sc.Scene(sc.Frame(BANDS, (20, 20))) as scene:  # model PSF GaussianPSF(0.7)
        sc.PointSource((10, 10), spectrum=np.ones(2))
    with pytest.warns(UserWarning, match=r"band 'g' \(\d+\.\dx\), 'r' \(\d+\.\dx\): the observation's PSF is narrower"):
        sc.render(scene, obs)
    narrow = sc.Scene(sc.Frame(BANDS, (20, 20), psf=sc.GaussianPSF(0.3)), scene.sources)  # narrower than the data's
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sc.render(narrow, obs)


def test_parameter_prior_and_stepsize_checked():
    import numpyro.distributions as dist

    with pytest.raises(ValueError, match=r"prior of shape \(3,\) does not fit a parameter of shape \(2,\)"):
        sc.Parameter(np.ones(2), prior=dist.Normal(np.zeros(3), 1.0))
    with pytest.raises(ValueError, match="A prior must be a distribution with log_prob"):
        sc.Parameter(1.0, prior="normal")
    sc.Parameter(np.ones(2), prior=dist.Normal(0.0, 1.0))  # a scalar prior broadcasts
    sc.Parameter(1.0, prior=dist.Normal(np.zeros(1), 1.0))  # one element for one value: counted once
    with pytest.raises(ValueError, match=r"prior of shape \(2, 1\) does not fit a parameter of shape \(2,\)"):
        sc.Parameter(np.ones(2), prior=dist.Normal(np.zeros((2, 1)), 1.0))
    with pytest.raises(ValueError, match=r"stepsize must be finite and > 0, got -1.0"):
        sc.Parameter(1.0, stepsize=-1.0)


def test_pixel_array_box_must_match():
    with sc.Scene(sc.Frame(BANDS, (20, 20))):
        with pytest.raises(
            ValueError, match=r"box \(15, 15\) does not match the pixel-array morphology's shape \(9, 9\)"
        ):
            sc.Source((10, 10), spectrum=np.ones(2), morphology=sc.ArrayMorphology(np.ones((9, 9))), box=15)
        assert sc.Source((10, 10), spectrum=np.ones(2), morphology=sc.ArrayMorphology(np.ones((9, 9)))).box == (9, 9)


def test_uncertainties_without_free_parameters():
    with sc.Scene(sc.Frame(BANDS, (20, 20))) as scene:
        sc.PointSource((10, 10), sc.Parameter(np.ones(2), fixed=True), fixed_center=True)
    with pytest.raises(ValueError, match="no free parameters"):
        sc.uncertainties(scene, _obs())


def test_a_band_without_data_fits():
    """A band whose pixels are all masked (a chip gap, a missing exposure) initializes with finite
    step sizes, fits, and has no flux information: infinite errors, the other bands unaffected."""
    sim = sc.simulate.simulate_blend(seed=3, n_galaxies=3, shape=(40, 40), psf_size=21)
    weights = np.full(sim.images.shape, 1.0 / sim.variance)
    weights[1] = 0
    obs = sc.Observation(sim.images, weights=weights, psf=sim.psfs, bands=sim.bands)
    scene = initialize(obs, sim.positions)
    steps = [np.asarray(p.stepsize) for p in sc.free_parameters(scene)]
    assert all(np.all(np.isfinite(s) & (s > 0)) for s in steps)
    fitted, info = sc.fit(scene, obs, max_iter=200, progress=False)
    assert 0.8 < info.chi2_dof < 1.5
    errors = list(sc.uncertainties(fitted, obs).values())
    spectra = [k for k, p in enumerate(sc.free_parameters(fitted)) if p.shape == (5,) and k > 0]
    assert len(spectra) >= 3  # one per galaxy component (the sky, parameter 0, is left out)
    assert all(np.isinf(errors[k][1]) and np.all(np.isfinite(np.delete(errors[k], 1))) for k in spectra)
    # the catalog's total fluxes (bulge + disk, with their covariance) follow the same rule
    ds = sc.from_arrays(sim.images, weight=weights, psf=sim.psfs, bands=sim.bands)
    catalog = sc.fit_dataset(ds, catalog=sim.positions, max_iter=200, progress=False)["catalog"]
    err = catalog["flux_err"].values
    assert np.all(np.isinf(err[:, 1])) and np.all(np.isfinite(np.delete(err, 1, axis=1)))


def test_off_centre_psf_is_refused_by_observation_as_by_validate():
    """A PSF 3 px off its central pixel would move every source by 3 px (the audit found chi^2/dof
    234 instead of 1.7): Observation refuses it with the same rule as the Dataset schema."""
    psf = np.asarray(sc.GaussianPSF(1.5).image((21, 21), n_bands=2))
    shifted = np.roll(psf, 3, axis=-1)
    with pytest.raises(sc.SchemaError, match=r"psf, band 'g': not centred \(PSF centroid at \(10.00, 13.00\)"):
        sc.Observation(np.zeros((2, 20, 20)), weights=np.ones((2, 20, 20)), psf=shifted, bands=["g", "r"])
    ds = sc.from_arrays(np.zeros((2, 20, 20)), variance=np.ones((2, 20, 20)), psf=psf, bands=["g", "r"])
    with pytest.raises(sc.SchemaError, match=r"variable 'psf', band 'g': not centred"):
        sc.validate(ds.assign(psf=(ds.psf.dims, shifted)))


def test_values_beyond_float32_are_refused_before_they_become_inf():
    images = np.zeros((2, 20, 20))
    images[1, 3, 4] = 1e39
    with pytest.raises(sc.SchemaError, match=r"images, band 'r': 1 unmasked pixels are beyond the float32 range"):
        sc.Observation(images, weights=np.ones((2, 20, 20)), psf=np.ones((1, 3, 3)), bands=["g", "r"])
    variance = np.ones((2, 20, 20))
    variance[0, :2, :2] = 1e-40  # weight 1e40 overflows float32
    with pytest.raises(sc.SchemaError, match=r"variance, band 'g': 4 pixels have weights beyond the float32 range"):
        sc.Observation(np.zeros((2, 20, 20)), variance=variance, psf=np.ones((1, 3, 3)), bands=["g", "r"])
