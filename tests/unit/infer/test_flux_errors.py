"""Flux errors marginal over shapes from coloured differences (the survey's errors) against the
full Fisher matrix, on a GalSim-drawn blend."""

import numpy as np
import pytest

import scarlet2 as sc
from scarlet2.infer.flux_errors import marginal_flux_errors
from scarlet2.infer.spectra import linear_flux_errors
from scarlet2.labeled.results import build_result

pytestmark = pytest.mark.filterwarnings("ignore::scarlet2.BoxLeakageWarning")


@pytest.fixture(scope="module")
def blend():
    # four galaxies 7-14 px apart: neighbours' shapes and fluxes are correlated with each other's
    b = sc.simulate.simulate_galsim_blend(3, n_sources=4, shape=(64, 64))
    obs = sc.to_observation(b.dataset)
    scene = sc.initialize(obs, np.asarray(b.positions, float))
    fitted, info = sc.fit(scene, obs, progress=False)
    rows = [i for i, s in enumerate(fitted.sources) if not isinstance(s, sc.Background)]
    full = build_result(b.dataset, obs, fitted, info).scarlet.catalog["flux_err"].values
    return obs, fitted, rows, full, (b.dataset, info)


def test_marginal_errors_are_the_full_fisher_errors(blend):
    obs, fitted, rows, full, _ = blend
    assert np.all(np.isfinite(full))
    marginal = marginal_flux_errors(fitted, obs)
    # forward differences of the render where the full matrix takes central ones: 1% apart
    np.testing.assert_allclose(marginal[rows], full, rtol=0.01)
    assert np.all(np.isnan(marginal[[i for i in range(len(fitted.sources)) if i not in rows]]))  # the sky


def test_errors_conditional_on_the_shapes_are_too_small(blend):
    obs, fitted, rows, full, _ = blend
    linear = linear_flux_errors(fitted, obs)[rows]
    assert np.all(linear <= full * 1.001)
    assert np.median(linear / full) < 0.8  # what the survey catalog reported before


def test_held_sources_get_no_error_and_change_nothing_else(blend):
    obs, fitted, rows, full, _ = blend
    faint = rows[int(np.argmin(full.sum(axis=1)))]
    held = marginal_flux_errors(fitted, obs, hold={faint})
    assert np.all(np.isnan(held[faint]))
    others = [i for i in rows if i != faint]
    assert np.all(np.isfinite(held[others]))


def test_results_beyond_the_dense_limit_still_get_flux_errors(blend, monkeypatch):
    # a scene with more free parameters than a dense Fisher matrix takes (a large field) had no
    # errors at all; its fluxes now get them from the same information
    import scarlet2.labeled.results as results

    obs, fitted, rows, full, (ds, info) = blend
    monkeypatch.setattr(results, "MAX_DENSE", 10)
    result = results.build_result(ds, obs, fitted, info)
    assert result["fit"].attrs["errors"] == "fisher (fluxes only)"
    np.testing.assert_allclose(result.scarlet.catalog["flux_err"].values, full, rtol=0.01)
    assert np.all(np.isnan(result.scarlet.catalog["r_e_err"].values))  # shapes: dense matrix only


def test_derivatives_are_kept_where_a_source_has_light(blend):
    # a source's box and the PSF's reach hold far more than its light: derivatives are cut to
    # where its model reaches LIGHT_LEVEL noise sigmas, so renders can move more sources at once
    from scarlet2.infer import flux_errors as fe
    from scarlet2.infer.spectra import _design

    obs, fitted, rows, full, _ = blend
    comps, _, band_idx, matrices, _ = _design(fitted, obs)
    live = list(range(len(comps)))
    boxes = fe._source_rects(fitted, obs, comps, live)
    light = fe._light_rects(fitted, comps, live, band_idx, matrices, boxes, obs.data.shape[-1])
    area = {i: (r[1] - r[0]) * (r[3] - r[2]) for i, r in light.items()}
    for i, r in light.items():
        b = boxes[i]
        assert b[0] <= r[0] < r[1] <= b[1] and b[2] <= r[2] < r[3] <= b[3]
    assert sum(area.values()) < 0.8 * sum((b[1] - b[0]) * (b[3] - b[2]) for b in boxes.values())


def test_stamp_derivatives_equal_one_source_renders(blend, monkeypatch):
    # a source's derivatives from its box differences through the kernel, against whole
    # renders that move one source at a time (no neighbour's change in its footprint)
    from scarlet2.infer import flux_errors as fe
    from scarlet2.infer.spectra import _design
    from scarlet2.render.observe import prepare

    obs, fitted, rows, full, _ = blend
    comps, _, band_idx, matrices, _ = _design(fitted, obs)
    live = list(range(len(comps)))
    core, renderers = prepare(fitted, [obs])
    entries, x, steps, width = fe._shape_entries(core, set())
    rects = fe._source_rects(fitted, obs, comps, live)
    stamps = fe._shape_jacobians(core, renderers, obs, entries, x, steps, rects, width)

    def one_at_a_time(entries, rects):
        order = sorted(entries)
        return {
            i: [sum(len(entries[j]) for j in order[:k]) + e for e in range(len(entries[i]))]
            for k, i in enumerate(order)
        }

    monkeypatch.setattr(fe, "has_stamps", lambda renderer: False)
    monkeypatch.setattr(fe, "_schedule", one_at_a_time)
    renders = fe._shape_jacobians(core, renderers, obs, entries, x, steps, rects, width)
    assert sorted(stamps) == sorted(renders) == sorted(entries)
    # a float32 render's round-off over the whole frame, divided by the step: the renders' noise
    whitened = np.sqrt(np.asarray(obs.weights)) * np.asarray(sc.render(fitted, obs))
    for i in entries:
        scale = np.abs(renders[i]).max(axis=(1, 2, 3))
        noise = 4 * np.finfo(np.float32).eps * np.abs(whitened).max() / np.abs(steps[entries[i]])
        assert np.all(np.abs(stamps[i] - renders[i]).max(axis=(1, 2, 3)) <= 2e-3 * scale + noise)
        assert np.all(noise < 0.1 * scale)  # the comparison has teeth
