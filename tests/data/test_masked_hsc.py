"""The real HSC blend with 10% of its pixels masked starts from the same model as without."""

import numpy as np

import scarlet2 as sc
from tests.conftest import shared_file


def test_masked_hsc_blend_initializes_the_same_kinds():
    d = np.load(shared_file("hsc_cosmos_35.npz"))
    positions = np.stack([d["catalog"]["y"], d["catalog"]["x"]], 1)
    bands = [str(b) for b in d["filters"]]
    mask = np.random.default_rng(0).uniform(size=d["images"].shape) < 0.1
    kinds = []
    for variance in (d["variance"], np.where(mask, np.inf, d["variance"])):
        obs = sc.Observation(d["images"], variance=variance, psf=d["psfs"], bands=bands)
        kinds.append([s.kind for s in sc.initialize(obs, positions).sources])
    assert kinds[0] == kinds[1] and kinds[0].count("point") == 3
