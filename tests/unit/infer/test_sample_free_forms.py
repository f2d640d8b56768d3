"""Sampling a fit with free-form morphologies holds their pixels unless asked not to."""

import warnings

import numpy as np
import pytest

import scarlet2 as sc
from scarlet2.infer.sample import hold_free_forms

pytest.importorskip("blackjax")


def _scene():
    with sc.Scene(sc.Frame(["g", "r"], (24, 24))) as scene:
        sc.Source((12.0, 12.0), spectrum=[5.0, 6.0], morphology=sc.ArrayMorphology(np.ones((9, 9))), box=9)
        sc.Source((6.0, 6.0), spectrum=[3.0, 4.0], morphology=sc.Sersic(1.0, 2.0), box=15)
    return scene


def test_hold_free_forms_keeps_everything_but_the_pixels_free():
    scene = _scene()
    names = sc.parameter_names(scene)
    pixels = [n for n in names if n.endswith("morphology.array")]
    assert pixels == ["sources[0].components[0].morphology.array"]
    held = hold_free_forms(scene)
    assert sc.parameter_names(held) == [n for n in names if n not in pixels]
    np.testing.assert_array_equal(held.sources[0].components[0].morphology.array.value, np.ones((9, 9)))
    parametric = hold_free_forms(held)
    assert parametric is held  # nothing left to hold


def test_a_free_form_fit_result_samples_without_divergences(tmp_path):
    """ds.scarlet.fit(model="freeform") -> result.scarlet.sample(): the pixels held, the rest mixes."""
    rng = np.random.default_rng(3)
    shape, bands = (32, 32), ["g", "r", "i"]
    psf = np.asarray(sc.MoffatPSF(3.0).image((21, 21), n_bands=3))
    with sc.Scene(sc.Frame(bands, shape)) as truth:
        sc.Source((16.0, 15.0), spectrum=[2000.0, 3000.0, 4000.0], morphology=sc.Sersic(1.0, 3.0, (0.3, 0.0)), box=35)
        # a blue clump in the disk, not in the catalogue: structure one profile cannot fit
        sc.Source((18.5, 18.0), spectrum=[600.0, 300.0, 100.0], morphology=sc.Gaussian(1.0), box=15)
    template = sc.Observation(np.zeros((3, *shape)), weights=np.ones((3, *shape)), psf=psf, bands=bands)
    data = np.asarray(sc.render(truth, template)) + rng.normal(0, 1, (3, *shape))
    ds = sc.from_arrays(data, weight=np.ones((3, *shape)), psf=psf, bands=bands)
    result = ds.scarlet.fit(catalog=np.array([[16.0, 15.0]]), model="freeform", progress=False)
    names = sc.parameter_names(sc.labeled.store.scene_from_dataset(result["scene"].to_dataset()))
    assert any(n.endswith("morphology.array") for n in names)  # the fit made a free form
    with warnings.catch_warnings():
        warnings.simplefilter("error", sc.DivergenceWarning)
        post = result.scarlet.sample(num_chains=2, num_warmup=150, num_samples=150, progress=False)
    assert not any("array" in v for v in post["posterior"].data_vars)
    assert int(post["sample_stats"]["diverging"].sum()) == 0
    flux = post["posterior"]["flux"].values[:, :, 0]  # (chain, draw, band) of the free form
    assert np.all(np.ptp(flux, axis=(0, 1)) > 0)  # its spectrum is sampled
