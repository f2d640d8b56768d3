"""The kept-margin canvas on the real HSC blend (../shared/data)."""

import numpy as np

import scarlet2 as sc
from scarlet2 import initialize
from scarlet2.ops.fourier import fast_size
from scarlet2.render.convolve import observation_renderer
from scarlet2.render.geometry import Geometry
from scarlet2.render.observe import render_core


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
    b = np.asarray(render_core(core, observation_renderer(obs, scene.frame, wide)))
    peak = b.max(axis=(1, 2))
    for geometry in (default, whole):
        a = np.asarray(render_core(core, observation_renderer(obs, scene.frame, geometry)))
        assert np.all(np.abs(a - b).max(axis=(1, 2)) <= 2e-5 * peak)
