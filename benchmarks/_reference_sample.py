"""Posterior sampling with the published scarlet2 0.5.1 (run inside benchmarks/_reference_venv).

Its own quickstart fit of the case, then its documented sampling recipe (docs/howto/sampling):
the star's spectrum (``Uniform(0, 500)`` per band) and centre (``Normal(catalogue position,
0.1")``), and two galaxies' spectra with the same flat prior, through ``scarlet2.sample``
(numpyro NUTS, one chain per call). Chains are separate calls with seeds 0, 1, ...; each call
is timed (each compiles afresh). Writes the draws as per-band fluxes to an npz for
sample_compare.py.

    python _reference_sample.py CASE.npz OUT.npz CHAINS WARMUP SAMPLES {on,off} {f32,f64}
"""

import sys
import time

import numpy as np


def main(case, out, chains, warmup, samples, validation, precision):
    import jax

    if precision == "f64":
        jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as dist

    numpyro.enable_validation(validation == "on")  # numpyro's default is on
    from _reference_runner import quickstart

    import scarlet2 as s2

    d = np.load(case)
    obs, scene = quickstart(d)
    fitted = scene.fit(obs, max_iter=200, e_rel=1e-4, progress_bar=False)
    sources = [int(i) for i in d["sample_sources"]]  # the star first
    star = fitted.sources[sources[0]]
    n_bands = len(d["bands"])
    dtype = jnp.float64 if precision == "f64" else jnp.float32
    # flux of each source per unit of its spectrum, per band (its morphology is held)
    spectra = [np.asarray(getattr(fitted.sources[i].spectrum, "data", fitted.sources[i].spectrum)) for i in sources]
    per_unit = [np.asarray(fitted.sources[i]()).sum(axis=(-2, -1)) / s for i, s in zip(sources, spectra, strict=True)]
    upper = [max(500.0, 5 * float(s.max())) for s in spectra]  # the documented 500, wider if a source needs it
    with s2.Parameters(fitted):
        for k, i in enumerate(sources):
            spec = getattr(fitted.sources[i].spectrum, "data", fitted.sources[i].spectrum)
            prior = dist.Uniform(jnp.zeros(n_bands, dtype), upper[k] * jnp.ones(n_bands, dtype)).to_event(1)
            s2.Parameter(spec, name=f"spectrum_{i}", prior=prior)
        prior = dist.Normal(jnp.asarray(d["positions"][sources[0]], dtype), d["center_sigma"]).to_event(1)
        s2.Parameter(star.center, name="center", prior=prior)
    flux, centers, walls, stats = [], [], [], []
    for seed in range(chains):
        t0 = time.perf_counter()
        mcmc = s2.sample(fitted, obs, seed=seed, num_warmup=warmup, num_samples=samples, progress_bar=False)
        draws = mcmc.get_samples()
        jax.block_until_ready(draws)
        walls.append(time.perf_counter() - t0)
        flux.append(np.stack([np.asarray(draws[f"spectrum_{i}"]) * per_unit[k] for k, i in enumerate(sources)], 1))
        centers.append(np.asarray(draws["center"]))
        extra = mcmc.get_extra_fields()  # "diverging" by default; s2.sample cannot ask for more
        stats.append((np.asarray(extra["diverging"]), np.full(samples, np.nan)))
    np.savez(
        out,
        flux=np.stack(flux),
        center=np.stack(centers),
        wall_s=np.array(walls),
        diverging=np.stack([s[0] for s in stats]),
        n_steps=np.stack([s[1] for s in stats]),
        version=s2.__version__,
    )


if __name__ == "__main__":
    a = sys.argv[1:]
    main(a[0], a[1], int(a[2]), int(a[3]), int(a[4]), a[5], a[6])
