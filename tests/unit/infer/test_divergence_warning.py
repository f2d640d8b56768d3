"""Draws that diverge en masse are flagged, with the likely cause named."""

import warnings

import numpy as np
import pytest

from scarlet2 import DivergenceWarning
from scarlet2.infer.sample import DIVERGENCE_WARNING, warn_divergences


def test_a_few_divergences_pass_quietly():
    diverging = np.zeros((4, 1000), bool)
    diverging[0, : int(DIVERGENCE_WARNING * diverging.size)] = True
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_divergences(diverging, 17, whitened=True)


def test_many_divergences_warn_with_the_count():
    diverging = np.zeros((4, 500), bool)
    diverging[:, :50] = True  # 10%
    with pytest.warns(DivergenceWarning, match=r"200 of 2000 draws \(10%\) diverged") as record:
        warn_divergences(diverging, 17, whitened=True)
    assert "free-form" not in str(record[0].message)


def test_unwhitened_scene_is_named_as_the_cause():
    diverging = np.ones((4, 100), bool)
    with pytest.warns(DivergenceWarning, match=r"2148 free parameters .*free-form pixels.*with_free"):
        warn_divergences(diverging, 2148, whitened=False)
