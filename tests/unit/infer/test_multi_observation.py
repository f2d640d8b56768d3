"""Several observations on the model frame's grid: a joint fit is the sum of their likelihoods.

Splitting one 5-band observation into two with disjoint bands (and their own PSF stamps) must
not change the likelihood, the fit or the rendered model; band order within an observation is
free.
"""

import numpy as np
import pytest

import scarlet2 as sc
from scarlet2.simulate import simulate_blend


@pytest.fixture(scope="module")
def split():
    sim = simulate_blend(seed=1)
    w = 1 / sim.variance
    full = sim.observation()
    first = sc.Observation(sim.images[:3], weights=w[:3], psf=sim.psfs[:3], bands=sim.bands[:3])
    rest = sc.Observation(sim.images[3:], weights=w[3:], psf=sim.psfs[3:], bands=sim.bands[3:])
    scene = sc.initialize(full, sim.positions)
    return sim, full, first, rest, scene


def test_split_likelihood_and_render_match_one_observation(split):
    sim, full, first, rest, scene = split
    ll_full = float(sc.log_likelihood(scene, full))
    ll_split = float(sc.log_likelihood(scene, [first, rest]))
    assert ll_split == pytest.approx(ll_full, rel=1e-6)
    model_full = np.asarray(sc.render(scene, full))
    model_rest = np.asarray(sc.render(scene, rest))
    assert model_rest.shape == (2, *sim.images.shape[1:])
    np.testing.assert_allclose(model_rest, model_full[3:], atol=1e-5 * np.abs(model_full).max())


def test_joint_fit_matches_single_observation_fit(split):
    _, full, first, rest, scene = split
    fitted_full, info_full = sc.fit(scene, full, max_iter=200, progress=False)
    fitted_split, info_split = sc.fit(scene, [first, rest], max_iter=200, progress=False)
    assert info_split.n_pixels == info_full.n_pixels
    assert info_split.chi2_dof == pytest.approx(info_full.chi2_dof, rel=1e-4)
    flux_full = np.array([s.flux(np) for s in fitted_full.sources if not isinstance(s, sc.Background)])
    flux_split = np.array([s.flux(np) for s in fitted_split.sources if not isinstance(s, sc.Background)])
    np.testing.assert_allclose(flux_split, flux_full, rtol=1e-3)


def test_observations_may_have_their_own_psf_stamps_and_band_order(split):
    sim, full, first, _, scene = split
    w = 1 / sim.variance
    # the last two bands with smaller PSF stamps (37 instead of 41 px), listed as (y, z)
    cropped = sc.Observation(
        sim.images[[4, 3]], weights=w[[4, 3]], psf=sim.psfs[[4, 3], 2:-2, 2:-2], bands=[sim.bands[4], sim.bands[3]]
    )
    ll_full = float(sc.log_likelihood(scene, full))
    ll = float(sc.log_likelihood(scene, [first, cropped]))
    # the cropped stamps lose < 1e-3 of the PSF's flux: the likelihood moves by far less than 1
    assert abs(ll - ll_full) < 0.5
    model = np.asarray(sc.render(scene, cropped))
    reference = np.asarray(sc.render(scene, full))[[4, 3]]
    np.testing.assert_allclose(
        model, reference, atol=5e-4 * np.abs(reference).max()
    )  # measured 1.1e-4; swapped bands: 5e-2


@pytest.mark.parametrize("index", [(0, 1, 2, 3, 4), (1, 2), (4,), (3, 4, 0), (2, 1, 0), (0, 2, 4)])
def test_take_bands_matches_indexing_with_its_gradient(index):
    # an observation's bands are cut from the frame's as static slices (no gather/scatter)
    import jax
    import jax.numpy as jnp

    from scarlet2.render.convolve import take_bands

    x = jnp.asarray(np.random.default_rng(0).normal(size=(5, 3)), jnp.float32)
    w = jnp.arange(len(index) * 3, dtype=jnp.float32).reshape(len(index), 3)
    np.testing.assert_array_equal(take_bands(x, index), x[np.array(index)])
    g = jax.grad(lambda x: jnp.sum(w * take_bands(x, index)))(x)
    g_ref = jax.grad(lambda x: jnp.sum(w * x[np.array(index)]))(x)
    np.testing.assert_array_equal(g, g_ref)
