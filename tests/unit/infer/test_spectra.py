"""The linear spectrum solve: bounded least squares, the components' stamps and the packed
unit-image renders."""

import equinox as eqx
import numpy as np
import pytest
from scipy import sparse
from scipy.optimize import lsq_linear

import scarlet2 as sc
from scarlet2.infer import spectra
from scarlet2.render.observe import prepare
from scarlet2.render.stamps import has_stamps, observed_stamps


def test_bounded_lstsq_matches_a_dense_solver():
    rng = np.random.default_rng(3)
    # a tall sparse problem whose unconstrained solution has negative entries: bounds bind
    a = sparse.random(4000, 30, density=0.05, random_state=4, format="csr")
    a = sparse.hstack([a, np.ones((4000, 1))]).tocsr()  # a sky column, free in sign
    x_true = rng.normal(size=31)
    y = a @ x_true + rng.normal(scale=0.1, size=4000)
    lower = np.r_[np.zeros(30), -np.inf]
    ours = spectra.bounded_lstsq(a, y, lower)
    ref = lsq_linear(a.toarray(), y, bounds=(lower, np.inf), method="bvls").x
    assert np.any(ref[:30] == 0)  # the bounds are active
    np.testing.assert_allclose(ours, ref, atol=1e-8)


def test_bounded_lstsq_ignores_unconstrained_columns():
    a = np.c_[np.ones(10), np.zeros(10)]  # the second column sees no pixel
    x = spectra.bounded_lstsq(a, 2 * np.ones(10), np.zeros(2))
    np.testing.assert_allclose(x, [2.0, 0.0], atol=1e-12)


def test_stamps_equal_one_render_per_component():
    # each component's box through the difference kernel, against the whole render with only
    # that component lit; one source sits at the frame's edge, where the canvas cuts its box
    sim = sc.simulate.simulate_blend(2, n_galaxies=3)
    positions = np.vstack([sim.positions, [[1.0, 30.0]]])
    obs = sc.Observation(sim.images, variance=sim.variance, psf=sim.psfs, bands=sim.bands)
    scene = sc.initialize(obs, positions, solve_spectra=False, background=False)
    # the edge source a wide disk in a 45 px box: the canvas keeps 12 px beyond the frame
    edge = scene.sources[-1].with_box(45)
    edge = eqx.tree_at(lambda s: s.components[0].morphology, edge, sc.Sersic(n=1.0, r_e=8.0))
    scene = scene.replace_sources([*scene.sources[:-1], edge])
    comps = [(i, j) for i, s in enumerate(scene.sources) for j in range(len(getattr(s, "components", ())))]
    core, (renderer,) = prepare(scene, [obs])
    assert has_stamps(renderer)
    stamps = observed_stamps(core, renderer, comps)
    ny, nx = obs.data.shape[-2:]
    for c, ij in enumerate(comps):
        lit = np.zeros((len(comps), 5))
        lit[c] = 1.0
        full = np.asarray(sc.render(spectra.with_spectra(scene, comps, lit, [], np.zeros((0, 5))), obs), float)
        stamp, (y0, x0) = stamps[ij]
        placed = np.zeros((5, ny + 200, nx + 200))
        placed[:, y0 + 100 : y0 + 100 + stamp.shape[1], x0 + 100 : x0 + 100 + stamp.shape[2]] = stamp
        placed = placed[:, 100:-100, 100:-100]
        # the same image up to the kernel's wings beyond the PSF stamp, which the canvas keeps
        # (7e-4 of the kernel's peak at the stamp's edge here: 1-2e-4 of the image's)
        assert np.abs(placed - full).max() <= 3e-4 * np.abs(full).max()
        assert abs(placed.sum() - full.sum()) <= 3e-4 * full.sum()
    assert stamps[comps[-1]][0].sum() < 0.98 * 5  # the edge source's box was cut (by 5%)


def test_packed_unit_images_equal_one_render_per_component(monkeypatch):
    # the whole-render path (observations on other grids): three blends side by side,
    # far-apart sources share renders, neighbours do not
    monkeypatch.setattr(spectra, "has_stamps", lambda renderer: False)
    sims = [sc.simulate.simulate_blend(seed, n_galaxies=3) for seed in (2, 3, 4)]
    images = np.concatenate([s.images for s in sims], axis=-1)
    variance = np.concatenate([s.variance for s in sims], axis=-1)
    positions = np.concatenate([s.positions + [0, 64 * k] for k, s in enumerate(sims)])
    obs = sc.Observation(images, variance=variance, psf=sims[0].psfs, bands=sims[0].bands)
    scene = sc.initialize(obs, positions, solve_spectra=False)
    comps, _, _, packed, _ = spectra._design(scene, obs)
    live = list(range(len(comps)))
    slots = spectra._pack(live, spectra._footprints(scene, obs, comps, live))
    assert len(slots) < len(comps)  # some components shared a render
    ny, nx = obs.data.shape[-2:]
    monkeypatch.setattr(spectra, "_pack", lambda live, rects: [[c] for c in live])
    monkeypatch.setattr(spectra, "_footprints", lambda s, o, c, live: {k: (0, ny, 0, nx) for k in live})
    _, _, _, single, _ = spectra._design(scene, obs)
    for a, b in zip(packed, single, strict=True):
        # the same matrix up to the float32 render's round-off in far tails
        scale = abs(b).sum(axis=0).A.ravel()
        assert np.all(abs(a - b).sum(axis=0).A.ravel() <= 1e-4 * scale + 1e-12)


@pytest.mark.parametrize("hold", [(), (2,)])
def test_solve_recovers_spectra_of_known_morphologies(hold):
    # noiseless data rendered from the initial morphologies: the solve gives back the spectra; a
    # held source (one without light, as the survey's ghosts) stays out and keeps its spectrum
    sim = sc.simulate.simulate_blend(5, n_galaxies=3)
    obs = sc.Observation(sim.images, variance=sim.variance, psf=sim.psfs, bands=sim.bands)
    scene = sc.initialize(obs, sim.positions, solve_spectra=False)
    comps = [(i, j) for i, s in enumerate(scene.sources) for j in range(len(getattr(s, "components", ())))]
    true = np.array([np.asarray(scene.sources[i].components[j].spectrum.value, float) for i, j in comps])
    true[[c for c, (i, _) in enumerate(comps) if i in hold]] = 0.0
    scene = spectra.with_spectra(scene, comps, true, [], np.zeros((0, 5)))
    obs = sc.Observation(np.asarray(sc.render(scene, obs)), variance=sim.variance, psf=sim.psfs, bands=sim.bands)
    start = spectra.with_spectra(scene, comps, np.ones_like(true), [], np.zeros((0, 5)))
    solved = spectra.solve_linear_spectra(start, obs, hold=hold)
    for c, (i, j) in enumerate(comps):
        got = np.asarray(solved.sources[i].components[j].spectrum.value)
        want = np.ones(5) if i in hold else true[c]
        np.testing.assert_allclose(got, want, rtol=2e-3, atol=1e-3 * true.max())
