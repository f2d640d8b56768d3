"""Posterior sampling on the HSC blend: the acceptance run of ``scarlet2.sample``.

The default parametric fit of ``../shared/data/hsc_cosmos_35.npz`` (catalogue positions), then
4 chains of NUTS from it: r_hat, bulk and tail ESS and ESS per second for every flux,
divergences, tree depth hits, wall times (first call with compilation, second call of the same
structure), and each flux's posterior sd against its Fisher error.

    python benchmarks/sample_hsc.py [--x64] [--warmup 500 --samples 1000] [--dense]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--x64", action="store_true")
    p.add_argument("--chains", type=int, default=4)
    p.add_argument("--warmup", type=int, default=500)
    p.add_argument("--samples", type=int, default=1000)
    p.add_argument("--dense", action="store_true")
    p.add_argument("--model", default="parametric", help="the fit's model (fit_dataset's model=)")
    p.add_argument(
        "--plain",
        action="store_true",
        help="the fit without free forms and residual sources (the 88-parameter scene of the first rows)",
    )
    p.add_argument("--target", type=float, default=0.9, help="target acceptance of the step size adaptation")
    p.add_argument("--once", action="store_true", help="one call only (no compiled second call)")
    p.add_argument("--save", help="write the posterior tree to this Zarr store")
    p.add_argument("--out", default="benchmarks/results/sample_hsc.jsonl")
    a = p.parse_args(argv)
    import jax

    if a.x64:
        jax.config.update("jax_enable_x64", True)
    import scarlet2 as sc
    from scarlet2.labeled.catalog import catalog_dataset

    d = np.load(SHARED / "hsc_cosmos_35.npz")
    dtype = np.float64 if a.x64 else np.float32
    ds = sc.from_arrays(d["images"].astype(dtype), variance=d["variance"].astype(dtype), psf=d["psfs"],
                        bands=list(d["filters"]), instrument="HSC", pixel_scale=0.168)  # fmt: skip
    cat = catalog_dataset(np.stack([d["catalog"]["y"], d["catalog"]["x"]], 1))
    # the default fit adds free forms and residual sources; sampling holds the free forms'
    # pixels (thousands NUTS cannot whiten: every draw diverged there, docs/performance.md)
    plain = dict(free_form=False, residual_detection=False) if a.plain else {}
    result = ds.scarlet.fit(catalog=cat, model=a.model, progress=False, **plain)
    times = []
    for _ in range(1 if a.once else 2):  # the second call: same structure, no compilation
        t0 = time.perf_counter()
        post = result.scarlet.sample(
            a.chains,
            a.warmup,
            a.samples,
            seed=len(times),
            progress=False,
            dense_mass=a.dense,
            target_acceptance=a.target,
        )
        times.append(time.perf_counter() - t0)
    if a.save:
        post.to_zarr(a.save, mode="w")
    table = sc.summary(post)
    flux = table[table.index.str.startswith("flux[")]
    sd = post["posterior"]["flux"].std(("chain", "draw"), ddof=1).values
    fisher = result.scarlet.catalog["flux_err"].values
    stats = post["sample_stats"]
    record = {
        "x64": a.x64, "model": a.model + (" plain" if a.plain else ""), "dense": a.dense, "chains": a.chains,
        "warmup": a.warmup, "samples": a.samples,
        "n_free": int(sum(post["posterior"][v].isel(chain=0, draw=0).size for v in post["posterior"].data_vars
                          if v != "flux")),
        "target_acceptance": a.target, "first_s": round(times[0], 2), "second_s": round(times[-1], 2),
        "max_r_hat": float(flux["r_hat"].max()), "min_ess_bulk": float(flux["ess_bulk"].min()),
        "median_ess_bulk": float(flux["ess_bulk"].median()), "min_ess_tail": float(flux["ess_tail"].min()),
        "min_ess_bulk_per_s": float(flux["ess_bulk"].min() / times[-1]),
        "median_ess_bulk_per_s": float(flux["ess_bulk"].median() / times[-1]),
        "divergences": int(stats["diverging"].sum()),
        "max_depth_hits": int((stats["tree_depth"] >= 10).sum()),
        "mean_n_steps": float(stats["n_steps"].mean()),
        "step_size": [float(s) for s in stats["step_size"].isel(draw=0).values],
        "sd_over_fisher": np.round(sd / fisher, 3).tolist(),
    }  # fmt: skip
    record["sd_over_fisher_params"] = _parameter_ratios(result, post)
    print(json.dumps(record, indent=1))
    with Path(a.out).open("a") as f:
        f.write(json.dumps(record) + "\n")


def _parameter_ratios(result, post) -> dict:
    """Posterior sd over Fisher error of every free parameter (constrained space), by path."""
    import scarlet2 as sc
    from scarlet2.labeled.results import result_observations
    from scarlet2.labeled.store import scene_from_dataset

    scene = scene_from_dataset(result["scene"].to_dataset())
    errors = sc.uncertainties(scene, result_observations(result))
    out = {}
    for path, err in errors.items():
        var = path.replace("[", "").replace("]", "")
        if var in post["posterior"]:
            sd = post["posterior"][var].std(("chain", "draw"), ddof=1).values
            out[path] = np.round(np.ravel(sd / err), 3).tolist()
    return out


if __name__ == "__main__":
    main()
