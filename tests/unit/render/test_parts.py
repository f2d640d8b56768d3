"""Held sources and free-spectrum components rendered once: the parts add up to the whole model."""

import jax.numpy as jnp
import numpy as np
import pytest

import scarlet2 as sc
from scarlet2.infer.objective import log_density_flat
from scarlet2.infer.packing import FlatView, pack_host
from scarlet2.render import parts as parts_module
from scarlet2.render.observe import prepare, render_observed
from scarlet2.render.parts import fixed_parts, render_parts
from scarlet2.simulate.multires import tan_wcs

FINE, COARSE = 0.05, 0.2


def _observations():
    """A fine grid in g, r and a coarse one, rotated and offset, in r, i: two renderers, one of
    them resampling."""
    rng = np.random.default_rng(1)
    fine_shape, coarse_shape = (64, 64), (18, 18)
    psf_fine = np.asarray(sc.MoffatPSF(3.0).image((25, 25), n_bands=2))
    psf_coarse = np.asarray(sc.MoffatPSF(3.5).image((21, 21), n_bands=2))
    fine = sc.Observation(rng.normal(size=(2, *fine_shape)), weights=np.ones((2, *fine_shape)), psf=psf_fine,
                          bands=["g", "r"], wcs=tan_wcs(FINE, fine_shape), name="fine")  # fmt: skip
    coarse = sc.Observation(rng.normal(size=(2, *coarse_shape)), weights=np.ones((2, *coarse_shape)),
                            psf=psf_coarse, bands=["r", "i"], wcs=tan_wcs(COARSE, coarse_shape, 25.0, (0.3, -0.2)),
                            name="coarse")  # fmt: skip
    return [fine, coarse]


def _scene(observations):
    """A galaxy whose spectrum is sampled (linear), a star that moves, a held galaxy in a
    smaller box than the first (grouped with it, so rendered in its box), and a sky level."""
    frame = sc.Frame.from_observations(observations)
    w = observations[0].wcs
    with sc.Scene(frame) as scene:
        sc.Source(w.pixel_to_world(30.2, 33.6), spectrum=[80.0, 120.0, 150.0],
                  morphology=sc.Sersic(1.2, 4.0, (0.2, 0.1)), box=35)  # fmt: skip
        sc.PointSource(w.pixel_to_world(20.4, 24.7), spectrum=[40.0, 50.0, 45.0], box=15)
        sc.Source(w.pixel_to_world(40.5, 26.1), spectrum=[60.0, 70.0, 90.0],
                  morphology=sc.Sersic(3.0, 2.5, (0.0, -0.3)), box=25)  # fmt: skip
        sc.Background([0.5, 0.2, 0.1])
    names = ["sources[0].components[0].spectrum", "sources[1].offset", "sources[1].components[0].spectrum",
             "sources[3].spectrum"]  # fmt: skip
    return sc.with_free(scene, names)


@pytest.fixture(scope="module")
def split():
    observations = _observations()
    core, renderers = prepare(_scene(observations), observations)
    assert len({type(r).__name__ for r in renderers}) == 2  # one crops, one resamples
    return core, renderers


def _images_at(core, renderers, parts, u):
    view = FlatView(core, jnp.asarray(u))
    whole = [np.asarray(render_observed(view.scene, r)) for r in renderers]
    return whole, [np.asarray(m) for m in render_parts(view.scene, renderers, parts, view.stack)]


def test_held_linear_and_moving_parts_add_up_to_the_whole_model(split):
    core, renderers = split
    parts = fixed_parts(core, renderers)
    assert parts.linear
    for r, held, units in zip(renderers, parts.held, parts.units, strict=True):
        assert held.shape == r.data.shape and units.shape == (1, *r.data.shape)
        assert np.abs(np.asarray(held)).max() > 0 and np.abs(np.asarray(units)).max() > 0
    u = pack_host(core)
    # at the fitted values and away from them: a flux and the star's centre changed
    for shift in (0.0, 0.3):
        whole, split_images = _images_at(core, renderers, parts, u + shift)
        for a, b in zip(whole, split_images, strict=True):
            np.testing.assert_allclose(b, a, rtol=0, atol=2e-6 * np.abs(a).max())
    np.testing.assert_allclose(
        float(log_density_flat(jnp.asarray(u + 0.3), core, renderers, parts)),
        float(log_density_flat(jnp.asarray(u + 0.3), core, renderers)),
        rtol=1e-6,
    )


def test_linear_components_move_when_their_images_would_not_fit(split, monkeypatch):
    core, renderers = split
    monkeypatch.setattr(parts_module, "UNIT_BYTES", 0)
    parts = fixed_parts(core, renderers)
    assert not parts.linear and all(u is None for u in parts.units)
    whole, split_images = _images_at(core, renderers, parts, pack_host(core) + 0.3)
    for a, b in zip(whole, split_images, strict=True):
        np.testing.assert_allclose(b, a, rtol=0, atol=2e-6 * np.abs(a).max())


def test_nothing_is_split_when_every_source_moves():
    observations = _observations()
    frame = sc.Frame.from_observations(observations)
    with sc.Scene(frame) as scene:
        sc.PointSource(observations[0].wcs.pixel_to_world(20.4, 24.7), spectrum=[40.0, 50.0, 45.0], box=15)
    core, renderers = prepare(scene, observations)
    assert fixed_parts(core, renderers) is None
