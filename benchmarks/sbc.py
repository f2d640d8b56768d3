"""Simulation-based calibration of ``scarlet2.sample`` (Talts et al. 2018).

Each problem draws a galaxy and a star from the priors (fluxes, the galaxy's size and
ellipticity, both centres), simulates 3-band data from the model with noise, fits the MAP and samples the
posterior with one compiled sampler. The rank of each true value among thinned draws is
uniform when the posterior is calibrated: a chi^2 test on ranks pooled over parameters (and
per parameter) and the 68% / 95% central-interval coverage are reported.

    python benchmarks/sbc.py --problems 200 [--x64] [--out benchmarks/results/sbc.jsonl]

``problems`` below is also what the slow test runs (tests/unit/infer/test_sbc.py).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from scipy import stats

BANDS = ["g", "r", "i"]
SHAPE = (25, 25)
NOISE = 1.0
#: log-normal priors: (median, sigma of ln)
GALAXY_FLUX = (250.0, 0.4)
STAR_FLUX = (120.0, 0.4)
GALAXY_R_E = (2.0, 0.2)
#: each ellipticity component ~ Normal(0, this), truncated to the unit disk
ELLIPTICITY_SD = 0.2


def _scene(sc, dist, frame, params, jnp_dtype):
    """The SBC scene at ``params``: each free parameter carries its prior (offsets: uniform
    within the source's shift bound, their constraint)."""
    gal_flux, gal_yx, r_e, ellipticity, star_flux, star_yx = params
    ln = lambda med_sd, n=None: dist.LogNormal(  # noqa: E731
        np.full(n, np.log(med_sd[0]), jnp_dtype) if n else np.log(med_sd[0]).astype(jnp_dtype), med_sd[1]
    )
    with sc.Scene(frame) as scene:
        sc.Source(
            gal_yx,
            spectrum=sc.Parameter(gal_flux, "positive", prior=ln(GALAXY_FLUX, 3), stepsize=5.0),
            morphology=sc.Sersic(
                sc.Parameter(1.0, fixed=True),
                sc.Parameter(r_e, "positive", prior=ln(GALAXY_R_E)),
                sc.Parameter(ellipticity, "unit_disk", prior=dist.Normal(np.zeros(2, jnp_dtype), ELLIPTICITY_SD)),
            ),
            box=31,
        )
        sc.PointSource(star_yx, spectrum=sc.Parameter(star_flux, "positive", prior=ln(STAR_FLUX, 3), stepsize=5.0))
    return scene


def draw_truth(rng):
    """Parameters drawn from the priors (centres: nominal + uniform offset within MAX_SHIFT)."""
    from scarlet2.model.source import MAX_SHIFT

    lognormal = lambda med_sd, n=None: np.exp(rng.normal(np.log(med_sd[0]), med_sd[1], n))  # noqa: E731
    # 0.999 of the bound: an offset at the bound itself is outside the open interval
    shift = lambda: rng.uniform(-MAX_SHIFT, MAX_SHIFT, 2) * 0.999  # noqa: E731
    e = rng.normal(0, ELLIPTICITY_SD, 2)
    while np.hypot(*e) >= 1:  # the truncated prior
        e = rng.normal(0, ELLIPTICITY_SD, 2)
    return (
        lognormal(GALAXY_FLUX, 3),
        np.array([14.0, 12.0]) + shift(),
        float(lognormal(GALAXY_R_E)),
        e,
        lognormal(STAR_FLUX, 3),
        np.array([8.0, 16.0]) + shift(),
    )


def nominal():
    """The starting point of every fit: the priors' medians at the nominal centres."""
    galaxy = (np.full(3, GALAXY_FLUX[0]), np.array([14.0, 12.0]), GALAXY_R_E[0], np.zeros(2))
    return (*galaxy, np.full(3, STAR_FLUX[0]), (8.0, 16.0))


def run(problems=200, seed=0, x64=False, num_chains=2, num_warmup=300, num_samples=400, thin=4, progress=True):
    """Ranks (problem, parameter) of the truths among ``num_chains * num_samples / thin`` draws,
    the parameter names, and timings."""
    import jax

    if x64:
        jax.config.update("jax_enable_x64", True)
    import numpyro.distributions as dist

    import scarlet2 as sc
    from scarlet2.infer.sample import constrained_draws

    dtype = np.float64 if x64 else np.float32
    rng = np.random.default_rng(seed)
    frame = sc.Frame(BANDS, SHAPE)
    psf = np.asarray(sc.MoffatPSF(3.0).image((21, 21), n_bands=3), dtype)
    blank = sc.Observation(np.zeros((3, *SHAPE)), weights=np.ones((3, *SHAPE)), psf=psf, bands=BANDS, dtype=dtype)
    ranks, names, t0, t_first = [], None, time.perf_counter(), None
    for i in range(problems):
        truth_params = draw_truth(rng)
        truth = _scene(sc, dist, frame, truth_params, dtype)
        model = np.asarray(sc.render(truth, blank))
        data = (model + rng.normal(0, NOISE, model.shape)).astype(dtype)
        obs = sc.Observation(data, weights=np.full(data.shape, NOISE**-2), psf=psf, bands=BANDS, dtype=dtype)
        start = _scene(sc, dist, frame, nominal(), dtype)
        fitted, _ = sc.fit(start, obs, progress=False, max_iter=400)
        draws = sc.infer.sample.sample(
            fitted, obs, num_chains, num_warmup, num_samples, seed=seed * 100003 + i, progress=False
        )
        values, _ = constrained_draws(fitted, draws.positions)
        post = np.concatenate([v.reshape(num_chains, num_samples, -1) for v in values], axis=-1)
        true = _true_values(truth, fitted, dtype)
        post = post[:, ::thin].reshape(-1, post.shape[-1])
        ranks.append(np.sum(post < true, axis=0))
        if names is None:
            names = _names(fitted)
        if t_first is None:
            t_first = time.perf_counter() - t0
        if progress:
            print(f"\rproblem {i + 1}/{problems}", end="", file=sys.stderr, flush=True)
    if progress:
        print(file=sys.stderr)
    n_draws = num_chains * num_samples // thin
    return np.array(ranks), names, n_draws, {"first_s": t_first, "total_s": time.perf_counter() - t0}


def _true_values(truth, fitted, dtype):
    """The truth in the fitted scene's parametrization: offsets are from each source's integer
    origin, which is the nominal centre in the fitted scene and the rounded true centre in
    the truth's."""
    from scarlet2.infer.packing import pack_host
    from scarlet2.infer.sample import constrained_draws

    values, _ = constrained_draws(truth, pack_host(truth, dtype)[None, None])
    out = []
    for v, name in zip(values, _slot_paths(fitted), strict=True):
        if name.endswith(".offset"):
            i = int(name.split("[")[1].split("]")[0])
            v = np.asarray(truth.sources[i].center) - np.asarray(fitted.sources[i].origin)
        out.append(np.reshape(v, -1))
    return np.concatenate(out)


def _slot_paths(scene):
    from scarlet2.model.parameter import free_slots, parameter_names

    names = parameter_names(scene)
    return [names[members[0]] for _, members in free_slots(scene)]


def _names(scene):
    from scarlet2.model.parameter import free_slots

    out = []
    for (rep, _), path in zip(free_slots(scene), _slot_paths(scene), strict=True):
        n = int(np.prod(np.shape(rep.value), dtype=int))
        out += [path + (f"[{k}]" if n > 1 else "") for k in range(n)]
    return out


def calibration(ranks, n_draws, bins=10):
    """Pooled and per-parameter chi^2 tests of rank uniformity, and interval coverage."""
    edges = np.linspace(0, n_draws + 1, bins + 1)

    def chi2_p(r):
        counts, _ = np.histogram(r, edges)
        return float(stats.chisquare(counts).pvalue)

    u = (ranks + 0.5) / (n_draws + 1)  # the truth's posterior quantile
    return {
        "pooled_p": chi2_p(ranks.ravel()),
        "per_parameter_p": [chi2_p(ranks[:, j]) for j in range(ranks.shape[1])],
        "coverage68": float(np.mean(np.abs(u - 0.5) < 0.34)),
        "coverage95": float(np.mean(np.abs(u - 0.5) < 0.475)),
        "per_parameter_coverage68": [float(np.mean(np.abs(u[:, j] - 0.5) < 0.34)) for j in range(ranks.shape[1])],
    }


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--problems", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--x64", action="store_true")
    p.add_argument("--chains", type=int, default=2)
    p.add_argument("--warmup", type=int, default=300)
    p.add_argument("--samples", type=int, default=400)
    p.add_argument("--out", default="benchmarks/results/sbc.jsonl")
    a = p.parse_args(argv)
    ranks, names, n_draws, times = run(a.problems, a.seed, a.x64, a.chains, a.warmup, a.samples)
    cal = calibration(ranks, n_draws)
    record = {"problems": a.problems, "x64": a.x64, "chains": a.chains, "warmup": a.warmup, "samples": a.samples,
              "n_draws": n_draws, "names": names, **cal, **times}  # fmt: skip
    print(json.dumps(record, indent=1))
    with Path(a.out).open("a") as f:
        f.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
