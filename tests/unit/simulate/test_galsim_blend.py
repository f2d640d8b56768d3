"""The GalSim blend simulator: seeded, its truth consistent with its pixels, its errors clear."""

import numpy as np
import pytest

pytest.importorskip("galsim")

from scarlet2.errors import InputError  # noqa: E402
from scarlet2.simulate import simulate_galsim_blend  # noqa: E402
from scarlet2.simulate.galsim_blend import NOISE_RMS  # noqa: E402


@pytest.fixture(scope="module")
def blend():
    return simulate_galsim_blend(3)


def test_same_seed_same_blend_other_seed_other_blend(blend):
    again = simulate_galsim_blend(3)
    np.testing.assert_array_equal(again.dataset["image"].values, blend.dataset["image"].values)
    np.testing.assert_array_equal(again.positions, blend.positions)
    other = simulate_galsim_blend(4)
    assert other.positions.shape != blend.positions.shape or not np.allclose(other.positions, blend.positions)


def test_knots_are_seeded_too():
    # seed 0 gave the first source's RandomKnots a GalSim BaseDeviate(0), which GalSim seeds
    # from the clock: every call drew other knots (and the tests on that blend varied)
    a, b = (simulate_galsim_blend(0, n_sources=3, kinds={"knots": 1.0}) for _ in range(2))
    np.testing.assert_array_equal(a.dataset["image"].values, b.dataset["image"].values)


def test_truth_images_hold_the_truth_fluxes_and_snr(blend):
    t = blend.truth
    sums = t["image"].sum(("y", "x")).values
    # an isolated source's image holds its total flux up to what falls beyond the frame edges
    # (galaxies' wings); never more
    assert np.all(sums <= t["flux"].values * (1 + 1e-4))
    stars = t["kind"].values == "star"
    np.testing.assert_allclose(sums[stars], t["flux"].values[stars], rtol=5e-3)
    assert np.median(sums / t["flux"].values) > 0.95
    rms = np.asarray(NOISE_RMS)[:, None, None]
    snr = np.sqrt(((t["image"].values / rms) ** 2).sum(axis=(1, 2, 3)))
    np.testing.assert_allclose(snr, t["snr"].values, rtol=1e-4)
    assert 50 <= t["snr"].min() and t["snr"].max() <= 400


def test_pixels_are_truth_plus_noise_of_the_stated_variance(blend):
    noise = blend.dataset["image"].values - blend.noiseless
    measured = noise.std(axis=(1, 2))
    np.testing.assert_allclose(measured, np.sqrt(blend.dataset["variance"].values[:, 0, 0]), rtol=0.06)
    np.testing.assert_allclose(measured, NOISE_RMS, rtol=0.06)
    assert abs(noise.mean()) < 0.05


def test_sources_are_a_connected_blend_no_closer_than_asked():
    b = simulate_galsim_blend(11, n_sources=6, min_separation=4.0, max_separation=6.0)
    yx = b.positions
    d = np.hypot(*(yx[:, None] - yx[None]).transpose(2, 0, 1))
    np.fill_diagonal(d, np.inf)
    assert d.min() >= 4.0
    np.testing.assert_allclose(b.truth["neighbour_distance"].values, d.min(axis=1))
    # connected: every source within max_separation of some other one
    assert np.all(d.min(axis=1) <= 6.0)


def test_kinds_are_drawn_as_asked():
    b = simulate_galsim_blend(5, n_sources=4, kinds={"star": 1.0})
    assert set(b.truth["kind"].values) == {"star"}
    assert np.all(b.truth["r_e"].values == 0)
    k = simulate_galsim_blend(5, n_sources=3, kinds={"knots": 1.0}, r_e_range=(1.0, 2.0))
    assert set(k.truth["kind"].values) == {"knots"}
    assert np.all((k.truth["r_e"].values >= 1.0) & (k.truth["r_e"].values <= 2.0))


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"kinds": {"spiral": 1.0}}, "spiral"),
        ({"min_separation": 9.0, "max_separation": 9.0}, "min_separation 9.0"),
        ({"shape": (20, 20)}, "too small"),
        ({"n_sources": 40, "shape": (30, 30)}, "cannot place 40"),
    ],
)
def test_impossible_requests_are_refused_by_name(kwargs, words):
    with pytest.raises(InputError, match=words):
        simulate_galsim_blend(0, **kwargs)
