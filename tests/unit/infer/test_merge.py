"""Sources a fit brought within MERGE_DISTANCE of one another are one: the brighter stays."""

import numpy as np

import scarlet2 as sc
from scarlet2.infer.merge import MERGE_DISTANCE, close_pairs, merge_tests, redundant_pairs, without_sources


def _scene(centres, fluxes):
    frame = sc.Frame(["g", "r"], (40, 40))
    with sc.Scene(frame) as scene:
        sc.Background(np.zeros(2))
        for c, f in zip(centres, fluxes, strict=True):
            sc.PointSource(c, spectrum=np.full(2, f, float), box=15)
    return scene


def test_the_fainter_of_a_close_pair_goes_to_the_brighter():
    # scene indices: 0 the sky, then the sources
    scene = _scene([(10.0, 10.0), (10.6, 10.9), (25.0, 25.0), (25.0, 25.0 + MERGE_DISTANCE + 0.1)], [5, 9, 3, 4])
    assert close_pairs(scene) == {1: 2}  # the far pair (1.6 px) stays two
    assert close_pairs(scene, among=[1, 3, 4]) == {}
    kept = without_sources(scene, close_pairs(scene))
    assert len(kept.sources) == 4 and kept.sources[1] is scene.sources[2]


def test_a_chain_ends_in_its_brightest():
    # 0 -- 1 -- 2 each 1.2 px apart (0 and 2: 2.4 px), 1 the brightest: both others go to it;
    # then brightest at an end: the middle one goes, the far end stays
    middle = _scene([(10.0, 10.0), (10.0, 11.2), (10.0, 12.4)], [2, 8, 3])
    assert close_pairs(middle) == {1: 2, 3: 2}
    end = _scene([(10.0, 10.0), (10.0, 11.2), (10.0, 12.4)], [8, 3, 2])
    assert close_pairs(end) == {2: 1}


def test_a_catalogue_source_is_never_replaced():
    # 1 (catalogue) and 2 (found later, brighter) 0.8 px apart: 2 goes to 1; 3, 4 both catalogue
    scene = _scene([(10.0, 10.0), (10.0, 10.8), (25.0, 25.0), (25.0, 25.5)], [2, 8, 3, 4])
    assert close_pairs(scene, protected=[1, 3, 4]) == {2: 1}


def test_light_the_data_tell_apart_keeps_both():
    # a blue star on a red galaxy 1.2 px away against a galaxy and a faint copy of itself
    # (colours alike too: the chi^2 test alone is checked here)
    bands = ["g", "r", "i"]
    psf = sc.GaussianPSF(1.2)
    frame = sc.Frame(bands, (48, 48), psf=sc.GaussianPSF(0.7))
    with sc.Scene(frame) as scene:
        sc.PointSource((12.0, 12.0), spectrum=np.array([300.0, 250.0, 200.0]), box=15)
        sc.Source((12.0, 13.2), spectrum=np.array([20.0, 120.0, 400.0]), morphology=sc.Sersic(1.0, 2.5), box=31)
        sc.Source((32.0, 32.0), spectrum=np.array([200.0, 300.0, 400.0]), morphology=sc.Sersic(1.0, 2.5), box=31)
        sc.Source((32.0, 33.0), spectrum=np.array([20.0, 30.0, 40.0]), morphology=sc.Sersic(1.0, 2.5), box=31)
    blank = sc.Observation(np.zeros((3, 48, 48)), weights=np.ones((3, 48, 48)), psf=psf, bands=bands)
    data = np.asarray(sc.render(scene, blank)) + np.random.default_rng(1).normal(0, 1, (3, 48, 48))
    obs = sc.Observation(data, weights=np.ones((3, 48, 48)), psf=psf, bands=bands)
    pairs = close_pairs(scene)
    assert pairs == {1: 0, 3: 2}  # by position: the galaxy is the fainter in total
    tests = merge_tests(scene, obs, pairs)
    assert tests[1][0] > tests[1][1]  # the star scaled per band leaves the galaxy's light
    assert tests[3][0] < tests[3][1]  # the same profile twice: one explains both
    assert redundant_pairs(scene, obs) == {3: 2}
