"""Point or extended, chosen after the fit on each source's deblended light.

GalSim-drawn stars beside compact Sersic galaxies (r_e 0.25-0.35", a third to a half of the PSF's
FWHM): every source starts extended, and the selection must turn exactly the stars into points.
"""

import numpy as np
import pytest

pytest.importorskip("galsim")

import scarlet2 as sc  # noqa: E402
from scarlet2.infer.selection import point_like, select_point_sources  # noqa: E402
from scarlet2.labeled.schema import to_observation  # noqa: E402
from scarlet2.simulate import simulate_galsim_blend  # noqa: E402


def _fitted(seed):
    b = simulate_galsim_blend(
        seed, n_sources=4, kinds={"star": 0.5, "sersic": 0.5}, r_e_range=(0.25, 0.35), snr_range=(60, 300)
    )
    obs = to_observation(b.dataset)
    scene = sc.initialize(obs, b.positions, point_threshold=-np.inf)
    fitted, _ = sc.fit(scene, obs, progress=False)
    return b, obs, fitted


@pytest.mark.parametrize("seed", [0, 3])
def test_stars_and_only_stars_become_points(seed):
    b, obs, fitted = _fitted(seed)
    sources = [i for i, s in enumerate(fitted.sources) if not isinstance(s, sc.Background)]
    assert all(fitted.sources[i].kind != "point" for i in sources)
    chosen = sorted(sources.index(i) for i in point_like(fitted, obs))
    assert chosen == list(np.flatnonzero(b.truth["kind"].values == "star"))

    points, idx = select_point_sources(fitted, obs)
    assert sorted(idx) == sorted(point_like(fitted, obs))
    for i in idx:
        assert isinstance(points.sources[i], sc.PointSource)
        # the point source starts with the extended model's flux
        np.testing.assert_allclose(points.sources[i].flux(np), fitted.sources[i].flux(np), rtol=1e-3)
