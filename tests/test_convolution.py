"""The observation's PSF convolution on the padded canvas: no wrap-around into the frame."""

import numpy as np

import scarlet2 as sc
from scarlet2.fitting import render_core
from scarlet2.fourier import fast_size
from scarlet2.init import initialize
from scarlet2.observation import Geometry


def test_default_padding_matches_a_much_larger_canvas(hsc_blend):
    """The real HSC blend (43 x 43 PSF stamps, sources at the frame's edges): the model rendered
    on the default canvas (frame + the stamp's radius) equals one rendered on a canvas padded by
    100 pixels. A pad of 6 pixels misses by 1.2e-4 of the peak, no pad by 3e-3."""
    d = hsc_blend
    obs = sc.Observation(d["images"], variance=d["variance"], psf=d["psfs"], bands=list(d["filters"]))
    scene = initialize(obs, np.stack([d["catalog"]["y"], d["catalog"]["x"]], 1))
    core = scene.without_wcs()
    default = Geometry.build(scene.frame, [obs])
    assert default.pad == (21, 21)
    (ny, nx), r = scene.frame.shape, 100
    wide = Geometry(scene.frame.shape, (r, r), (fast_size(ny + 2 * r), fast_size(nx + 2 * r)))
    a = np.asarray(render_core(core, obs.renderer(scene.frame, default)))
    b = np.asarray(render_core(core, obs.renderer(scene.frame, wide)))
    peak = b.max(axis=(1, 2))
    assert np.all(np.abs(a - b).max(axis=(1, 2)) <= 2e-5 * peak)


def test_box_far_larger_than_the_frame_is_cut_not_wrapped():
    """A bright n=4 galaxy near a corner of a 30 x 30 frame gets a 315-pixel box: the parts
    beyond the canvas are cut, none wraps in. Rendered the same as in a 130 x 130 frame where it
    sits inside, cropped (measured 6e-5 of the peak; wrapping would be of order 1)."""
    bands = ["g", "r"]
    psf = np.asarray(sc.MoffatPSF(2.0, beta=3.0).image((25, 25), n_bands=2))

    def render(shape, center):
        with sc.Scene(sc.Frame(bands, shape)) as scene:
            sc.Source(center, spectrum=np.array([1e3, 2e3]), morphology=sc.Sersic(4.0, 8.0, ellipticity=(0.3, 0.1)))
        obs = sc.Observation(np.zeros((2, *shape)), weights=np.ones((2, *shape)), psf=psf, bands=bands)
        return np.asarray(sc.render(scene, obs)), scene.sources[0].box

    small, box = render((30, 30), (1.3, 28.6))
    big, _ = render((130, 130), (51.3, 78.6))
    assert box[0] > 10 * 30
    np.testing.assert_allclose(small, big[:, 50:80, 50:80], rtol=0, atol=2e-4 * big.max())
