"""Survey benchmark: a simulated field through ``scarlet2 survey`` on local workers.

Draws a GalSim field with truth (``scarlet2.simulate.simulate_field``), writes it to Zarr,
runs the command line with N workers, and reports sources per second, peak memory per worker
and completeness / flux accuracy against the truth. Results go to benchmarks/results/.

    python benchmarks/survey_field.py --size 2048 --workers 2
    python benchmarks/survey_field.py --size 1024 --workers 1   # scaling and memory vs size
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--size", type=int, default=2048)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--tile", type=int, default=256)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--work", default="/tmp/scarlet2-survey-bench")
    p.add_argument("--max-structures", type=int, default=None, help="passed to scarlet2 survey (default: its own)")
    p.add_argument("--flux-errors", default=None, help="passed to scarlet2 survey (default: its own)")
    args = p.parse_args(argv)
    import scarlet2 as sc

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    field_path = work / f"field{args.size}-s{args.seed}.zarr"
    truth_path = work / f"field{args.size}-s{args.seed}-truth.nc"
    if not field_path.exists():
        t = time.perf_counter()
        f = sc.simulate.simulate_field((args.size, args.size), seed=args.seed)
        f.to_zarr(field_path, chunk=args.tile)
        f.truth.to_netcdf(truth_path)
        print(f"simulated {f.truth.sizes['source']} sources in {time.perf_counter() - t:.0f} s", file=sys.stderr)
    import xarray as xr

    truth = xr.open_dataset(truth_path).load()
    out = work / f"fit{args.size}-w{args.workers}.zarr"
    shutil.rmtree(out, ignore_errors=True)
    cmd = ["scarlet2", "survey", str(field_path), "--out", str(out), "--tile", str(args.tile)]
    cmd += ["--workers", str(args.workers), "--quiet"]
    if args.max_structures is not None:
        cmd += ["--max-structures", str(args.max_structures)]
    if args.flux_errors is not None:
        cmd += ["--flux-errors", args.flux_errors]
    t = time.perf_counter()
    subprocess.run(cmd, check=True)
    wall = time.perf_counter() - t
    tree = sc.open_result(out)
    cat = tree["catalog"].to_dataset()
    regions = tree["regions"].to_dataset()
    import zarr

    rec = zarr.open_group(str(out), path="regions", mode="r")
    rss = [dict(rec[k].attrs).get("max_rss_mb", np.nan) for k in rec.group_keys()]
    structures = {dict(rec[k].attrs).get("structure") for k in rec.group_keys()}
    # completeness and flux accuracy against the truth
    ty = np.stack([truth["y"].values, truth["x"].values], 1)
    cy = np.stack([cat["y"].values, cat["x"].values], 1)
    from scipy.spatial import cKDTree

    d, j = cKDTree(cy).query(ty)
    found = d < 2.0
    bright = truth["snr"].values > 20
    iso = bright & truth["isolated"].values & found
    df = np.abs(cat["flux"].values[j[iso]] / truth["flux"].values[iso] - 1)
    pulls = (cat["flux"].values[j[iso]] - truth["flux"].values[iso]) / cat["flux_err"].values[j[iso]]
    dd, _ = cKDTree(cy).query(cy, k=2)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=HERE).stdout
    row = {
        "commit": commit.strip(),
        "size": args.size,
        "workers": args.workers,
        "max_structures": args.max_structures,
        "flux_errors": args.flux_errors or "default",
        "tile": args.tile,
        "regions": int(regions.sizes["region"]),
        "failed": int((regions["status"] == "failed").sum()),
        "n_true": int(truth.sizes["source"]),
        "n_catalog": int(cat.sizes["source"]),
        "wall_s": round(wall, 1),
        "sources_per_s": round(cat.sizes["source"] / wall, 2),
        "region_seconds_median": round(float(np.median(regions["seconds"].values)), 2),
        "peak_rss_mb_per_worker": round(float(np.nanmax(rss)), 0),
        "structures": len(structures),
        "completeness_snr20": round(float(found[bright].mean()), 4),
        "duplicates_within_1.5px": int(np.sum(dd[:, 1] < 1.5) // 2),
        "isolated_snr20": int(iso.sum()),
        "median_abs_df_over_f": round(float(np.median(df)), 4),
        "pull_sd_isolated": round(float(np.std(pulls)), 2),
        # robust spread: a few faint galaxies started as points (60-80% of their flux lost) set the sd
        "pull_mad_isolated": round(float(1.4826 * np.median(np.abs(pulls - np.median(pulls)))), 2),
    }
    print(json.dumps(row))
    res = HERE / "results"
    res.mkdir(exist_ok=True)
    with open(res / "survey_field.jsonl", "a") as fh:
        fh.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
