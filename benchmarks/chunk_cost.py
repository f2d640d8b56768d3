"""What parts of a scene cost the fit's compiled chunk: tracing, lowering, XLA compilation and
time per iteration, each variant in a fresh process, variants alternating over the repetitions.

    python benchmarks/chunk_cost.py --case hsc --variants full,no-sersic,no-point --repeat 4
    python benchmarks/chunk_cost.py --case hsc --variants full,groups=2000

Variants: ``full`` (the default model of :func:`scarlet2.initialize` at the case's positions),
``no-sersic`` / ``no-point`` (that model without the sources that have Sersic / point
components), ``groups=N`` (the full model with ``render.canvas.GROUP_OVERHEAD_PIXELS = N``),
``margin=F`` (the full model with ``render.geometry.MODEL_MARGIN = F``).

The chunk is the fit's own program (``infer.optimize._run_chunk``, 100 steps, with the fit's compiler
options). Its time per iteration is the minimum over ``--runs`` calls: a floor, below
``compare.py``'s per-iteration estimate, which is a difference of whole fits. Figures from this
script are in docs/performance.md ("What a render group costs to compile").
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
FIELDS = ("n_sources", "groups", "trace_s", "lower_s", "xla_s", "iter_ms")


def _scene(case_path: str, variant: str):
    import numpy as np

    import scarlet2 as sc
    from scarlet2 import Point, Sersic
    from scarlet2.render import canvas, geometry

    d = np.load(case_path)
    obs = sc.Observation(d["images"], weights=d["weights"], psf=d["psfs"], bands=[str(b) for b in d["bands"]])
    scene = sc.initialize(obs, d["positions"])
    drop = {"no-sersic": Sersic, "no-point": Point}.get(variant)
    if drop is not None:

        def has(s):
            return any(isinstance(c.morphology, drop) for c in getattr(s, "components", ()))

        scene = scene.replace_sources([s for s in scene.sources if not has(s)])
    elif variant.startswith("groups="):
        canvas.GROUP_OVERHEAD_PIXELS = int(variant.split("=", 1)[1])
    elif variant.startswith("margin="):
        geometry.MODEL_MARGIN = float(variant.split("=", 1)[1])
    elif variant != "full":
        raise ValueError(f"unknown variant {variant!r}: full, no-sersic, no-point, groups=N or margin=F")
    return scene, obs


def measure(case_path: str, variant: str, threads: int = 1, runs: int = 20, steps: int = 100) -> dict:
    """One variant's costs, in this process (call it in a fresh one: JAX caches compilations)."""
    import scarlet2 as sc

    sc.set_cpu_threads(threads)
    import equinox as eqx
    import jax
    import jax.numpy as jnp

    from scarlet2.infer import optimize
    from scarlet2.infer.packing import pack_stepsizes
    from scarlet2.ops.jit import compiler_options
    from scarlet2.render.canvas import _groups
    from scarlet2.render.observe import prepare

    scene, obs = _scene(case_path, variant)
    core, renderers = prepare(scene, [obs])
    optimizer = optimize.DEFAULT_OPTIMIZER
    state = optimize._start(core, optimizer, jnp.float32)
    stepsizes = jnp.asarray(pack_stepsizes(core, jnp.float32))
    n = jnp.asarray(steps, jnp.int32)
    rtol, min_iter = jnp.asarray(0.0), jnp.asarray(steps, jnp.int32)
    args = (state, core, renderers, None, optimizer, stepsizes, n, rtol, min_iter, steps)
    dynamic, static = eqx.partition(args, eqx.is_array)
    chunk = jax.jit(lambda d: optimize._run_chunk(*eqx.combine(d, static)))
    t0 = time.perf_counter()
    traced = chunk.trace(dynamic)
    t1 = time.perf_counter()
    lowered = traced.lower()
    t2 = time.perf_counter()
    compiled = lowered.compile(compiler_options("cpu", iterative=True))
    t3 = time.perf_counter()
    jax.block_until_ready(compiled(dynamic))
    best = float("inf")
    for _ in range(runs):
        t = time.perf_counter()
        jax.block_until_ready(compiled(dynamic))
        best = min(best, time.perf_counter() - t)
    groups = [
        f"{type(m[0][0].morphology).__name__} {box[0]}x{box[1]} ({len(m)})" for (_, box), m in _groups(core).items()
    ]
    return dict(
        n_sources=len(scene.sources),
        groups=", ".join(groups),
        trace_s=t1 - t0,
        lower_s=t2 - t1,
        xla_s=t3 - t2,
        iter_ms=best / steps * 1e3,
    )


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--case", default="hsc", help="a compare.py case: hsc, sim0..sim2, large, tiny")
    p.add_argument("--variants", default="full,no-sersic,no-point")
    p.add_argument("--repeat", type=int, default=3, help="fresh processes per variant (alternating)")
    p.add_argument("--runs", type=int, default=20, help="timed chunk calls per process (minimum taken)")
    p.add_argument("--threads", type=int, default=1, help="XLA CPU threads (scarlet2.set_cpu_threads)")
    p.add_argument("--worker", nargs=2, metavar=("CASE_FILE", "VARIANT"), help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.worker:
        print(json.dumps(measure(*a.worker, threads=a.threads, runs=a.runs)))
        return {}
    sys.path.insert(0, str(HERE))
    import compare

    variants = a.variants.split(",")
    results = {v: [] for v in variants}
    with tempfile.TemporaryDirectory() as tmp:
        case_path = compare.make_case(a.case, Path(tmp))
        if case_path is None:
            raise SystemExit(f"case {a.case!r} is not available (see the message above)")
        for _ in range(a.repeat):
            for v in variants:
                cmd = [sys.executable, __file__, "--worker", str(case_path), v]
                cmd += ["--threads", str(a.threads), "--runs", str(a.runs)]
                out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
                results[v].append(json.loads(out.strip().splitlines()[-1]))
    print(f"| {a.case} variant | " + " | ".join(FIELDS) + " |")
    print("|---" * (len(FIELDS) + 1) + "|")
    summary = {}
    for v, rows in results.items():
        med = {k: statistics.median(r[k] for r in rows) for k in FIELDS if k not in ("n_sources", "groups")}
        summary[v] = {**med, "n_sources": rows[0]["n_sources"], "groups": rows[0]["groups"], "runs": rows}
        cells = [str(rows[0]["n_sources"]), rows[0]["groups"]] + [f"{med[k]:.3f}" for k in FIELDS[2:]]
        print(f"| {v} | " + " | ".join(cells) + " |")
    print(f"medians of {a.repeat} fresh processes per variant; iter_ms: minimum of {a.runs} chunk calls")
    return summary


if __name__ == "__main__":
    main()
