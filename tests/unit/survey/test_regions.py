"""Regions of a mosaic: cores tile it exactly once, halos and padding are where they belong."""

import numpy as np
import pytest

from scarlet2.errors import InputError
from scarlet2.survey.regions import owner, plan_regions


@pytest.mark.parametrize("shape, tile, halo", [((192, 192), 64, 32), ((200, 130), 64, 20), ((50, 300), 128, 0)])
def test_cores_cover_the_mosaic_once(shape, tile, halo):
    regions = plan_regions(shape, tile, halo)
    count = np.zeros(shape, int)
    for r in regions:
        y0, y1, x0, x1 = r.core
        count[y0:y1, x0:x1] += 1
        oy0, oy1, ox0, ox1 = r.outer
        # the outer box is the core grown by the halo, clipped to the mosaic
        assert (oy0, ox0) == (max(y0 - halo, 0), max(x0 - halo, 0))
        assert (oy1, ox1) == (min(y1 + halo, shape[0]), min(x1 + halo, shape[1]))
        # in the padded array the core starts at (halo, halo) and the outer box fits
        iy, ix = r.inset
        assert (y0 - r.origin[0], x0 - r.origin[1]) == (halo, halo)
        assert 0 <= iy and iy + oy1 - oy0 <= r.padded_shape[0] and 0 <= ix and ix + ox1 - ox0 <= r.padded_shape[1]
    assert np.all(count == 1)


def test_each_pixel_has_one_owner():
    shape, tile = (200, 130), 64
    regions = plan_regions(shape, tile, 16)
    pix = np.stack(np.meshgrid(np.arange(shape[0]), np.arange(shape[1]), indexing="ij"), -1).reshape(-1, 2)
    owners = owner(pix, shape, tile)
    for r in regions:
        assert np.array_equal(r.owns(pix), owners == r.index)


@pytest.mark.parametrize("tile, halo", [(0, 8), (64, -1), (64.0, 8), (True, 8)])
def test_bad_tiles_are_refused(tile, halo):
    with pytest.raises(InputError, match="tile|halo"):
        plan_regions((100, 100), tile, halo)


def test_worker_drops_its_programs_beyond_the_structure_limit():
    """A worker keeps the compiled programs of at most ``max_structures`` scene structures."""
    import jax

    from scarlet2.survey import driver

    double = jax.jit(lambda x: 2 * x)
    double(1.0)
    compiles = []
    listener = lambda name, s, **kw: compiles.append(name) if "backend_compile" in name else None  # noqa: E731
    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        driver._STRUCTURES.clear()
        for structure in ("point:4", "sersic:8", "point:4"):
            driver._bound_programs(structure, 2)
        double(1.0)
        assert compiles == []  # two structures: programs kept
        driver._bound_programs("sersic:16", 2)
        double(1.0)
        assert compiles  # a third: every program dropped, compiled again on demand
        assert driver._STRUCTURES == set()
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
