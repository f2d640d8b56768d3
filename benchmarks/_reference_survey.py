"""One survey region through the published scarlet2 0.5.1 (run inside benchmarks/_reference_venv).

The reference has no detection and no tiling: it gets the region's window and the true
positions of the sources in it, builds its quickstart scene (:func:`_reference_runner.quickstart`)
and fits with its defaults (``max_iter=100, e_rel=1e-4``). Prints one JSON line: seconds for
initialization and fit, and the model's fluxes.
"""

import json
import sys
import time

import numpy as np
from _reference_runner import quickstart


def main(case_path):
    import scarlet2 as s2

    d = np.load(case_path)
    t0 = time.perf_counter()
    obs, scene = quickstart(d)
    t_init = time.perf_counter() - t0
    t0 = time.perf_counter()
    fitted = scene.fit(obs, progress_bar=False)
    fluxes = [np.asarray(src()).sum(axis=(-2, -1)).tolist() for src in fitted.sources]
    t_fit = time.perf_counter() - t0
    print(json.dumps({"version": s2.__version__, "init_s": t_init, "fit_s": t_fit, "fluxes": fluxes}))


if __name__ == "__main__":
    main(sys.argv[1])
