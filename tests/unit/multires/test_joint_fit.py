"""Joint fits of a sharp (HST-like) and a wide (HSC-like) view, drawn by GalSim with truth."""

import numpy as np
import pytest

import scarlet2 as sc

pytest.importorskip("galsim")
from scarlet2.simulate import simulate_pair, source_fluxes  # noqa: E402


def _fit(scene, observations):
    """Initialize -> grow boxes -> fit -> grow -> refit: what fit_dataset does."""
    scene = sc.grow_boxes(scene, 1e-3)
    fitted, _ = sc.fit(scene, observations, max_iter=600, progress=False)
    fitted, info = sc.fit(sc.grow_boxes(fitted, 1e-3), observations, max_iter=600, progress=False)
    return fitted, info


def _flux_errors(seed):
    pair = simulate_pair(seed)
    sharp, wide = pair.observations()
    sky = pair.sky_positions()
    true = pair.truth["flux"][:, 1:]  # the wide view's bands
    joint, _ = _fit(sc.initialize([sharp, wide], sky), [sharp, wide])
    alone, _ = _fit(sc.initialize(wide, sky, frame=sc.Frame(wide.bands, (40, 40), wcs=wide.wcs)), wide)
    assert joint.frame.bands == ("F814W", "g", "r", "i", "z", "y")
    return np.abs(source_fluxes(joint)[:, 1:] / true - 1), np.abs(source_fluxes(alone) / true - 1)


@pytest.mark.slow
def test_joint_fit_splits_blended_light_better_than_the_wide_view_alone():
    """Neighbours within the wide PSF's FWHM: the sharp view resolves them, so the joint fit's
    per-band fluxes are at least twice as close to the truth (median over sources and bands)."""
    errors = [_flux_errors(seed) for seed in (0, 1, 2)]
    joint = np.median(np.concatenate([e[0].ravel() for e in errors]))
    alone = np.median(np.concatenate([e[1].ravel() for e in errors]))
    assert joint * 2 <= alone, f"joint median |df/f| {joint:.3f}, wide view alone {alone:.3f}"


def test_joint_fit_on_one_pair_beats_the_wide_view_alone():
    joint, alone = _flux_errors(2)
    assert np.median(joint) * 2 <= np.median(alone), f"joint {np.median(joint):.3f}, alone {np.median(alone):.3f}"
