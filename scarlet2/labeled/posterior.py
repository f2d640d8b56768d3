"""Posterior draws as an xarray DataTree in ArviZ's layout, and their summary.

Groups: ``posterior`` (dims chain, draw, then named dims: ``flux`` on (source, band) and every
free parameter under its path in the scene, e.g. ``sources1.components0.spectrum``),
``sample_stats`` (lp, acceptance_rate, step_size, tree_depth, n_steps, diverging, energy),
``observed_data`` and ``constant_data`` (each observation's image; its weights), and ``scene``
(the scene's structure and MAP values, as in fit results: it is rebuilt without pickle).
Root attrs name the inference library and its version, the seed and the sampler's settings.
ArviZ (arviz-base / arviz-stats) reads the tree as it is.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from .._version import __version__
from ..infer.diagnostics import ess_bulk, ess_tail, rhat
from ..infer.sample import constrained_draws
from ..infer.sample import sample as sample_flat
from ..model.parameter import free_slots, parameter_names
from ..model.source import Background
from ..render.observe import as_observations
from .store import scene_dataset

#: Dims given to a parameter's trailing axes, by the last part of its path.
PARAMETER_DIMS = {"spectrum": ("band",), "offset": ("yx",), "ellipticity": ("e1e2",)}


def sample(scene, observations, num_chains=4, num_warmup=500, num_samples=1000, seed=0, **options) -> xr.DataTree:
    """NUTS posterior draws (:func:`scarlet2.infer.sample.sample`) labeled as a DataTree."""
    observations = as_observations(observations)
    draws = sample_flat(scene, observations, num_chains, num_warmup, num_samples, seed, **options)
    return posterior_tree(scene, observations, draws, seed=seed, num_warmup=num_warmup)


def posterior_tree(scene, observations, draws, seed=0, num_warmup=None) -> xr.DataTree:
    """The DataTree of :mod:`this module <scarlet2.labeled.posterior>` from :class:`Samples`."""
    values, fluxes = constrained_draws(scene, draws.positions)
    bands = list(scene.frame.bands)
    n_chain, n_draw = draws.positions.shape[:2]
    coords = {"chain": np.arange(n_chain), "draw": np.arange(n_draw), "band": np.array(bands, dtype=object)}
    sources = [i for i, s in enumerate(scene.sources) if not isinstance(s, Background) and hasattr(s, "components")]
    post = {"flux": (("chain", "draw", "source", "band"), fluxes)}
    coords["source"] = np.arange(len(sources))
    for path, v in zip(_slot_names(scene), values, strict=True):
        name = path.replace("[", "").replace("]", "")
        tail = PARAMETER_DIMS.get(path.rsplit(".", 1)[-1], ())
        extra = v.shape[2:]
        dims = tail if len(tail) == len(extra) and (tail != ("band",) or extra == (len(bands),)) else ()
        dims = dims or tuple(f"{name}_dim_{k}" for k in range(len(extra)))
        post[name] = (("chain", "draw", *dims), v)
    posterior = xr.Dataset(post, coords=coords)
    posterior["flux"].attrs["description"] = "total flux per band of each source (sum of its components)"
    stats = xr.Dataset({k: (("chain", "draw"), v) for k, v in draws.stats.items()}, coords=coords)
    observed, constant = {}, {}
    for k, o in enumerate(observations):
        key = o.name or f"obs{k}"
        dims = (f"{key}_band", f"{key}_y", f"{key}_x")
        observed[f"{key}_image"] = (dims, np.asarray(o.data))
        constant[f"{key}_weight"] = (dims, np.asarray(o.weights))
        constant[f"{key}_band"] = ((f"{key}_band",), np.array(o.bands, dtype=object))
    import blackjax

    root = xr.Dataset(
        attrs={
            "inference_library": "blackjax",
            "inference_library_version": blackjax.__version__,
            "sampler": "nuts, window adaptation (diagonal mass matrix)",
            "created_by": f"scarlet2 {__version__}",
            "seed": int(seed),
            "num_warmup": -1 if num_warmup is None else int(num_warmup),
            "divergences": int(np.sum(draws.stats["diverging"])),
        }
    )
    return xr.DataTree.from_dict(
        {
            "/": root,
            "/posterior": posterior,
            "/sample_stats": stats,
            "/observed_data": xr.Dataset(observed),
            "/constant_data": xr.Dataset(constant),
            "/scene": scene_dataset(scene),
        }
    )


def _label(value) -> str:
    return repr(value) if isinstance(value, str) else str(value.item() if hasattr(value, "item") else value)


def _slot_names(scene):
    """One path per free slot (a shared parameter under its first path), as ``free_slots`` orders them."""
    names = parameter_names(scene)
    return [names[members[0]] for _, members in free_slots(scene)]


def summary(post: xr.DataTree | xr.Dataset, var_names=None, interval: float = 0.9) -> pd.DataFrame:
    """Mean, sd, an equal-tailed interval, R-hat, bulk and tail ESS of every scalar in the
    posterior (one row per element, e.g. ``flux[0, 'g']``); ``attrs["divergences"]`` counts the
    divergent transitions. Needs no ArviZ."""
    ds = post["posterior"].to_dataset() if isinstance(post, xr.DataTree) else post
    lo_q, hi_q = (1 - interval) / 2, 1 - (1 - interval) / 2
    rows, index = [], []
    for name in var_names or list(ds.data_vars):
        da = ds[name].transpose("chain", "draw", ...)
        values = da.values.reshape(da.shape[0], da.shape[1], -1)
        labels = list(np.ndindex(*da.shape[2:])) or [()]
        for j, idx in enumerate(labels):
            x = values[:, :, j]
            dims = zip(da.dims[2:], idx, strict=True)
            coord = [_label(da[d].values[i]) if d in da.coords else str(i) for d, i in dims]
            index.append(f"{name}[{', '.join(coord)}]" if coord else name)
            rows.append(
                {
                    "mean": float(np.mean(x)),
                    "sd": float(np.std(x, ddof=1)),
                    f"q{lo_q:.0%}": float(np.quantile(x, lo_q)),
                    f"q{hi_q:.0%}": float(np.quantile(x, hi_q)),
                    "r_hat": rhat(x),
                    "ess_bulk": ess_bulk(x),
                    "ess_tail": ess_tail(x),
                }
            )
    out = pd.DataFrame(rows, index=index)
    if isinstance(post, xr.DataTree) and "sample_stats" in post.children:
        out.attrs["divergences"] = int(post["sample_stats"]["diverging"].values.sum())
    return out


__all__ = ["PARAMETER_DIMS", "posterior_tree", "sample", "summary"]
