"""Posterior draws as an xarray DataTree in ArviZ's layout, and their summary.

Groups: ``posterior`` (dims chain, draw, then named dims: ``flux`` on (source, band) and every
free parameter under its path in the scene, e.g. ``sources1.components0.spectrum``),
``sample_stats`` (lp, acceptance_rate, step_size, tree_depth, n_steps, diverging, energy),
``observed_data`` (each observation's image) and ``constant_data`` (its weights, bands, PSF
images and WCS, the latter a scalar variable whose attrs hold the FITS header), and ``scene``
(the scene's structure and MAP values, as in fit results: it is rebuilt without pickle).
Root attrs name the inference library and its version, the seed and the sampler's settings.
ArviZ (arviz-base / arviz-stats) reads the tree as it is.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from .._version import __version__
from ..errors import InputError
from ..infer.diagnostics import ess_bulk, ess_tail, rhat
from ..infer.sample import constrained_draws
from ..infer.sample import sample as sample_flat
from ..model.observation import Observation
from ..model.parameter import free_slots, parameter_names
from ..model.source import Background
from ..render.observe import as_observations
from .schema import WCS_VAR, get_wcs, wcs_coordinate
from .store import scene_dataset

#: Dims given to a parameter's trailing axes, by the last part of its path.
PARAMETER_DIMS = {"spectrum": ("band",), "offset": ("yx",), "ellipticity": ("e1e2",)}


def sample(scene, observations, num_chains=4, num_warmup=500, num_samples=1000, seed=0, **options) -> xr.DataTree:
    """NUTS posterior draws (:func:`scarlet2.infer.sample.sample`) labeled as a DataTree."""
    observations = as_observations(observations)
    draws = sample_flat(scene, observations, num_chains, num_warmup, num_samples, seed, **options)
    dense = bool(options.get("dense_mass", False))
    return posterior_tree(scene, observations, draws, seed=seed, num_warmup=num_warmup, dense_mass=dense)


#: Largest Zarr chunk of a posterior variable; each chunk holds every chain and draw of a block.
CHUNK_BYTES = 16 * 2**20


def _chunks(shape, itemsize, limit=CHUNK_BYTES):
    """Chunk shape for a (chain, draw, ...) variable: all chains and draws, the trailing axes
    halved (first axis first) until a chunk is at most ``limit`` bytes."""
    chunks = list(shape)
    axis = 2
    while axis < len(chunks) and np.prod(chunks, dtype=float) * itemsize > limit:
        if chunks[axis] > 1:
            chunks[axis] = -(-chunks[axis] // 2)
        else:
            axis += 1
    return tuple(chunks)


def posterior_tree(scene, observations, draws, seed=0, num_warmup=None, dense_mass=False) -> xr.DataTree:
    """The DataTree of :mod:`this module <scarlet2.labeled.posterior>` from :class:`Samples`."""
    values, fluxes = constrained_draws(scene, draws.positions)
    bands = list(scene.frame.bands)
    n_chain, n_draw = draws.positions.shape[:2]
    coords = {"chain": np.arange(n_chain), "draw": np.arange(n_draw), "band": np.array(bands, dtype=object)}
    sources = [i for i, s in enumerate(scene.sources) if not isinstance(s, Background) and hasattr(s, "components")]
    post = {"flux": (("chain", "draw", "source", "band"), fluxes)}
    coords["source"] = np.arange(len(sources))
    for path, name, v in zip(_slot_names(scene), variable_names(scene), values, strict=True):
        tail = PARAMETER_DIMS.get(path.rsplit(".", 1)[-1], ())
        extra = v.shape[2:]
        dims = tail if len(tail) == len(extra) and (tail != ("band",) or extra == (len(bands),)) else ()
        dims = dims or tuple(f"{name}_dim_{k}" for k in range(len(extra)))
        post[name] = (("chain", "draw", *dims), v)
    posterior = xr.Dataset(post, coords=coords)
    for v in posterior.data_vars.values():
        v.encoding["chunks"] = _chunks(v.shape, v.dtype.itemsize)
    posterior["flux"].attrs["description"] = "total flux per band of each source (sum of its components)"
    stats = xr.Dataset({k: (("chain", "draw"), v) for k, v in draws.stats.items()}, coords=coords)
    observed, constant = {}, {}
    for k, o in enumerate(observations):
        key = o.name or f"obs{k}"
        dims = (f"{key}_band", f"{key}_y", f"{key}_x")
        observed[f"{key}_image"] = (dims, np.asarray(o.data))
        constant[f"{key}_weight"] = (dims, np.asarray(o.weights))
        constant[f"{key}_band"] = ((f"{key}_band",), np.array(o.bands, dtype=object))
        constant[f"{key}_psf"] = ((f"{key}_band", f"{key}_psf_y", f"{key}_psf_x"), _psf_images(o))
        constant[f"{key}_wcs"] = wcs_coordinate(o.wcs)
    import blackjax

    root = xr.Dataset(
        attrs={
            "inference_library": "blackjax",
            "inference_library_version": blackjax.__version__,
            "sampler": f"nuts, window adaptation ({'dense' if dense_mass else 'diagonal'} mass matrix)",
            "created_by": f"scarlet2 {__version__}",
            "seed": int(seed),
            "target_acceptance": float(draws.target_acceptance),
            "num_warmup": -1 if num_warmup is None else int(num_warmup),
            "divergences": int(np.sum(draws.stats["diverging"])),
            "observations": [o.name or f"obs{k}" for k, o in enumerate(observations)],
        }
    )
    scene_ds = scene_dataset(scene)
    # the structure (types, fields, priors; JSON) at the root too, naming where its arrays are
    root.attrs["scene_structure"] = scene_ds.attrs["structure"]
    root.attrs["scene_arrays"] = "scene"
    return xr.DataTree.from_dict(
        {
            "/": root,
            "/posterior": posterior,
            "/sample_stats": stats,
            "/observed_data": xr.Dataset(observed),
            "/constant_data": xr.Dataset(constant),
            "/scene": scene_ds,
        }
    )


def _psf_images(o) -> np.ndarray:
    """The observation's PSF as images (band, psf_y, psf_x), however it was given."""
    if hasattr(o.psf, "array"):
        return np.broadcast_to(np.asarray(o.psf.array), (len(o.bands), *o.psf_shape)).copy()
    return np.asarray(o.psf.image(o.psf_shape, n_bands=len(o.bands)))


def posterior_observations(post: xr.DataTree) -> list[Observation]:
    """The Observations a posterior was drawn from, rebuilt from its ``observed_data`` and
    ``constant_data`` (data, weights, PSF images, bands, WCS), in their original order."""
    observed, constant = post["observed_data"].to_dataset(), post["constant_data"].to_dataset()
    keys = [name[: -len("_image")] for name in observed.data_vars if name.endswith("_image")]
    order = post.attrs.get("observations") or sorted(keys)
    out = []
    for key in order:
        if f"{key}_psf" not in constant:
            raise InputError(f"posterior: constant_data has no '{key}_psf' (written before posteriors kept PSFs)")
        wcs = get_wcs(constant.rename({f"{key}_wcs": WCS_VAR})) if f"{key}_wcs" in constant else None
        out.append(
            Observation(
                observed[f"{key}_image"].values,
                weights=constant[f"{key}_weight"].values,
                psf=constant[f"{key}_psf"].values,
                bands=[str(b) for b in constant[f"{key}_band"].values],
                wcs=wcs,
                name=None if key.startswith("obs") and key[3:].isdigit() else key,
            )
        )
    return out


def _label(value) -> str:
    return repr(value) if isinstance(value, str) else str(value.item() if hasattr(value, "item") else value)


def variable_names(scene) -> list[str]:
    """The posterior variable of each free slot, in ``free_slots`` order (its path in the scene
    without brackets, e.g. ``sources0.components0.spectrum``)."""
    return [path.replace("[", "").replace("]", "") for path in _slot_names(scene)]


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


__all__ = ["PARAMETER_DIMS", "posterior_observations", "posterior_tree", "sample", "summary", "variable_names"]
