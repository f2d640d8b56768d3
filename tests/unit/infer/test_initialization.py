"""Initialization's measurements are local: a source measures the same in a small cutout and
in a large frame."""

import numpy as np

from scarlet2.infer.moments import measure


def test_moments_read_a_window_not_the_frame():
    rng = np.random.default_rng(0)
    y, x = np.mgrid[:41, :41]
    cov = np.array([[6.0, 1.5], [1.5, 4.0]])
    d = np.stack([y - 20.3, x - 19.8], -1)
    stamp = 50 * np.exp(-0.5 * np.einsum("...i,ij,...j", d, np.linalg.inv(cov), d)) + rng.normal(0, 0.5, (41, 41))
    big = np.zeros((400, 300))
    big[150:191, 100:141] = stamp
    psf_cov = np.eye(2) * 1.5
    r_small, c_small = measure(stamp, 1.0, (20.3, 19.8), psf_cov, 15)
    r_big, c_big = measure(big, 1.0, (170.3, 119.8), psf_cov, 15)
    assert r_small == r_big and r_small > 3
    np.testing.assert_allclose(c_small, c_big, rtol=1e-10)
    np.testing.assert_allclose(c_small, cov - psf_cov, rtol=0.2)  # the PSF-deconvolved shape


def test_masked_pixels_do_not_change_what_sources_start_as():
    """10% of the pixels masked (variance inf) at random: the same kinds of sources (masked
    pixels read as 0 made galaxies look like point sources) and nearly the same spectra."""
    import scarlet2 as sc
    from scarlet2.simulate import simulate_blend

    sim = simulate_blend(2)
    mask = np.random.default_rng(0).uniform(size=sim.images.shape) < 0.1
    clean = sc.Observation(sim.images, variance=sim.variance, psf=sim.psfs, bands=sim.bands)
    holed = sc.Observation(sim.images, variance=np.where(mask, np.inf, sim.variance), psf=sim.psfs, bands=sim.bands)
    a, b = sc.initialize(clean, sim.positions), sc.initialize(holed, sim.positions)
    assert [s.kind for s in a.sources] == [s.kind for s in b.sources]
    fa, fb = sc.simulate.source_fluxes(a), sc.simulate.source_fluxes(b)
    assert np.all(np.abs(fb / fa - 1) < 0.1)
