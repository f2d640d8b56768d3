"""A free form's support: the pixels it may light, in its render, its flux, fits and stores."""

import json

import numpy as np
import pytest

import scarlet2 as sc
from scarlet2.errors import InputError
from scarlet2.labeled.serialize import scene_from_json, scene_to_json


def _support(n=15, radius=4):
    yy, xx = np.mgrid[:n, :n] - n // 2
    return np.hypot(yy, xx) <= radius


def _scene(support):
    with sc.Scene(sc.Frame(["a", "b"], (31, 31))) as scene:
        sc.Source(
            (15, 15), spectrum=np.array([2.0, 3.0]), morphology=sc.ArrayMorphology(np.ones((15, 15)), support=support)
        )
    return scene


def test_support_masks_the_image_and_the_flux():
    support = _support()
    scene = _scene(support)
    m = scene.sources[0].components[0].morphology
    img = m.image(np)
    assert np.all(img[~support] == 0) and np.all(img[support] == 1)
    np.testing.assert_allclose(scene.sources[0].flux(np), [2.0 * support.sum(), 3.0 * support.sum()])
    # the rendered model holds the same light, and only what the support lets through
    model = np.asarray(sc.render_source(scene, 0)[0])
    np.testing.assert_allclose(model.sum(axis=(1, 2)), scene.sources[0].flux(np), rtol=1e-4)
    bare = np.asarray(sc.render_source(_scene(None), 0)[0])
    assert bare.sum() > 2 * model.sum()


def test_a_fit_cannot_move_light_beyond_the_support():
    support = _support()
    truth = _scene(None)  # lights the whole 15 x 15 box
    psf = sc.GaussianPSF(1.0)
    blank = sc.Observation(np.zeros((2, 31, 31)), weights=np.ones((2, 31, 31)), psf=psf, bands=["a", "b"])
    obs = sc.Observation(np.asarray(sc.render(truth, blank)), weights=np.ones((2, 31, 31)), psf=psf, bands=["a", "b"])
    fitted, info = sc.fit(_scene(support), obs, max_iter=200, progress=False)
    img = fitted.sources[0].components[0].morphology.image(np)
    assert np.all(img[~support] == 0)
    assert np.all(np.isfinite(img)) and img[support].sum() > 0
    # pixels beyond the support cannot fit the data: they are not degrees of freedom
    assert info.n_free == 2 + 2 + support.sum()  # spectrum, offset, supported pixels
    assert info.dof == 2 * 31 * 31 - info.n_free


def test_support_survives_a_store_and_stores_without_it_still_load(tmp_path):
    support = _support()
    scene = _scene(support)
    sc.save_scene(scene, str(tmp_path / "s.zarr"))
    back = sc.load_scene(str(tmp_path / "s.zarr"))
    np.testing.assert_array_equal(
        np.asarray(back.sources[0].components[0].morphology.support), support.astype(np.float32)
    )
    # a structure written before the support existed: the field is absent, the array unmasked
    text, arrays = scene_to_json(_scene(None))
    structure = json.loads(text)
    source = structure["scene"]["fields"]["sources"]["__tuple__"][0]
    morph = source["fields"]["components"]["__tuple__"][0]["fields"]["morphology"]
    del morph["fields"]["support"]
    old = scene_from_json(json.dumps(structure), arrays)
    assert old.sources[0].components[0].morphology.support is None


def test_support_of_another_shape_is_refused():
    with pytest.raises(InputError, match="support has shape"):
        sc.ArrayMorphology(np.ones((15, 15)), support=np.ones((9, 9)))
