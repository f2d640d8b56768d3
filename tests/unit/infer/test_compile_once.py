"""A second fit of a scene with the same structure (new data, new initial values) does not
recompile: counted with JAX's own compilation events."""

import jax
import numpy as np

import scarlet2 as sc

COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"


def _scene_and_obs(seed):
    rng = np.random.default_rng(seed)
    shape, bands = (40, 40), ["g", "r", "i"]
    psf = np.asarray(sc.MoffatPSF(3.0).image((21, 21), n_bands=3))
    frame = sc.Frame(bands, shape)
    with sc.Scene(frame) as truth:
        sc.Source(
            rng.uniform(15, 25, 2),
            spectrum=rng.uniform(200, 400, 3),
            morphology=sc.Sersic(1.0, 3.0, (0.1, 0.0)),
            box=35,
        )
        sc.PointSource(rng.uniform(8, 32, 2), spectrum=rng.uniform(100, 200, 3), box=15)
    template = sc.Observation(np.zeros((3,) + shape), weights=np.ones((3,) + shape), psf=psf, bands=bands)
    data = np.asarray(sc.render(truth, template)) + rng.normal(0, 1, (3,) + shape)
    obs = sc.Observation(data, weights=np.ones((3,) + shape), psf=psf, bands=bands)
    # a different start for each seed
    with sc.Scene(frame) as init:
        s0, s1 = truth.sources
        sc.Source(
            np.asarray(s0.center) + 0.3, spectrum=rng.uniform(100, 300, 3), morphology=sc.Sersic(1.5, 2.5), box=35
        )
        sc.PointSource(np.asarray(s1.center) - 0.2, spectrum=rng.uniform(50, 150, 3), box=15)
    return init, obs


def test_second_fit_does_not_compile():
    events = []

    def listener(name, duration, **kw):
        if name == COMPILE_EVENT:
            events.append(name)

    scene1, obs1 = _scene_and_obs(1)
    scene2, obs2 = _scene_and_obs(2)
    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        sc.fit(scene1, obs1, max_iter=150, progress=False)
        first = len(events)
        _, info = sc.fit(scene2, obs2, max_iter=150, progress=False)
        second = len(events) - first
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
    assert first > 0  # the listener sees compilations at all
    assert second == 0, f"second fit compiled {second} times"
    assert info.iterations > 0


def test_progress_bar_can_be_shown(capsys):
    scene, obs = _scene_and_obs(3)
    sc.fit(scene, obs, max_iter=120, progress=True)
    assert "fit" in capsys.readouterr().err


def test_initialization_compiles_one_render_for_all_components():
    """The linear spectra of `initialize` render every component through the observation with
    one compiled program (the scene with one-hot spectra), not one program per component kind."""
    from scarlet2.infer.spectra import solve_linear_spectra
    from scarlet2.simulate import simulate_blend

    sim = simulate_blend(4)
    obs = sc.Observation(sim.images, variance=sim.variance, psf=sim.psfs, bands=sim.bands)
    scene = sc.initialize(obs, sim.positions, solve_spectra=False)
    kinds = {(type(c.morphology), s.box) for s in scene.sources for c in getattr(s, "components", ())}
    assert len(kinds) >= 3  # several programs, were each component rendered on its own

    renders = []

    def listener(name, duration, fun_name="", **kw):
        if name == COMPILE_EVENT and ("_render_obs" in fun_name or "_unit_images" in fun_name):
            renders.append(fun_name)

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        solved = solve_linear_spectra(scene, obs)
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
    assert len(renders) <= 1, renders

    # the spectra are the per-band least-squares fit for these (unfitted) morphologies
    def chi2(s):
        model = np.asarray(sc.render(s, obs))
        return np.sum(np.asarray(obs.weights) * (model - np.asarray(obs.data)) ** 2) / model.size

    assert chi2(solved) < 3 and chi2(solved) < 0.1 * chi2(scene)


_FIRST_FIT = r"""
import json, warnings
import jax
import numpy as np
import scarlet2 as sc

warnings.simplefilter("ignore")
rng = np.random.default_rng(0)
shape, bands = (40, 40), ["g", "r"]
yy, xx = np.indices(shape)
blob = np.exp(-0.5 * ((yy - 20) ** 2 + (xx - 18) ** 2) / 9.0)
data = 100 * blob[None] * np.array([1.0, 1.5])[:, None, None] + rng.normal(0, 1, (2,) + shape)
psf = np.exp(-0.5 * ((np.indices((15, 15)) - 7) ** 2).sum(0) / 2.0)[None].repeat(2, 0)
obs = sc.Observation(data, weights=np.ones((2,) + shape), psf=psf, bands=bands)
with sc.Scene(sc.Frame(bands, shape)) as scene:
    sc.Source((20.0, 18.0), spectrum=[80.0, 120.0], morphology=sc.Sersic(1.5, 2.0, (0.1, 0.0)), box=15)
    sc.Source((12.0, 28.0), spectrum=[5.0, 5.0], morphology=sc.Gaussian(1.5, q=0.7, angle=0.3), box=15)
    sc.Source((28.0, 10.0), spectrum=[5.0, 5.0], morphology=sc.Spergel(0.5, 2.0), box=15)
names = []
jax.monitoring.register_event_duration_secs_listener(
    lambda name, d, **kw: names.append(name) if name == "/jax/core/compile/backend_compile_duration" else None
)
sc.fit(scene, obs, max_iter=20, progress=False)
print(json.dumps(len(names)))
"""


def test_first_fit_compiles_one_program():
    """In a fresh process a fit compiles its chunk and nothing else: what runs after the loop
    (box leakage, unpacking, catalogue values) works on host values, not small device programs."""
    import json
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", _FIRST_FIT], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == 1
