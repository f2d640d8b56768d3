"""Explicit parameter sharing by name."""

import numpy as np
import pytest

import scarlet2 as sc


def _two_stars(shared):
    psf = np.asarray(sc.GaussianPSF(1.6).image((15, 15), n_bands=3))
    frame = sc.Frame(list("gri"), (30, 40))
    true_sed = np.array([100.0, 200.0, 300.0])
    with sc.Scene(frame) as truth:
        sc.PointSource((15.2, 10.3), spectrum=true_sed)
        sc.PointSource((14.7, 29.6), spectrum=2 * true_sed)
    w = np.ones((3, 30, 40))
    template = sc.Observation(np.zeros((3, 30, 40)), weights=w, psf=psf, bands=list("gri"))
    data = np.asarray(sc.render(truth, template)) + np.random.default_rng(0).normal(0, 1, (3, 30, 40))
    obs = sc.Observation(data, weights=w, psf=psf, bands=list("gri"))
    with sc.Scene(frame) as scene:
        for c in [(15.0, 10.0), (15.0, 30.0)]:
            spec = sc.Parameter(np.full(3, 150.0), "positive", share="sed" if shared else None)
            sc.PointSource(c, spectrum=spec)
    return scene, obs


def test_shared_spectrum_is_one_parameter():
    scene, obs = _two_stars(shared=True)
    fitted, info = sc.fit(scene, obs, max_iter=600, progress=False, errors=True)
    a, b = (np.asarray(s.components[0].spectrum.value) for s in fitted.sources)
    np.testing.assert_array_equal(a, b)  # one value for both sources
    # the joint flux sits between the two stars' true SEDs (1x and 2x)
    assert np.all(a > 100) and np.all(a < 600)
    _, free_info = sc.fit(_two_stars(shared=False)[0], obs, max_iter=5, progress=False)
    assert info.n_free == free_info.n_free - 3  # 2 offsets x 2 + 3 shared, not 2 x 3
    errs = list(info.errors.values())
    assert np.array_equal(errs[1], errs[3])  # the shared slot's error, repeated


def test_shared_parameters_must_agree():
    with sc.Scene(sc.Frame(["g", "r"], (20, 20))) as scene:
        sc.PointSource((5, 5), spectrum=sc.Parameter(np.ones(2), "positive", share="s"))
        sc.PointSource((12, 12), spectrum=sc.Parameter(np.ones(2), (0.0, 5.0), share="s"))
    from scarlet2.model.parameter import free_slots

    with pytest.raises(ValueError, match="shared parameter 's'"):
        free_slots(scene)
