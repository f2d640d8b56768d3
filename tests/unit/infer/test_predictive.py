"""Posterior predictive cubes, derived quantities and the posterior's observations, before and
after a Zarr round trip."""

import dask.array as da
import numpy as np
import pytest
import xarray as xr

import scarlet2 as sc
from scarlet2.infer.packing import with_values
from scarlet2.labeled.posterior import variable_names

pytest.importorskip("blackjax")


@pytest.fixture(scope="module")
def posterior():
    from tests.unit.infer.test_sample import _problem

    truth, fitted, obs = _problem(5)
    post = sc.sample(fitted, obs, num_chains=2, num_warmup=200, num_samples=120, seed=1, progress=False)
    return truth, fitted, obs, post


def test_constant_data_rebuilds_the_observation(posterior):
    _, _, obs, post = posterior
    (back,) = sc.posterior_observations(post)
    assert back.bands == obs.bands
    np.testing.assert_array_equal(np.asarray(back.data), np.asarray(obs.data))
    np.testing.assert_array_equal(np.asarray(back.weights), np.asarray(obs.weights))
    np.testing.assert_allclose(np.asarray(back.psf.array), np.asarray(obs.psf.array), atol=1e-7)


def test_predictive_is_lazy_and_renders_each_draw(posterior):
    _, fitted, obs, post = posterior
    cube = sc.predictive(post, draws_per_block=50)
    assert isinstance(cube.data, da.Array) and cube.dims == ("chain", "draw", "band", "y", "x")
    assert cube.shape == (2, 120, 3, 32, 32) and "wcs" in cube.coords
    assert cube.data.numblocks[:2] == (2, 3)  # blocks of 50, 50, 20 draws per chain
    c, d = 1, 107  # a draw in the padded last block
    values = [post["posterior"][n].isel(chain=c, draw=d).values for n in variable_names(fitted)]
    expected = np.asarray(sc.render(with_values(fitted, values, np.float32), obs))
    np.testing.assert_allclose(cube.isel(chain=c, draw=d).values, expected, rtol=1e-5, atol=1e-4)


def test_residual_chi2_per_draw_is_near_the_degrees_of_freedom(posterior):
    *_, post = posterior
    chi2 = sc.residual_chi2(post)
    assert chi2.dims == ("chain", "draw") and isinstance(chi2.data, da.Array)
    per_dof = chi2.values / chi2.attrs["dof"]  # unit noise: about 1, a little above for draws off the MAP
    assert np.all((per_dof > 0.9) & (per_dof < 1.15)), per_dof.min()


def test_colors_and_total_flux(posterior):
    *_, post = posterior
    flux = post["posterior"]["flux"]
    gr = post.scarlet.colors("g", "r")
    np.testing.assert_allclose(gr.values, -2.5 * np.log10(flux.sel(band="g") / flux.sel(band="r")).values, rtol=1e-6)
    np.testing.assert_allclose(post.scarlet.total_flux().values, flux.sum("band").values, rtol=1e-6)
    with pytest.raises(sc.InputError, match="no band 'z'"):
        sc.colors(post, "z", "g")


def test_zarr_round_trip_keeps_the_predictive(posterior, tmp_path):
    *_, post = posterior
    post.to_zarr(tmp_path / "post.zarr")
    back = xr.open_datatree(tmp_path / "post.zarr", engine="zarr")
    a = sc.predictive(post).isel(draw=slice(0, 60)).values
    b = back.scarlet.predictive().isel(draw=slice(0, 60)).values
    np.testing.assert_array_equal(a, b)


def test_arviz_reads_the_tree(posterior):
    azs = pytest.importorskip("arviz_stats")
    *_, post = posterior
    theirs = azs.summary(post, var_names=["flux"], round_to="none")  # the tree as it is
    ours = sc.summary(post, var_names=["flux"])
    assert len(theirs) == len(ours) == 6
    n = post["posterior"].sizes["chain"] * post["posterior"].sizes["draw"]
    ours["sd"] *= np.sqrt((n - 1) / n)  # ArviZ's sd divides by n, ours by n - 1
    for col in ("mean", "sd", "ess_bulk"):
        np.testing.assert_allclose(theirs[col].values.astype(float), ours[col].values, rtol=1e-4, err_msg=col)
    # ArviZ folds the draws around their median in the draws' precision (float32 here), where
    # rounding and ties move the tail R-hat by ~3e-4; ours folds in float64, as ArviZ does on
    # float64 draws
    wide = post.copy()
    wide["posterior"] = post["posterior"].to_dataset().astype(np.float64)
    r_hat = azs.summary(wide, var_names=["flux"], round_to="none")["r_hat"].values.astype(float)
    np.testing.assert_allclose(r_hat, ours["r_hat"].values, rtol=1e-6)
    # the tail ESS at the 5% and 95% quantiles (Vehtari et al. 2021); ArviZ's summary uses its 89% interval's
    tail = azs.ess(post, var_names=["flux"], method="tail", prob=0.05)["flux"].values.ravel()
    np.testing.assert_allclose(tail, ours["ess_tail"].values, rtol=1e-4)
