"""The default whole pipeline on the real HSC blend, each run in a fresh process (#23).

``ds.scarlet.fit(catalog=...)`` (initialize, fit, point or extended, free forms and residual
sources, box growth, Fisher errors, result) timed from the call to its return, compilation
included, against the same call with the later steps switched off (one parametric fit). Runs
alternate between the variants; medians are printed and one JSON line goes to
benchmarks/results/pipeline_hsc.jsonl.

    python benchmarks/pipeline_hsc.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

VARIANTS = {
    "default": "{}",
    "parametric": "dict(free_form=False, residual_detection=False, select_points=False)",
}

CHILD = """
import time, json, warnings, numpy as np
warnings.simplefilter("ignore")
import scarlet2 as sc
from scarlet2.labeled.catalog import catalog_dataset
d = np.load({path!r})
ds = sc.from_arrays(d["images"], variance=d["variance"], psf=d["psfs"], bands=list(d["filters"]), pixel_scale=0.168)
cat = catalog_dataset(np.stack([d["catalog"]["y"], d["catalog"]["x"]], 1))
t = time.perf_counter()
r = ds.scarlet.fit(catalog=cat, progress=False, **{options})
print(json.dumps(dict(seconds=time.perf_counter() - t, chi2_dof=r.attrs["chi2_dof"])))
"""


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--data", default=str(Path(__file__).parents[1].parent / "shared" / "data" / "hsc_cosmos_35.npz"))
    args = ap.parse_args(argv)
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    runs = {k: [] for k in VARIANTS}
    for _ in range(args.repeat):
        for name, options in VARIANTS.items():
            code = CHILD.format(path=args.data, options=options)
            out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
            runs[name].append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(name, runs[name][-1], flush=True)
    summary = {
        k: dict(
            median_seconds=round(sorted(r["seconds"] for r in v)[len(v) // 2], 2),
            seconds=[round(r["seconds"], 2) for r in v],
            chi2_dof=round(v[0]["chi2_dof"], 3),
        )
        for k, v in runs.items()
    }
    record = dict(date=time.strftime("%Y-%m-%d %H:%M"), commit=head, repeat=args.repeat, **summary)
    print(json.dumps(record, indent=1))
    with open(Path(__file__).parent / "results" / "pipeline_hsc.jsonl", "a") as f:
        f.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
