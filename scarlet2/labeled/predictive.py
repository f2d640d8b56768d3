"""Posterior predictive model cubes and quantities derived from posterior draws.

:func:`predictive` is lazy: a dask array (chain, draw, band, y, x) whose blocks render one
chain's block of draws when computed, with one compiled program for every block (the last
block is padded to the block size). The scene comes from the posterior's ``scene`` group and
the observations from ``observed_data`` / ``constant_data``, so a posterior reopened from
Zarr predicts without the original objects.
"""

from __future__ import annotations

import dask
import dask.array as da
import numpy as np
import xarray as xr

from ..errors import InputError
from ..infer.sample import render_draws
from ..render.observe import prepare
from .posterior import posterior_observations, variable_names
from .schema import attach_wcs
from .store import scene_from_dataset

#: Draws rendered per dask block (and per compiled call) by :func:`predictive`.
DRAWS_PER_BLOCK = 50


def _observation(post: xr.DataTree, observation):
    observations = posterior_observations(post)
    names = [o.name or f"obs{k}" for k, o in enumerate(observations)]
    if observation is None:
        if len(observations) > 1:
            raise InputError(f"the posterior has {len(observations)} observations {names}: name one (observation=)")
        return observations[0]
    if observation not in names:
        raise InputError(f"no observation {observation!r} in the posterior; it has {names}")
    return observations[names.index(observation)]


def predictive(
    post: xr.DataTree, observation: str | None = None, draws_per_block: int = DRAWS_PER_BLOCK
) -> xr.DataArray:
    """Model images of every draw as ``observation`` sees them: a lazy DataArray
    (chain, draw, band, y, x) with the observation's WCS, computed block by block on request.

    ``observation`` names one of the posterior's observations (needed when it has several).
    """
    return _cube(post, _observation(post, observation), draws_per_block)


def _cube(post, obs, draws_per_block):
    scene = scene_from_dataset(post["scene"].to_dataset(), where="posterior scene")
    posterior = post["posterior"].to_dataset()
    names = variable_names(scene)
    missing = [n for n in names if n not in posterior]
    if missing:
        raise InputError(f"posterior: no variables {missing} for the free parameters of its scene")
    core, (renderer,) = prepare(scene, [obs])  # once: every block renders through it
    n_chain, n_draw = posterior.sizes["chain"], posterior.sizes["draw"]
    block = max(1, min(draws_per_block, n_draw))
    shape = (len(obs.bands), *obs.data.shape[-2:])
    dtype = np.asarray(obs.data).dtype

    def render_block(c, start, stop):
        sel = {"chain": c, "draw": slice(start, stop)}
        values = [np.asarray(posterior[n].isel(sel).values) for n in names]
        pad = block - (stop - start)  # pad to the block size: one program for every block
        values = [np.concatenate([v, np.repeat(v[-1:], pad, axis=0)]) if pad else v for v in values]
        return render_draws(core, renderer, values)[: stop - start][None]

    rows = []
    for c in range(n_chain):
        blocks = []
        for start in range(0, n_draw, block):
            stop = min(start + block, n_draw)
            delayed = dask.delayed(render_block)(c, start, stop)
            blocks.append(da.from_delayed(delayed, (1, stop - start, *shape), dtype))
        rows.append(da.concatenate(blocks, axis=1))
    cube = da.concatenate(rows, axis=0)
    coords = {
        "chain": posterior["chain"].values,
        "draw": posterior["draw"].values,
        "band": np.array(obs.bands, dtype=object),
        "y": np.arange(shape[1]),
        "x": np.arange(shape[2]),
    }
    out = xr.Dataset({"model": (("chain", "draw", "band", "y", "x"), cube)}, coords=coords)
    return attach_wcs(out, obs.wcs)["model"]


def residual_chi2(
    post: xr.DataTree, observation: str | None = None, draws_per_block: int = DRAWS_PER_BLOCK
) -> xr.DataArray:
    """chi^2 of each draw's model against the observed data (chain, draw), lazy like
    :func:`predictive`; ``attrs["dof"]`` counts the unmasked pixels."""
    obs = _observation(post, observation)
    cube = _cube(post, obs, draws_per_block)
    weights = xr.DataArray(np.asarray(obs.weights), dims=("band", "y", "x"))
    data = xr.DataArray(np.asarray(obs.data), dims=("band", "y", "x"))
    out = (weights * (cube.drop_vars("wcs", errors="ignore") - data) ** 2).sum(("band", "y", "x"))
    out.attrs["dof"] = int(np.sum(np.asarray(obs.weights) > 0))
    return out.rename("chi2")


def total_flux(post: xr.DataTree) -> xr.DataArray:
    """Each draw's flux summed over bands (chain, draw, source)."""
    return post["posterior"]["flux"].sum("band").rename("total_flux")


def colors(post: xr.DataTree, blue: str, red: str) -> xr.DataArray:
    """Each draw's colour ``blue - red`` in magnitudes, -2.5 log10(flux_blue / flux_red), per
    source (chain, draw, source); NaN where a flux is not positive."""
    flux = post["posterior"]["flux"]
    bands = [str(b) for b in flux["band"].values]
    for b in (blue, red):
        if b not in bands:
            raise InputError(f"no band {b!r} in the posterior; it has {bands}")
    ratio = flux.sel(band=blue, drop=True) / flux.sel(band=red, drop=True)
    return (-2.5 * np.log10(ratio.where(ratio > 0))).rename(f"{blue}-{red}")


__all__ = ["DRAWS_PER_BLOCK", "colors", "predictive", "residual_chi2", "total_flux"]
