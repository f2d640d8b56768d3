"""What a joint fit decides on its sharpest view and how far its centres may move.

The frame of a joint fit takes the sharpest view's pixels (HST-like 0.03" against HSC-like
0.168"), so a bound in frame pixels is 5.6x tighter on the sky than a fit of the wide view
alone; pairs drawn by GalSim with truth (:func:`scarlet2.simulate.simulate_pair`).
"""

import numpy as np
import pytest

import scarlet2 as sc
from scarlet2.errors import InputError
from scarlet2.infer.selection import mask_on, pixels_on
from scarlet2.infer.structure import structure_tests, territories
from scarlet2.model.source import MAX_SHIFT

pytest.importorskip("galsim")
from scarlet2.simulate import simulate_pair  # noqa: E402
from scarlet2.simulate.multires import SHARP_SCALE, WIDE_SCALE  # noqa: E402


@pytest.fixture(scope="module")
def pair():
    return simulate_pair(1, n_galaxies=2)


def _centres(scene):
    return np.array([np.asarray(s.center, float) for s in scene.sources if isinstance(s, sc.Source)])


def test_centres_move_as_far_as_the_wide_view_alone_allows(pair):
    sharp, wide = pair.observations()
    frame = sc.Frame.from_observations([sharp, wide])
    truth = np.asarray(frame.wcs.world_to_pixel(pair.sky_positions()))[::-1].T  # (y, x)
    # a catalogue 0.15" off (5 sharp pixels, under one wide pixel), as a ground-based one can be
    rng = np.random.default_rng(3)
    angle = rng.uniform(0, 2 * np.pi, len(truth))
    start = truth + 5.0 * np.stack([np.sin(angle), np.cos(angle)], -1)
    scene = sc.initialize([sharp, wide], start, frame=frame)
    bound = MAX_SHIFT * WIDE_SCALE / SHARP_SCALE
    for src in scene.sources[1:]:
        assert src.offset.constraint.upper == pytest.approx(bound)
    fitted, _ = sc.fit(sc.grow_boxes(scene), [sharp, wide], max_iter=400, progress=False)
    miss = np.hypot(*(_centres(fitted) - truth).T)
    # (with the frame's 2.5 px they stopped 2.1 and 2.8 px away)
    assert np.all(miss < 0.5), f"fitted centres {np.round(miss, 2)} sharp px from the truth"
    # the single views keep MAX_SHIFT of their own pixels
    alone = sc.initialize(wide, pair.sky_positions(), frame=sc.Frame(wide.bands, (40, 40), wcs=wide.wcs))
    assert alone.sources[1].offset.constraint.upper == MAX_SHIFT


def test_a_shift_bound_under_half_a_pixel_is_refused():
    with pytest.raises(InputError, match="max_shift"):
        sc.Source((10.0, 10.0), spectrum=[1.0], morphology=sc.Sersic(1.0, 2.0, (0.0, 0.0)), max_shift=0.4)


def test_structure_tests_add_the_wide_views_pixels_in_each_territory(pair):
    sharp, wide = pair.observations()
    start = sc.grow_boxes(sc.initialize([sharp, wide], pair.sky_positions()))
    scene, _ = sc.fit(start, [sharp, wide], max_iter=200, progress=False)
    regions = territories(scene, sharp)
    alone = {i: (c, n) for i, c, n, _ in structure_tests(scene, sharp, regions)}
    both = {i: (c, n) for i, c, n, _ in structure_tests(scene, sharp, regions, [wide])}
    assert alone.keys() == both.keys() and alone
    for i, mine in regions.items():
        seen = mask_on(mine, pixels_on(wide, sharp, scene.frame))
        # a territory of k sharp pixels holds about k / 5.6^2 wide pixel centres, each 5 bands
        assert seen.sum() == pytest.approx(mine.sum() * (SHARP_SCALE / WIDE_SCALE) ** 2, rel=0.3, abs=2)
        if i in both:
            assert both[i][1] == alone[i][1] + len(wide.bands) * seen.sum()
