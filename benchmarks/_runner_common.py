"""Shared by both runners (stdlib + numpy only: it is imported in the reference's venv too)."""

import json
import resource

import numpy as np


def emit(side, version, init_s, fit_times_s, model, fluxes):
    """Print the one JSON line compare.py reads."""
    print(
        json.dumps(
            {
                "side": side,
                "version": version,
                "init_s": init_s,
                "fit_times_s": fit_times_s,
                "model": np.asarray(model).tolist(),
                "fluxes": [np.asarray(f).tolist() for f in fluxes],
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            }
        )
    )
