"""Shared by both runners (stdlib + numpy only: it is imported in the reference's venv too)."""

import json
import resource

import numpy as np


class CompileClock:
    """Seconds JAX spends making programs (tracing, lowering to MLIR, XLA compilation), from
    JAX's own monitoring events, so that compile time is measured, not inferred from wall times.
    Both sides run JAX, so both are measured the same way."""

    EVENTS = {
        "/jax/core/compile/jaxpr_trace_duration": "trace_s",
        "/jax/core/compile/jaxpr_to_mlir_module_duration": "lower_s",
        "/jax/core/compile/backend_compile_duration": "xla_s",
    }

    def __init__(self):
        from jax import monitoring

        self._totals = dict.fromkeys(self.EVENTS.values(), 0.0)
        monitoring.register_event_duration_secs_listener(self._record)

    def _record(self, event, seconds, **_):
        if event in self.EVENTS:
            self._totals[self.EVENTS[event]] += seconds

    def take(self):
        """The seconds recorded since the last call, by kind."""
        out, self._totals = self._totals, dict.fromkeys(self.EVENTS.values(), 0.0)
        return out


def emit(side, version, init_s, fit_times_s, model, fluxes, compile_times=None):
    """Print the one JSON line compare.py reads."""
    print(
        json.dumps(
            {
                "side": side,
                "version": version,
                "init_s": init_s,
                "fit_times_s": fit_times_s,
                "compile_times": compile_times,  # one CompileClock.take() per fit
                "model": np.asarray(model).tolist(),
                "fluxes": [np.asarray(f).tolist() for f in fluxes],
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            }
        )
    )
