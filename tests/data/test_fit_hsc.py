"""The real HSC COSMOS blend (7 catalogue sources, 5 bands; source 0 is a star)."""

import numpy as np
import pytest

import scarlet2 as sc
from scarlet2 import initialize


@pytest.fixture(scope="module")
def hsc_fit(hsc_blend):
    d = hsc_blend
    obs = sc.Observation(d["images"], variance=d["variance"], psf=d["psfs"], bands=list(d["filters"]))
    pos = np.stack([d["catalog"]["y"], d["catalog"]["x"]], 1)
    scene = initialize(obs, pos, freeform_snr=300)
    fitted, info = sc.fit(scene, obs, max_iter=2000, progress=False)
    return obs, scene, fitted, info


def test_hsc_chi2(hsc_fit):
    _, _, _, info = hsc_fit
    assert info.chi2_dof <= 1.3, f"chi2/dof = {info.chi2_dof:.3f}"


def test_hsc_star_is_point_source(hsc_fit):
    _, scene, fitted, _ = hsc_fit
    sources = [s for s in fitted.sources if not isinstance(s, sc.Background)]
    assert len(sources) == 7
    assert isinstance(sources[0], sc.PointSource)


def test_hsc_model_matches_render(hsc_fit):
    obs, _, fitted, info = hsc_fit
    model = np.asarray(sc.render(fitted, obs))
    chi2 = float(np.sum(np.asarray(obs.weights) * (model - np.asarray(obs.data)) ** 2))
    assert chi2 == pytest.approx(info.chi2, rel=1e-3)
