"""Detection finds sources on the slope of a brighter neighbour (GalSim blends, known truth)."""

import numpy as np
import pytest

pytest.importorskip("galsim")

from scarlet2.infer.detection import detect_peaks  # noqa: E402
from scarlet2.labeled.schema import to_observation  # noqa: E402
from scarlet2.simulate import simulate_galsim_blend  # noqa: E402


def _found(found, truth, radius=2.0):
    d = np.hypot(*(truth[:, None, :] - found[None, :, :]).transpose(2, 0, 1))
    return d.min(axis=1) < radius, d.min(axis=0) < radius


def test_curvature_bumps_find_what_maxima_miss_and_nothing_else():
    counts = {"maxima": 0, "bumps": 0}
    n_true = 0
    for seed in range(6):
        blend = simulate_galsim_blend(seed)
        obs = to_observation(blend.dataset)
        bright = blend.truth["snr"].values >= 20
        n_true += bright.sum()
        for name, threshold in (("maxima", np.inf), ("bumps", 5.0)):
            pos, snr = detect_peaks(obs, curvature_threshold=threshold)
            hit, real = _found(pos, blend.positions)
            counts[name] += hit[bright].sum()
            assert real.all(), f"seed {seed}: a detection ({name}) more than 2 px from every true source"
            assert np.all(snr >= 5.0)
    # maxima alone find 30 of these 42, bumps 41: the rest sit on brighter neighbours' slopes
    assert counts["bumps"] >= 0.95 * n_true > counts["maxima"], (counts, n_true)
