"""Runs a case with this project's scarlet2 and prints one JSON line of measurements."""

import sys
import time

import numpy as np
from _runner_common import CompileClock, emit


def main(case_path, n_iter):
    import os

    import scarlet2 as sc

    clock = CompileClock()

    if os.environ.get("SCARLET2_BENCH_CACHE"):
        sc.enable_compilation_cache(os.environ["SCARLET2_BENCH_CACHE"])
    d = np.load(case_path)
    obs = sc.Observation(d["images"], weights=d["weights"], psf=d["psfs"], bands=[str(b) for b in d["bands"]])
    t0 = time.perf_counter()
    scene = sc.initialize(obs, d["positions"])
    t_init = time.perf_counter() - t0
    times, compile_times = [], []
    clock.take()
    for n in (n_iter, n_iter, n_iter // 2):  # the first fit compiles; the others reuse it
        t0 = time.perf_counter()
        fitted, info = sc.fit(scene, obs, max_iter=n, rtol=0.0, progress=False)
        times.append(time.perf_counter() - t0)
        compile_times.append(clock.take())
    model = np.asarray(sc.render(fitted, obs))
    fluxes = [np.asarray(s.flux()).tolist() for s in fitted.sources if not isinstance(s, sc.Background)]
    emit("ours", sc.__version__, t_init, times, model, fluxes, compile_times)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
