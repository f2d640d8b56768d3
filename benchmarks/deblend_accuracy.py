"""Deblending accuracy on GalSim-drawn blends (#23): the default ``fit_dataset`` against the truth.

For each seed, one blend from :func:`scarlet2.simulate.simulate_galsim_blend` (3-8 galaxies,
r_e 0.25-1.2", centres 7+ px apart, S/N 50-400 by default) is fitted twice: from the true
positions and from detection. Reported over sources above S/N 20: median and 90th percentile of
per-band |df/f|, point-vs-extended right, pull spread (fitted - true) / error, completeness.

    python benchmarks/deblend_accuracy.py --blends 30 [--hard] [--model parametric]

One JSON line per run goes to benchmarks/results/deblend_accuracy.jsonl.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time
from pathlib import Path

import numpy as np

HARD = dict(
    kinds={"sersic": 0.3, "bulge+disk": 0.3, "knots": 0.2, "star": 0.2},
    snr_range=(20.0, 3000.0),
    n_range=(0.5, 6.0),
    min_separation=4.0,
    r_e_range=(0.15, 2.5),
    shape=(96, 96),
)


def match(found, truth, radius=2.0):
    """Index of the found source matched to each true one (-1: none), nearest first, one-to-one."""
    from scipy.optimize import linear_sum_assignment

    d = np.hypot(*(truth[:, None, :] - found[None, :, :]).transpose(2, 0, 1))
    rows, cols = linear_sum_assignment(np.where(d < radius, d, 1e6))
    out = np.full(len(truth), -1)
    ok = d[rows, cols] < radius
    out[rows[ok]] = cols[ok]
    return out


def score(blend, result, matched):
    """Per true source above S/N 20 that was matched: per-band df/f, pull, kind right."""
    cat = result["catalog"].to_dataset()
    t = blend.truth
    rows = []
    for i, j in enumerate(matched):
        if j < 0 or t.snr.values[i] < 20:
            continue
        true = t.flux.values[i]
        fit = cat.flux.values[j]
        err = cat.flux_err.values[j] if "flux_err" in cat else np.full_like(fit, np.nan)
        point_true = t.kind.values[i] == "star"
        point_fit = str(cat.kind.values[j]) == "point"
        rows.append(
            dict(df=(fit - true) / true, rel_err=err / true, pull=(fit - true) / err, kind_ok=point_true == point_fit)
        )
    return rows


def noise_floor(rel, draws=400):
    """Median |df/f| if each flux were off by a Gaussian of its own relative error (seeded)."""
    rel = rel[np.isfinite(rel)]
    if not rel.size:
        return np.nan
    z = np.random.default_rng(0).standard_normal((draws, rel.size))
    return float(np.median(np.abs(z * rel)))


def summarize(rows):
    df = np.abs(np.concatenate([r["df"] for r in rows]))
    pull = np.concatenate([r["pull"] for r in rows])
    finite = float(np.mean(np.isfinite(pull))) if pull.size else np.nan
    rel = np.abs(np.concatenate([r["rel_err"] for r in rows]))
    pull = pull[np.isfinite(pull)]
    mad = 1.4826 * np.median(np.abs(pull - np.median(pull))) if pull.size else np.nan
    return dict(
        n_sources=len(rows),
        median_df=float(np.median(df)),
        p90_df=float(np.percentile(df, 90)),
        kind_right=float(np.mean([r["kind_ok"] for r in rows])),
        pull_sd=float(np.std(pull)) if pull.size else np.nan,
        pull_mad=float(mad),
        errors_finite=finite,
        # what median |df/f| would be if each flux were off by exactly its error's Gaussian:
        # the noise floor a flux estimate without bias cannot beat (its Cramer-Rao bound)
        noise_floor_df=noise_floor(rel),
    )


def main(argv=None):
    import scarlet2 as sc
    from scarlet2.simulate import simulate_galsim_blend

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--blends", type=int, default=30)
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--hard", action="store_true", help="the harder settings in HARD")
    ap.add_argument("--model", default="parametric")
    ap.add_argument("--no-detection", action="store_true")
    args = ap.parse_args(argv)
    # the code this run imports: recorded now, not after a run of many minutes
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    commit = head + ("+" if subprocess.run(["git", "diff", "--quiet", "HEAD", "--", "scarlet2"]).returncode else "")
    options = HARD if args.hard else {}
    true_rows, det_rows, n_true, n_found, chi2 = [], [], 0, 0, []
    t0 = time.perf_counter()
    for seed in range(args.first_seed, args.first_seed + args.blends):
        blend = simulate_galsim_blend(seed, **options)
        pos = blend.positions
        r = sc.fit_dataset(blend.dataset, catalog=pos, model=args.model, progress=False)
        rows = score(blend, r, np.arange(len(pos)))
        true_rows += rows
        chi2.append(r["fit"].attrs["chi2_dof"])
        med = np.median(np.abs(np.concatenate([x["df"] for x in rows]))) if rows else np.nan
        line = f"seed {seed}: {len(pos)} sources, chi2/dof {chi2[-1]:.3f}, median |df/f| {med:.3f}"
        if not args.no_detection:
            rd = sc.fit_dataset(blend.dataset, model=args.model, progress=False)
            cat = rd["catalog"].to_dataset()
            found = np.stack([cat.y.values, cat.x.values], axis=1)
            m = match(found, pos)
            bright = blend.truth.snr.values >= 20
            n_true += int(bright.sum())
            n_found += int((m[bright] >= 0).sum())
            det_rows += score(blend, rd, m)
            line += f"; detected {len(found)}, matched {int((m >= 0).sum())}/{len(pos)}"
        print(line, flush=True)
    out = dict(
        date=time.strftime("%Y-%m-%d %H:%M"),
        commit=commit,
        blends=args.blends,
        first_seed=args.first_seed,
        hard=args.hard,
        model=args.model,
        seconds=round(time.perf_counter() - t0, 1),
        chi2_dof_median=float(np.median(chi2)),
        true_positions=summarize(true_rows),
    )
    if det_rows:
        out["detection"] = dict(completeness=n_found / max(n_true, 1), **summarize(det_rows))
    print(json.dumps(out, indent=1))
    path = Path(__file__).parent / "results" / "deblend_accuracy.jsonl"
    with open(path, "a") as f:
        f.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
