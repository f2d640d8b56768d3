"""The observation's PSF convolution on the padded canvas: no wrap-around into the frame."""

import numpy as np
import pytest

import scarlet2 as sc
from scarlet2.ops.fourier import fast_size
from scarlet2.render.convolve import observation_renderer
from scarlet2.render.geometry import Geometry
from scarlet2.render.observe import render_core


def test_margin_cuts_light_beyond_it_and_nothing_wraps():
    """A bright source straddling the frame's edge (half its light outside): with no margin its
    outside half is cut, so the frame's edge is darker than on a wide canvas by ~the PSF's
    share from outside; with the default margin the difference is that of the light beyond
    the margin only, and the canvas never wraps (the far edge sees nothing of the source)."""
    bands = ["g"]
    psf = np.asarray(sc.MoffatPSF(3.0, beta=2.5).image((31, 31), n_bands=1))
    shape = (40, 40)
    with sc.Scene(sc.Frame(bands, shape)) as scene:
        sc.Source((0.2, 20.0), spectrum=np.array([1e4]), morphology=sc.Sersic(1.0, 4.0), box=45)
    obs = sc.Observation(np.zeros((1, *shape)), weights=np.ones((1, *shape)), psf=psf, bands=bands)
    core = scene.without_wcs()

    def model(geometry):
        return np.asarray(render_core(core, observation_renderer(obs, scene.frame, geometry)))[0]

    wide = model(Geometry(shape, (60, 60), (fast_size(40 + 120), fast_size(40 + 120)), (15, 15)))
    peak = wide.max()
    errors = {}
    for margin in (0.0, 0.5, 1.0):
        geometry = Geometry.build(scene.frame, [obs], margin=margin)
        errors[margin] = np.abs(model(geometry) - wide).max() / peak
        # the row farthest from the source: wrap-around would put the source's light there
        assert np.abs(model(geometry)[-1] - wide[-1]).max() <= 1e-5 * peak
    assert errors[0.0] > 1e-3  # half the source is missing from the convolution
    assert errors[0.5] < 0.1 * errors[0.0] and errors[0.5] < 1e-4
    assert errors[1.0] <= 2e-6


def test_margin_out_of_range_raises():
    psf = np.asarray(sc.GaussianPSF(1.5).image((15, 15), n_bands=1))
    obs = sc.Observation(np.zeros((1, 20, 20)), weights=np.ones((1, 20, 20)), psf=psf, bands=["g"])
    for margin in (-0.1, 1.5):
        with pytest.raises(ValueError, match="margin must be in"):
            Geometry.build(sc.Frame(["g"], (20, 20)), [obs], margin=margin)


def test_box_far_larger_than_the_frame_is_cut_not_wrapped(monkeypatch):
    """A bright n=4 galaxy near a corner of a 30 x 30 frame gets a 315-pixel box: the parts
    beyond the canvas are cut, none wraps in. Rendered the same as in a 130 x 130 frame where it
    sits inside, cropped: with the whole stamp radius kept (MODEL_MARGIN = 1) to 6e-5 of the
    peak (wrapping would be of order 1); with the default half radius (6 pixels here) the light
    cut beyond it is missing from the frame's edge, measured 3.8e-4 of the peak, within the
    profiles' 1e-3 accuracy (this source's cusp, 1.3 pixels from the edge, and n=4 wings are the
    worst case; on the HSC blend the default is within float32 round-off)."""
    from scarlet2.render import geometry

    bands = ["g", "r"]
    psf = np.asarray(sc.MoffatPSF(2.0, beta=3.0).image((25, 25), n_bands=2))

    def render(shape, center):
        with sc.Scene(sc.Frame(bands, shape)) as scene:
            sc.Source(center, spectrum=np.array([1e3, 2e3]), morphology=sc.Sersic(4.0, 8.0, ellipticity=(0.3, 0.1)))
        obs = sc.Observation(np.zeros((2, *shape)), weights=np.ones((2, *shape)), psf=psf, bands=bands)
        return np.asarray(sc.render(scene, obs)), scene.sources[0].box

    big, _ = render((130, 130), (51.3, 78.6))
    default, box = render((30, 30), (1.3, 28.6))
    assert box[0] > 10 * 30
    monkeypatch.setattr(geometry, "MODEL_MARGIN", 1.0)
    whole, _ = render((30, 30), (1.3, 28.6))
    np.testing.assert_allclose(whole, big[:, 50:80, 50:80], rtol=0, atol=2e-4 * big.max())
    np.testing.assert_allclose(default, big[:, 50:80, 50:80], rtol=0, atol=1e-3 * big.max())
