"""The observation's PSF convolution on the padded canvas: no wrap-around into the frame."""

import numpy as np
import pytest

import scarlet2 as sc
from scarlet2.fitting import render_core
from scarlet2.fourier import fast_size
from scarlet2.init import initialize
from scarlet2.observation import Geometry


def test_default_padding_matches_a_much_larger_canvas(hsc_blend):
    """The real HSC blend (43 x 43 PSF stamps, sources at the frame's edges): the model rendered
    on the default canvas equals one rendered on a canvas padded by 100 pixels, to float32
    round-off. The default keeps model light MODEL_MARGIN (half) of the stamp's radius beyond
    the frame; the whole radius is the exact layout. A canvas of frame + 2 x 6 pixels (6 of
    margin, and the kernel wrapping into the frame) misses by 1.2e-4 of the peak, no pad by
    3e-3."""
    d = hsc_blend
    obs = sc.Observation(d["images"], variance=d["variance"], psf=d["psfs"], bands=list(d["filters"]))
    scene = initialize(obs, np.stack([d["catalog"]["y"], d["catalog"]["x"]], 1))
    core = scene.without_wcs()
    default = Geometry.build(scene.frame, [obs])
    # margin ceil(21 / 2) = 11: 58 + 21 + 11 = 90 and 48 + 21 + 11 = 80 are FFT sizes already
    assert default == Geometry((58, 48), (11, 11), (90, 80), (21, 21))
    whole = Geometry.build(scene.frame, [obs], margin=1.0)
    assert whole == Geometry((58, 48), (21, 21), (100, 90), (21, 21))
    (ny, nx), r = scene.frame.shape, 100
    wide = Geometry(scene.frame.shape, (r, r), (fast_size(ny + 2 * r), fast_size(nx + 2 * r)), (21, 21))
    b = np.asarray(render_core(core, obs.renderer(scene.frame, wide)))
    peak = b.max(axis=(1, 2))
    for geometry in (default, whole):
        a = np.asarray(render_core(core, obs.renderer(scene.frame, geometry)))
        assert np.all(np.abs(a - b).max(axis=(1, 2)) <= 2e-5 * peak)


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
        return np.asarray(render_core(core, obs.renderer(scene.frame, geometry)))[0]

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
    from scarlet2 import observation

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
    monkeypatch.setattr(observation, "MODEL_MARGIN", 1.0)
    whole, _ = render((30, 30), (1.3, 28.6))
    np.testing.assert_allclose(whole, big[:, 50:80, 50:80], rtol=0, atol=2e-4 * big.max())
    np.testing.assert_allclose(default, big[:, 50:80, 50:80], rtol=0, atol=1e-3 * big.max())
