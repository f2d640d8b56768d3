"""Bad input raises a ValueError that names what is wrong (band, pixel count, position)."""

import numpy as np
import pytest

import scarlet2 as sc
from scarlet2.init import initialize

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


def test_negative_variance():
    v = np.ones((2, 20, 20))
    v[1, 0, :3] = -1
    with pytest.raises(ValueError, match=r"band 'r': 3 pixels have negative or non-finite variance"):
        sc.Observation(np.zeros((2, 20, 20)), variance=v, psf=_psf(), bands=BANDS)


def test_psf_not_finite():
    p = _psf().copy()
    p[1, 5, 5] = np.nan
    with pytest.raises(ValueError, match=r"band 'r': PSF has 1 non-finite pixels"):
        _obs(psf=p)


def test_shapes_disagree():
    with pytest.raises(ValueError, match=r"weights has shape \(2, 20, 21\), images have shape \(2, 20, 20\)"):
        _obs(weights=np.ones((2, 20, 21)))


def test_band_list_mismatch():
    with pytest.raises(ValueError, match=r"3 band names .* for 2 image planes"):
        _obs(bands=["g", "r", "i"])
    with pytest.raises(ValueError, match=r"PSF has 3 planes for 2 bands"):
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
        with pytest.raises(ValueError, match=rf"max_iter must be a positive integer, got {bad!r}"):
            sc.fit(scene, obs, max_iter=bad, progress=False)
    with pytest.raises(ValueError, match="chunk must be a positive integer, got 0"):
        sc.fit(scene, obs, chunk=0, progress=False)

    # a function that makes the observation, passed uncalled, is named
    def make_obs():
        return obs

    with pytest.raises(TypeError, match="Expected an Observation or a list of Observations, got function"):
        sc.fit(scene, make_obs, progress=False)
    with pytest.raises(TypeError, match="got Observation, str"):
        sc.fit(scene, [obs, "g-band.fits"], progress=False)
