"""Runs a case with the published scarlet2 0.5.1 (executed inside benchmarks/_reference_venv).

Follows the reference's own quickstart: a frame from the observation, free-form morphologies
initialized from Gaussian moments (compact ones where moments fail; point sources where the case
says so), spectra (relative steps, factor 0.05), morphologies and point-source centres as
Parameters, ``scene.fit``. Prints one JSON line of measurements.
"""

import sys
import time
from functools import partial

import numpy as np
from _runner_common import CompileClock, emit


def quickstart(d):
    """The reference quickstart's observation and scene (with its fit Parameters) for a case."""
    import jax.numpy as jnp
    from numpyro.distributions import constraints

    import scarlet2 as s2

    s2.set_validation(False)
    obs = s2.Observation(
        jnp.asarray(d["images"]),
        weights=jnp.asarray(d["weights"]),
        psf=s2.ArrayPSF(jnp.asarray(d["psfs"])),
        channels=[str(b) for b in d["bands"]],
    )
    frame = s2.Frame.from_observations(obs)
    obs.match(frame)
    points = set(d["point_sources"].tolist())
    with s2.Scene(frame) as scene:
        for i, (y, x) in enumerate(d["positions"]):
            center = jnp.array([y, x])
            if i in points:
                s2.PointSource(center, s2.init.pixel_spectrum(obs, center, correct_psf=True))
            else:
                try:  # the reference quickstart's fallback when moments fail
                    spectrum, morph = s2.init.from_gaussian_moments(obs, center, min_corr=0.99)
                except ValueError:
                    spectrum = s2.init.pixel_spectrum(obs, center)
                    morph = s2.init.compact_morphology()
                s2.Source(center, spectrum, morph)
    spec_step = partial(s2.relative_step, factor=0.05)  # as in the reference quickstart
    with s2.Parameters(scene):
        for i, src in enumerate(scene.sources):
            spec = getattr(src.spectrum, "data", src.spectrum)
            s2.Parameter(spec, name=f"spectrum:{i}", constraint=constraints.positive, stepsize=spec_step)
            if i in points:  # catalogue positions are whole pixels: a bright star needs its centre free
                s2.Parameter(src.center, name=f"center:{i}", stepsize=0.1)
            else:
                morph = getattr(src.morphology, "data", src.morphology)
                s2.Parameter(morph, name=f"morph:{i}", constraint=constraints.unit_interval, stepsize=1e-2)
    return obs, scene


def main(case_path, n_iter):
    import jax.numpy as jnp

    import scarlet2 as s2

    clock = CompileClock()
    d = np.load(case_path)
    t0 = time.perf_counter()
    obs, scene = quickstart(d)
    t_init = time.perf_counter() - t0
    times, compile_times = [], []
    clock.take()
    for n in (n_iter, n_iter, n_iter // 2):  # every reference fit compiles afresh
        t0 = time.perf_counter()
        fitted = scene.fit(obs, max_iter=n, e_rel=0.0, progress_bar=False)
        jnp.asarray(getattr(fitted.sources[0].spectrum, "data", fitted.sources[0].spectrum)).block_until_ready()
        times.append(time.perf_counter() - t0)
        compile_times.append(clock.take())
    model = np.asarray(obs.render(fitted()))
    fluxes = [np.asarray(src()).sum(axis=(-2, -1)).tolist() for src in fitted.sources]
    emit("reference", s2.__version__, t_init, times, model, fluxes, compile_times)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
