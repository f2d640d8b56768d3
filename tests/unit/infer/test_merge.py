"""Sources a fit brought within MERGE_DISTANCE of one another are one: the brighter stays."""

import numpy as np

import scarlet2 as sc
from scarlet2.infer.merge import MERGE_DISTANCE, close_pairs, without_sources


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


def test_close_sources_of_different_colours_both_stay():
    frame = sc.Frame(["g", "r", "i"], (40, 40))
    with sc.Scene(frame) as scene:
        sc.PointSource((10.0, 10.0), spectrum=np.array([18.0, 30.0, 33.0]), box=15)  # blue
        sc.PointSource((10.0, 11.2), spectrum=np.array([1.0, 6.0, 19.0]), box=15)  # red
        sc.PointSource((20.0, 20.0), spectrum=np.array([18.0, 30.0, 33.0]), box=15)
        sc.PointSource((20.0, 21.2), spectrum=np.array([9.0, 16.0, 16.0]), box=15)  # the same colour
    assert close_pairs(scene) == {3: 2}
