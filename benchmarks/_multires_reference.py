"""The reference's side of ``compare.py --cases multires`` (run in benchmarks/_reference_venv):
scarlet2 0.5.1's own multi-resolution path (Frame.from_observations, Observation.match) on the
shared HST + HSC pair, with the same sources (Sersic n = 1 morphologies) as our side."""

import json
import resource
import time

T_START = time.perf_counter()

import equinox as eqx  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from _multires_data import load_pair  # noqa: E402

import scarlet2 as s2  # noqa: E402


def timed(fn, *args, repeat=3):
    t = time.perf_counter()
    jax.block_until_ready(fn(*args))
    first = time.perf_counter() - t
    ts = []
    for _ in range(repeat):
        t = time.perf_counter()
        jax.block_until_ready(fn(*args))
        ts.append(time.perf_counter() - t)
    return first, float(np.median(ts))


def main():
    s2.set_validation(False)
    pair = load_pair()
    t0 = time.perf_counter()

    def observation(name, bands):
        psf = s2.ArrayPSF(jnp.asarray(pair[f"{name}_psf"]))
        weights = jnp.asarray(1 / pair[f"{name}_var"])
        wcs = pair[f"{name}_wcs"]
        return s2.Observation(jnp.asarray(pair[name]), weights=weights, psf=psf, wcs=wcs, channels=bands)

    hst, hsc = observation("hst", ["F814W"]), observation("hsc", list("grizy"))
    frame = s2.Frame.from_observations([hst, hsc], coverage="union")
    t_hst = time.perf_counter()
    hst.match(frame)
    t_hsc = time.perf_counter()
    hsc.match(frame)
    t_end = time.perf_counter()
    with s2.Scene(frame) as scene:
        for c in pair["sky"]:
            center = jnp.asarray(frame.get_pixel(c), jnp.float32).reshape(2)
            s2.Source(center, jnp.ones(6), s2.SersicMorphology(1.0, 6.0))
    setup = t_end - t0

    def loglike(sc):
        model = sc()
        return hst.log_likelihood(model) + hsc.log_likelihood(model)

    like = eqx.filter_jit(loglike)
    grad = eqx.filter_jit(eqx.filter_grad(loglike))
    render = eqx.filter_jit(lambda sc: hsc.render(sc()))
    r_first, r_run = timed(render, scene)
    l_first, l_run = timed(like, scene)
    g_first, g_run = timed(grad, scene)
    print(json.dumps({
        "side": "reference", "version": s2.__version__, "setup_s": setup, "match_hsc_s": t_end - t_hsc,
        "match_hst_s": t_hsc - t_hst, "render_hsc_ms": 1e3 * r_run, "loglike_ms": 1e3 * l_run, "grad_ms": 1e3 * g_run,
        "grad_first_s": g_first, "process_s": time.perf_counter() - T_START,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }))  # fmt: skip


if __name__ == "__main__":
    main()
