"""Posterior sampling (BlackJAX NUTS) and its labeled DataTree, summary and diagnostics."""

import jax
import numpy as np
import pytest
import xarray as xr

import scarlet2 as sc
from scarlet2.infer.diagnostics import ess_bulk, ess_tail, rhat

pytest.importorskip("blackjax")
COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"


def _problem(seed):
    """A galaxy and a star in 3 bands, data drawn from the model with unit noise (a sampler
    check: the posterior of the model that made the data)."""
    rng = np.random.default_rng(seed)
    shape, bands = (32, 32), ["g", "r", "i"]
    psf = np.asarray(sc.MoffatPSF(3.0).image((21, 21), n_bands=3))
    with sc.Scene(sc.Frame(bands, shape)) as truth:
        sc.Source(rng.uniform(14, 17, 2), spectrum=[200.0, 300.0, 400.0], morphology=sc.Sersic(1.0, 3.0, (0.1, 0.0)),
                  box=35)  # fmt: skip
        sc.PointSource(rng.uniform(7, 9, 2), spectrum=[100.0, 80.0, 60.0], box=15)
    template = sc.Observation(np.zeros((3, *shape)), weights=np.ones((3, *shape)), psf=psf, bands=bands)
    data = np.asarray(sc.render(truth, template)) + rng.normal(0, 1, (3, *shape))
    obs = sc.Observation(data, weights=np.ones((3, *shape)), psf=psf, bands=bands, name="toy")
    fitted, _ = sc.fit(truth, obs, progress=False)
    return truth, fitted, obs


@pytest.fixture(scope="module")
def posterior():
    truth, fitted, obs = _problem(0)
    post = sc.sample(fitted, obs, num_chains=4, num_warmup=300, num_samples=400, seed=0, progress=False)
    return truth, fitted, obs, post


def test_posterior_tree_has_the_arviz_layout(posterior):
    _, _, _, post = posterior
    assert {"posterior", "sample_stats", "observed_data", "constant_data", "scene"} <= set(post.children)
    flux = post["posterior"]["flux"]
    assert flux.dims == ("chain", "draw", "source", "band") and flux.shape == (4, 400, 2, 3)
    stats = post["sample_stats"].to_dataset()
    assert {"lp", "acceptance_rate", "step_size", "tree_depth", "n_steps", "diverging", "energy"} <= set(stats)
    assert post.attrs["inference_library"] == "blackjax" and post.attrs["seed"] == 0
    assert post.attrs["scene_structure"] == post["scene"].attrs["structure"] and post.attrs["scene_arrays"] == "scene"


def test_chains_mix_and_widths_match_the_fisher_errors(posterior):
    truth, fitted, obs, post = posterior
    table = sc.summary(post)
    flux_rows = table[table.index.str.startswith("flux[")]
    assert (flux_rows["r_hat"] < 1.02).all() and (flux_rows["ess_bulk"] > 400).all(), flux_rows
    assert table.attrs["divergences"] == 0
    fisher = sc.uncertainties(fitted, obs)
    sd = post["posterior"]["flux"].std(("chain", "draw")).values
    for k, path in enumerate(["sources[0].components[0].spectrum", "sources[1].components[0].spectrum"]):
        ratio = sd[k] / fisher[path]
        assert np.all((ratio > 0.8) & (ratio < 1.25)), (path, ratio)
    true = np.array([np.asarray(s.flux()) for s in truth.sources])
    mean = post["posterior"]["flux"].mean(("chain", "draw")).values
    assert np.all(np.abs(mean - true) < 4 * sd)


def test_zarr_round_trip_keeps_the_summary(posterior, tmp_path):
    *_, post = posterior
    post.to_zarr(tmp_path / "post.zarr")
    back = xr.open_datatree(tmp_path / "post.zarr", engine="zarr")
    a, b = sc.summary(post), sc.summary(back)
    assert sorted(a.index) == sorted(b.index)  # Zarr lists variables alphabetically
    assert np.allclose(a.values, b.loc[a.index].values, equal_nan=True)
    scene = sc.load_scene(tmp_path / "post.zarr")  # the scene travels with the draws
    assert len(scene.sources) == 2


def test_second_sample_of_the_same_structure_does_not_compile(posterior):
    events = []

    def listener(name, duration, **kw):
        if name == COMPILE_EVENT:
            events.append(name)

    _, fitted, obs = _problem(1)
    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        sc.sample(fitted, obs, num_chains=4, num_warmup=300, num_samples=400, seed=3, progress=False)
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
    assert not events, f"{len(events)} compilations"


def test_diagnostics_on_known_chains():
    rng = np.random.default_rng(1)
    iid = rng.standard_normal((4, 1000))
    assert abs(rhat(iid) - 1) < 0.01
    assert 0.8 * 4000 < ess_bulk(iid) < 1.2 * 4000 and ess_tail(iid) > 0.6 * 4000
    shifted = iid + np.array([0, 0, 0, 2.0])[:, None]
    assert rhat(shifted) > 1.1
    rho, ar = 0.9, np.zeros((4, 4000))
    noise = rng.standard_normal((4, 4000))
    for t in range(1, 4000):
        ar[:, t] = rho * ar[:, t - 1] + noise[:, t]
    expected = 16000 * (1 - rho) / (1 + rho)
    assert 0.75 * expected < ess_bulk(ar) < 1.25 * expected


def test_sample_a_fit_result_through_the_accessor_and_the_cli(tmp_path):
    """ds.scarlet.fit() -> result.scarlet.sample(), and scarlet2 sample FIT.zarr --out POST.zarr."""
    from scarlet2.cli import main

    truth, _, obs = _problem(2)
    ds = sc.from_arrays(np.asarray(obs.data), weight=np.asarray(obs.weights), psf=np.asarray(obs.psf.array),
                        bands=list(obs.bands))  # fmt: skip
    result = ds.scarlet.fit(catalog=np.array([np.asarray(s.center) for s in truth.sources]), progress=False)
    post = result.scarlet.sample(num_chains=2, num_warmup=200, num_samples=200, progress=False)
    assert post["posterior"]["flux"].shape[:2] == (2, 200)
    sc.write_zarr(result, tmp_path / "fit.zarr")
    out = tmp_path / "post.zarr"
    args = ["sample", str(tmp_path / "fit.zarr"), "--out", str(out), "--chains", "2", "--warmup", "200", "--dense"]
    assert main([*args, "--samples", "200", "--quiet"]) == 0
    back = xr.open_datatree(out, engine="zarr")
    assert back["posterior"]["flux"].shape[:2] == (2, 200) and back.attrs["inference_library"] == "blackjax"
    assert "dense mass matrix" in back.attrs["sampler"]
    # one chunk holds every chain and draw of a variable (a block of it when large)
    assert back["posterior"]["flux"].encoding["chunks"] == back["posterior"]["flux"].shape


def test_with_free_samples_only_the_named_parameters():
    import numpyro.distributions as dist

    _, fitted, obs = _problem(2)
    star = ["sources[1].offset", "sources[1].components[0].spectrum"]
    assert set(star) <= set(sc.parameter_names(fitted, free=False))
    offset = np.asarray(fitted.sources[1].offset.value)
    held = sc.with_free(fitted, star, priors={"sources[1].offset": dist.Normal(offset, 0.5).to_event(1)})
    assert sc.parameter_names(held) == star
    assert held.sources[1].offset.prior is not None and held.sources[0].components[0].spectrum.fixed
    # the held galaxy is rendered once and added: the same density as rendering it every time
    from scarlet2.infer.objective import log_density_flat
    from scarlet2.infer.packing import pack_host
    from scarlet2.render.observe import prepare
    from scarlet2.render.parts import Parts, fixed_parts

    core, renderers = prepare(held, [obs])
    parts = fixed_parts(core, renderers)
    assert parts is not None and float(np.abs(parts.held[0]).sum()) > 0
    u = pack_host(core) + 0.01
    whole = float(log_density_flat(u, core, renderers))
    assert parts.points is not None  # the star moves as its observed PSF (tests/unit/render/test_points.py)
    canvas_star = Parts(parts.held, parts.units, parts.linear, None)
    np.testing.assert_allclose(float(log_density_flat(u, core, renderers, canvas_star)), whole, rtol=1e-6)
    # the stamp shifts the observed PSF, the canvas the model PSF: chi^2 differs by far less than 1
    assert abs(float(log_density_flat(u, core, renderers, parts)) - whole) < 0.1
    post = sc.sample(held, obs, num_chains=2, num_warmup=100, num_samples=100, seed=0, progress=False)
    flux = post["posterior"]["flux"].values
    spread = np.ptp(flux, axis=(0, 1))  # (source, band)
    assert np.all(spread[0] == 0) and np.all(spread[1] > 0)  # the galaxy held, the star sampled
    from scarlet2.labeled.store import scene_from_dataset

    back = scene_from_dataset(post["scene"].to_dataset()).sources[1].offset.prior  # a .to_event prior is stored
    assert type(back).__name__ == "Independent" and back.event_shape == (2,)
    np.testing.assert_array_equal(np.asarray(back.base_dist.loc), offset)
    with pytest.raises(sc.InputError, match=r"sources\[7\]\.offset"):
        sc.with_free(fitted, ["sources[7].offset"])


def test_chains_run_whitened_at_the_mode_of_the_sampling_density():
    from scarlet2.infer.objective import log_density_flat
    from scarlet2.infer.packing import pack_host
    from scarlet2.infer.precondition import laplace, local_quadratic
    from scarlet2.render.observe import prepare

    _, fitted, obs = _problem(4)
    core, renderers = prepare(fitted, [obs])
    u = pack_host(core)
    center, white, determined = laplace(u, core, renderers)
    assert determined.all()
    _, g, h = local_quadratic(center, core, renderers)
    # at the mode: the Newton step is below 0.1 sigma, and L L^T is the inverse Hessian there
    assert np.linalg.norm(white.T @ g) < 0.1
    np.testing.assert_allclose(white @ white.T @ h, np.eye(u.size), atol=2e-3)
    # the density with the constraints' Jacobians peaks away from the fit's optimum
    assert float(log_density_flat(center, core, renderers)) > float(log_density_flat(u, core, renderers))


def test_target_acceptance_is_checked_and_recorded(posterior):
    _, fitted, obs, post = posterior
    assert post.attrs["target_acceptance"] == 0.9
    with pytest.raises(sc.InputError, match="target_acceptance"):
        sc.sample(fitted, obs, target_acceptance=1.0, progress=False)


def test_without_a_hessian_the_chains_run_on_step_size_scales(monkeypatch):
    """Above MAX_DENSE parameters (free-form scenes) no dense Hessian is formed: the whitening
    is a vector of scales (no n x n matrix), and the chains still mix."""
    import scarlet2.infer.sample as sample_module
    from scarlet2.infer.sample import sample as sample_flat

    _, fitted, obs = _problem(3)
    monkeypatch.setattr(sample_module, "MAX_DENSE", 0)
    draws = sample_flat(fitted, [obs], num_chains=2, num_warmup=200, num_samples=200, seed=0, progress=False)
    assert draws.whitening.ndim == 1
    assert np.all(np.isfinite(draws.positions)) and draws.stats["diverging"].sum() == 0
    assert np.all(np.std(draws.positions, axis=(0, 1)) > 0)
