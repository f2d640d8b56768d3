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
