"""The real HSC blend split into observations fits as one (../shared/data)."""

import numpy as np
import pytest

import scarlet2 as sc


def test_split_real_hsc_blend_matches_one_observation(hsc_blend):
    """The same on the real HSC blend (43-px PSF stamps, g r | i z y): likelihood and every
    observed band as with the 5-band observation."""
    d = hsc_blend
    bands = [str(b) for b in d["filters"]]
    full = sc.Observation(d["images"], variance=d["variance"], psf=d["psfs"], bands=bands)
    parts = [
        sc.Observation(d["images"][s], variance=d["variance"][s], psf=d["psfs"][s], bands=bands[s])
        for s in (slice(0, 2), slice(2, 5))
    ]
    scene = sc.initialize(full, np.stack([d["catalog"]["y"], d["catalog"]["x"]], 1))
    ll_full = float(sc.log_likelihood(scene, full))
    assert float(sc.log_likelihood(scene, parts)) == pytest.approx(ll_full, rel=1e-6)
    model_full = np.asarray(sc.render(scene, full))
    model_split = np.concatenate([np.asarray(sc.render(scene, p)) for p in parts])
    np.testing.assert_allclose(model_split, model_full, atol=1e-5 * np.abs(model_full).max())
