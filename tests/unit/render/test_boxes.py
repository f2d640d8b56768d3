"""Box leakage: profiles wider than their box wrap around inside it (the box is one FFT)."""

import jax.numpy as jnp
import numpy as np
import pytest

import scarlet2 as sc
from scarlet2.ops.fourier import BOX_SIZES
from scarlet2.simulate import simulate_blend

PROFILES = [
    sc.Sersic(1.0, 4.0),
    sc.Sersic(4.0, 3.0, (0.4, 0.2)),
    sc.Sersic(0.5, 6.0),
    sc.Gaussian(3.0, (0.0, 0.5)),
    sc.Spergel(-0.5, 3.0, (0.3, 0.0)),
]


def _outside_rendered(m, box):
    big = 6 * box + 1  # the same profile in a box where it does not wrap; its centre crop
    img = np.asarray(m.render((big, big), jnp.array([big // 2, big // 2], jnp.float32), sc.GaussianPSF(0.7)))
    o = (big - box) // 2
    return 1 - img[o : o + box, o : o + box].sum() / img.sum()


@pytest.mark.parametrize("m", PROFILES, ids=lambda m: type(m).__name__)
def test_flux_outside_bounds_what_the_box_misses(m):
    round_ = float(np.hypot(*m.g1g2())) == 0
    for box in (15, 27, 45):
        measured, bound = _outside_rendered(m, box), m.flux_outside(box / 2)
        assert measured - 1e-4 <= bound, (box, measured, bound)
        if round_:  # a circle inscribed in the square: close; an ellipse is a looser bound
            assert bound <= 2 * measured + 1e-3, (box, measured, bound)


def test_points_and_pixel_arrays_never_leak():
    assert sc.Point().flux_outside(1.0) == 0.0
    assert sc.ArrayMorphology(np.ones((5, 5))).flux_outside(1.0) == 0.0


def _scene(box):
    frame = sc.Frame(list("gr"), (60, 60))
    with sc.Scene(frame) as scene:
        sc.Source(center=(30.0, 30.0), spectrum=[10.0, 20.0], morphology=sc.Sersic(1.0, 6.0), box=box)
        sc.PointSource(center=(10.0, 10.0), spectrum=[5.0, 5.0], box=9)
    return scene


def test_grow_boxes_only_grows_what_leaks():
    scene = _scene(15)
    leak = sc.box_leakage(scene)
    assert leak[0] > 0.3 and leak[1] == 0.0
    grown = sc.grow_boxes(scene, max_leakage=0.02)
    assert grown.sources[1].box == (9, 9)  # the point source keeps its box
    box = grown.sources[0].box[0]
    assert sc.grow_boxes(scene, max_leakage=0.5).sources[0].box == (15, 15)  # within the allowance
    # the smallest standard size that holds it: the next size down would leak more
    smaller = max(b for b in BOX_SIZES if b < box)
    assert sc.box_leakage(_scene(smaller))[0] > 0.02 >= sc.box_leakage(grown)[0]
    # everything but the box is shared
    assert grown.sources[0].components is scene.sources[0].components


def test_fit_warns_and_reports_leaking_boxes():
    sim = simulate_blend(0)
    obs = sim.observation()
    scene = sc.initialize(obs, sim.positions)
    sources = list(scene.sources)
    i = next(k for k, s in enumerate(sources) if isinstance(s, sc.Source) and not isinstance(s, sc.PointSource))
    sources[i] = sources[i].with_box(9)  # far too small for any of the galaxies
    with pytest.warns(sc.BoxLeakageWarning, match=rf"source {i} \(\d+% beyond its 9-px box\)"):
        _, info = sc.fit(scene.replace_sources(sources), obs, max_iter=50, progress=False)
    assert info.box_leakage.shape == (len(sources),) and info.box_leakage[i] > 0.2


def test_pixel_array_sources_keep_their_box():
    frame = sc.Frame(["g"], (30, 30))
    with sc.Scene(frame):
        src = sc.Source(center=(15.0, 15.0), spectrum=[1.0], morphology=sc.ArrayMorphology(np.ones((7, 7))))
    with pytest.raises(ValueError, match=r"pixel-array morphology keeps its \(7, 7\) box \(asked for 15\)"):
        src.with_box(15)


def test_a_source_with_another_box_is_freed_with_its_arrays():
    """A survey worker re-boxes every source of every region: a copy that outlives its scene kept
    its arrays alive (~3 MB per region, a worker's memory growing with the mosaic)."""
    import gc
    import weakref

    src = sc.Source((10.0, 10.0), spectrum=[1.0], morphology=sc.Sersic(1.0, 2.0, (0.0, 0.0)), box=15)
    boxed = src.with_box(31)
    assert boxed.box == (31, 31) and src.box == (15, 15) and boxed.components is src.components
    ref = weakref.ref(boxed)
    del boxed
    gc.collect()
    assert ref() is None
