"""Moving point sources rendered as their observation's PSF in a stamp (scarlet2.render.points),
checked against GalSim's drawing of the same PSF at the same sub-pixel centres."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import scarlet2 as sc
from scarlet2.infer.objective import log_density_flat
from scarlet2.infer.packing import pack_host
from scarlet2.model.parameter import value_of
from scarlet2.render.observe import prepare
from scarlet2.render.parts import Parts, fixed_parts, render_parts

galsim = pytest.importorskip("galsim")

SHAPE, PSF_SIZE = (48, 52), 41
#: A Moffat (beta 3) of FWHM 3 pixels: sampled well enough that a sub-pixel shift of its image
#: is defined to ~1e-3 of its peak
PSF = galsim.Moffat(beta=3.0, fwhm=3.0)


def _drawn(center):
    """GalSim's image (unit flux) of the PSF centred at ``center`` (y, x) in a SHAPE image."""
    offset = (center[1] - (SHAPE[1] - 1) / 2, center[0] - (SHAPE[0] - 1) / 2)
    return PSF.drawImage(nx=SHAPE[1], ny=SHAPE[0], scale=1.0, offset=offset).array / PSF.flux


def _split(star_at=(20.0, 27.0)):
    psf = PSF.drawImage(nx=PSF_SIZE, ny=PSF_SIZE, scale=1.0).array
    obs = sc.Observation(np.zeros((2, *SHAPE)), weights=np.ones((2, *SHAPE)), psf=np.stack([psf, psf]) / psf.sum(),
                         bands=["g", "r"])  # fmt: skip
    with sc.Scene(sc.Frame(["g", "r"], SHAPE)) as scene:
        sc.PointSource(star_at, spectrum=[1.0, 2.0], box=15)
        sc.Source((10.0, 10.0), spectrum=[5.0, 5.0], morphology=sc.Sersic(1.0, 2.0, (0.1, 0.0)), box=25)
    scene = sc.with_free(scene, ["sources[0].offset", "sources[0].components[0].spectrum"])
    core, renderers = prepare(scene, [obs])
    return core, renderers, fixed_parts(core, renderers)


def _star_only(parts, points=True):
    """``parts`` without the held galaxy, with or without the point stamps."""
    held = tuple(jnp.zeros_like(h) for h in parts.held)
    return Parts(held, parts.units, parts.linear, parts.points if points else None)


def _at(core, center):
    offset = jnp.asarray(np.asarray(center) - np.asarray(core.sources[0].origin), jnp.float32)
    return eqx.tree_at(lambda s: s.sources[0].offset.value, core, offset)


@pytest.mark.parametrize("center", [(20.0, 27.0), (20.3, 26.6), (20.5, 27.5), (19.79, 27.37), (1.3, 50.2)])
def test_a_moving_star_is_its_psf_at_its_centre(center):
    core, renderers, parts = _split()
    assert parts.points is not None and parts.points[0].shape[0] < SHAPE[0]  # a stamp smaller than the canvas
    scene = _at(core, center)
    stamp = np.asarray(render_parts(scene, renderers, _star_only(parts))[0])
    canvas = np.asarray(render_parts(scene, renderers, _star_only(parts, points=False))[0])
    truth = _drawn(center)
    for band, flux in enumerate((1.0, 2.0)):
        err = np.abs(stamp[band] - flux * truth).max() / (flux * truth.max())
        assert err < 1e-3, (center, band, err)
        # no worse than the canvas path (which shifts the model PSF in its box: 3e-3 here)
        assert err <= np.abs(canvas[band] - flux * truth).max() / (flux * truth.max()) + 1e-4


def test_a_star_far_beyond_the_image_adds_no_light():
    core, renderers, parts = _split()
    for center in [(-40.0, 20.0), (20.0, 120.0), (200.0, -200.0)]:
        image = np.asarray(render_parts(_at(core, center), renderers, _star_only(parts))[0])
        assert np.abs(image).max() < 1e-6


def test_the_log_density_gradient_moves_the_star_where_the_data_are():
    """The stamp path's gradient of the log density matches finite differences, and a fit of the
    star's centre alone on GalSim's image lands on its true centre."""
    core, renderers, parts = _split()
    truth_at = np.array([20.37, 27.21])
    data = np.stack([_drawn(truth_at), 2 * _drawn(truth_at)]) * 1000.0
    renderers = [eqx.tree_at(lambda r: r.data, renderers[0], jnp.asarray(data, jnp.float32))]
    core = _at(core, truth_at + [0.3, -0.25])
    u = jnp.asarray(pack_host(core))
    density = jax.jit(lambda v: log_density_flat(v, core, renderers, parts))
    grad = np.asarray(jax.grad(lambda v: log_density_flat(v, core, renderers, parts))(u))
    h = 1e-2
    for i in range(u.size):
        e = jnp.zeros_like(u).at[i].set(h)
        fd = (float(density(u + e)) - float(density(u - e))) / (2 * h)
        np.testing.assert_allclose(grad[i], fd, rtol=2e-2, atol=1e-3 * np.abs(grad).max())
    fitted, _ = sc.fit(core, [_observation(data)], max_iter=300, progress=False)
    center = np.asarray(fitted.sources[0].origin) + np.asarray(value_of(fitted.sources[0].offset))
    np.testing.assert_allclose(center, truth_at, atol=0.01)


def _observation(data):
    psf = PSF.drawImage(nx=PSF_SIZE, ny=PSF_SIZE, scale=1.0).array
    return sc.Observation(data, weights=np.ones_like(data), psf=np.stack([psf, psf]) / psf.sum(), bands=["g", "r"])


def test_two_moving_stars_add_up():
    psf = PSF.drawImage(nx=PSF_SIZE, ny=PSF_SIZE, scale=1.0).array
    obs = sc.Observation(np.zeros((2, *SHAPE)), weights=np.ones((2, *SHAPE)), psf=np.stack([psf, psf]) / psf.sum(),
                         bands=["g", "r"])  # fmt: skip
    centers = [(14.3, 20.6), (30.8, 33.2)]
    with sc.Scene(sc.Frame(["g", "r"], SHAPE)) as scene:
        sc.PointSource(centers[0], spectrum=[1.0, 2.0], box=15)
        sc.PointSource(centers[1], spectrum=[3.0, 0.5], box=15)
        sc.Source((40.0, 8.0), spectrum=[5.0, 5.0], morphology=sc.Sersic(1.0, 2.0, (0.1, 0.0)), box=25)
    free = [f"sources[{i}].{p}" for i in (0, 1) for p in ("offset", "components[0].spectrum")]
    core, renderers = prepare(sc.with_free(scene, free), [obs])
    parts = fixed_parts(core, renderers)
    assert parts.points is not None
    image = np.asarray(render_parts(core, renderers, _star_only(parts))[0])
    truth = np.stack(
        [1.0 * _drawn(centers[0]) + 3.0 * _drawn(centers[1]), 2.0 * _drawn(centers[0]) + 0.5 * _drawn(centers[1])]
    )
    assert np.abs(image - truth).max() < 1e-3 * truth.max()
