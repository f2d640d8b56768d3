"""Our side of ``compare.py --cases multires`` (run in a fresh process): the shared HST + HSC pair."""

import json
import resource
import sys
import time

T_START = time.perf_counter()

import equinox as eqx  # noqa: E402
import jax  # noqa: E402
import numpy as np  # noqa: E402
from _multires_data import load_pair  # noqa: E402

import scarlet2 as sc  # noqa: E402
from scarlet2.infer.objective import log_likelihood_core  # noqa: E402
from scarlet2.render.observe import prepare  # noqa: E402


def timed(fn, *args, repeat=10):
    jax.block_until_ready(fn(*args))  # compile
    ts = []
    for _ in range(repeat):
        t = time.perf_counter()
        jax.block_until_ready(fn(*args))
        ts.append(time.perf_counter() - t)
    return float(np.median(ts))


def main(n_iter):
    pair = load_pair()
    t0 = time.perf_counter()
    hst = sc.Observation(pair["hst"], variance=pair["hst_var"], psf=pair["hst_psf"], bands=["F814W"],
                         wcs=pair["hst_wcs"], name="hst")  # fmt: skip
    hsc = sc.Observation(pair["hsc"], variance=pair["hsc_var"], psf=pair["hsc_psf"], bands=list("grizy"),
                         wcs=pair["hsc_wcs"], name="hsc")  # fmt: skip
    frame = sc.Frame.from_observations([hst, hsc])
    with sc.Scene(frame) as scene:
        for c in pair["sky"]:
            sc.Source(center=c, spectrum=np.ones(6), morphology=sc.Sersic(1.0, 6.0), box=63)
    core, renderers = prepare(scene, [hst, hsc])
    setup = time.perf_counter() - t0
    # the whole joint fit first, so that its peak memory is read before the timing programs exist
    t0 = time.perf_counter()
    init = sc.initialize([hst, hsc], pair["sky"], frame=frame)
    t_init = time.perf_counter() - t0
    t0 = time.perf_counter()
    fitted, info = sc.fit(init, [hst, hsc], max_iter=n_iter, rtol=0.0, min_iter=n_iter, progress=False)
    t_fit = time.perf_counter() - t0
    peak_fit = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    like = eqx.filter_jit(lambda s: log_likelihood_core(s, renderers))
    grad = eqx.filter_jit(eqx.filter_grad(lambda s: log_likelihood_core(s, renderers)))
    t_like, t_grad = timed(like, core), timed(grad, core)
    chi2 = {}
    for o in (hst, hsc):
        r = (np.asarray(sc.render(fitted, o)) - np.asarray(o.data)) ** 2 * np.asarray(o.weights)
        chi2[o.name] = float(r.sum() / (np.asarray(o.weights) > 0).sum())
    print(json.dumps({
        "side": "ours", "version": sc.__version__, "setup_s": setup, "loglike_ms": 1e3 * t_like,
        "grad_ms": 1e3 * t_grad, "init_s": t_init, "fit_s": t_fit, "iterations": int(info.iterations),
        "chi2_dof": chi2, "process_s": time.perf_counter() - T_START, "peak_fit_mb": peak_fit,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }))  # fmt: skip


if __name__ == "__main__":
    main(int(sys.argv[1]))
