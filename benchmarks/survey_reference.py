"""Survey regions side by side: our region kernel and the published scarlet2 0.5.1.

The reference cannot run a survey (no tiling, no detection), so it gets what it can use: the
same region windows (core + halo) of the simulated field of ``survey_field.py`` and the true
positions of the sources in each window (point sources flagged), its quickstart scene and its
default fit. Ours runs the survey's region kernel (detection, initialization, both fits, flux
errors) on the same windows, in a fresh process too, its first region compiling. Sources per
second count the sources each side owns in the region cores (the truth's for the reference);
each side runs pinned to one core, as a survey worker does.

    python benchmarks/survey_reference.py --regions 2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def region_cases(field_path, truth_path, indices, folder: Path):
    """Write one npz per region (window, weights, PSFs, true positions); return their paths and
    the count of true sources in each core."""
    import xarray as xr

    import scarlet2 as sc
    from scarlet2.labeled.schema import read_window
    from scarlet2.survey.driver import default_halo
    from scarlet2.survey.kernel import SurveySettings
    from scarlet2.survey.regions import plan_regions

    ds = sc.open_dataset(str(field_path))
    truth = xr.open_dataset(truth_path).load()
    halo = default_halo(SurveySettings(), int(ds.sizes["psf_y"]))
    regions = plan_regions((ds.sizes["y"], ds.sizes["x"]), 256, halo)
    out = []
    for i in indices:
        r = regions[i]
        y0, y1, x0, x1 = r.outer
        image, weight, psf, bands = read_window(ds, slice(y0, y1), slice(x0, x1))
        ty, tx = truth["y"].values, truth["x"].values
        inside = (ty >= y0) & (ty < y1) & (tx >= x0) & (tx < x1) & (truth["snr"].values > 5)
        cy0, cy1, cx0, cx1 = r.core
        core = inside & (ty >= cy0) & (ty < cy1) & (tx >= cx0) & (tx < cx1)
        path = folder / f"region{i}.npz"
        np.savez(
            path,
            images=image.astype(np.float32),
            weights=weight.astype(np.float32),
            psfs=np.asarray(psf, np.float32),
            bands=np.array(bands),
            positions=np.stack([ty[inside] - y0, tx[inside] - x0], 1),
            point_sources=np.flatnonzero(truth["kind"].values[inside] == "star"),
        )
        out.append((i, path, int(core.sum())))
    return out


OURS = r"""
import json, sys, time
t0 = time.perf_counter()
import scarlet2 as sc
from scarlet2.labeled.schema import read_window, get_wcs
from scarlet2.survey.driver import default_halo
from scarlet2.survey.kernel import SurveySettings, fit_region
from scarlet2.survey.regions import plan_regions
ds = sc.open_dataset(sys.argv[1]); wcs = get_wcs(ds)
settings = SurveySettings()
halo = default_halo(settings, int(ds.sizes["psf_y"]))
settings = SurveySettings(halo=halo)
regions = plan_regions((ds.sizes["y"], ds.sizes["x"]), 256, halo)
rows = []
for i in map(int, sys.argv[2].split(",")):
    r = regions[i]
    y0, y1, x0, x1 = r.outer
    image, weight, psf, bands = read_window(ds, slice(y0, y1), slice(x0, x1))
    t = time.perf_counter()
    res = fit_region(r, image, weight, psf, bands, wcs, settings)
    rows.append({"region": i, "seconds": time.perf_counter() - t, "n_sources": res.record["n_sources"]})
print(json.dumps({"version": sc.__version__, "import_s": 0, "regions": rows}))
"""


def pinned(cmd, cpu=0, cwd=None):
    env = dict(os.environ, JAX_PLATFORMS="cpu", PJRT_NPROC="1")
    proc = subprocess.run(
        cmd, capture_output=True, text=True, env=env, cwd=cwd, preexec_fn=lambda: os.sched_setaffinity(0, [cpu])
    )
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None):
    from compare import reference_python

    p = argparse.ArgumentParser()
    p.add_argument("--size", type=int, default=2048)
    p.add_argument("--regions", default="9,18", help="region indices (row-major, tile 256)")
    p.add_argument("--work", default="/tmp/scarlet2-survey-bench")
    args = p.parse_args(argv)
    work = Path(args.work)
    field = work / f"field{args.size}-s0.zarr"
    truth = work / f"field{args.size}-s0-truth.nc"
    if not field.exists():
        raise SystemExit(f"{field} missing: run benchmarks/survey_field.py --size {args.size} first")
    indices = [int(i) for i in args.regions.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        cases = region_cases(field, truth, indices, Path(tmp))
        t = time.perf_counter()
        ours = pinned([sys.executable, "-c", OURS, str(field), args.regions])
        ours_wall = time.perf_counter() - t
        ref = []
        for i, path, n_core in cases:
            out = pinned([str(reference_python()), str(HERE / "_reference_survey.py"), str(path)], cwd=HERE)
            ref.append({"region": i, "seconds": out["init_s"] + out["fit_s"], "n_sources": n_core, **out})
            print(f"reference region {i}: {ref[-1]['seconds']:.1f} s, {n_core} sources in the core", file=sys.stderr)
    ours_s = sum(r["seconds"] for r in ours["regions"])
    ours_n = sum(r["n_sources"] for r in ours["regions"])
    ref_s = sum(r["seconds"] for r in ref)
    ref_n = sum(r["n_sources"] for r in ref)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=HERE).stdout
    row = {
        "commit": commit.strip(),
        "size": args.size,
        "regions": indices,
        "ours_seconds": [round(r["seconds"], 2) for r in ours["regions"]],
        "ours_process_s": round(ours_wall, 1),
        "ours_sources": ours_n,
        "ours_sources_per_s_one_core": round(ours_n / ours_s, 2),
        "reference_version": ref[0]["version"],
        "reference_seconds": [round(r["seconds"], 2) for r in ref],
        "reference_sources": ref_n,
        "reference_sources_per_s_one_core": round(ref_n / ref_s, 3),
    }
    print(json.dumps(row))
    (HERE / "results").mkdir(exist_ok=True)
    with open(HERE / "results" / "survey_reference.jsonl", "a") as fh:
        fh.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
