"""A fit of some sources among held neighbours renders the neighbours once (render.parts)."""

import numpy as np

import scarlet2 as sc
from scarlet2.infer import optimize
from scarlet2.render import parts as parts_module


def _scene(frame, star=(11.4, 12.8), star_spectrum=(100.0, 80.0, 60.0), spectrum=(90.0, 60.0, 50.0)):
    with sc.Scene(frame) as scene:
        sc.Source((18.3, 21.6), spectrum=[200.0, 300.0, 400.0], morphology=sc.Sersic(1.0, 3.0, (0.1, 0.0)), box=35)
        sc.PointSource(star, spectrum=list(star_spectrum), box=15)
        sc.Source((29.2, 27.5), spectrum=list(spectrum), morphology=sc.Sersic(2.0, 2.0, (0.0, 0.2)), box=25)
    return scene


def _problem():
    rng = np.random.default_rng(3)
    shape, bands = (40, 40), ["g", "r", "i"]
    psf = np.asarray(sc.MoffatPSF(3.0).image((21, 21), n_bands=3))
    frame = sc.Frame(bands, shape)
    template = sc.Observation(np.zeros((3, *shape)), weights=np.ones((3, *shape)), psf=psf, bands=bands)
    data = np.asarray(sc.render(_scene(frame), template)) + rng.normal(0, 1, (3, *shape))
    obs = sc.Observation(data, weights=np.ones((3, *shape)), psf=psf, bands=bands)
    # the star starts off its centre and flux, the third galaxy off its spectrum; the first is held
    start = _scene(frame, star=(11.1, 13.2), star_spectrum=(60.0, 60.0, 60.0), spectrum=(50.0, 50.0, 50.0))
    names = ["sources[1].offset", "sources[1].components[0].spectrum", "sources[2].components[0].spectrum"]
    return sc.with_free(start, names), obs


def test_a_fit_among_held_neighbours_renders_them_once_and_finds_the_same_optimum(monkeypatch):
    start, obs = _problem()
    used = []
    real = optimize.fixed_parts

    def spy(core, renderers):
        used.append(real(core, renderers))
        return used[-1]

    monkeypatch.setattr(optimize, "fixed_parts", spy)
    stamped, info_stamped = sc.fit(start, obs, progress=False, rtol=1e-8, max_iter=3000)
    assert used[0].points is not None  # the moving star went through its PSF stamp
    # the same parts with the star on the canvas: the whole model's images up to rounding
    monkeypatch.setattr(parts_module, "point_transfer", lambda renderer, model_psf: None)
    fitted, info = sc.fit(start, obs, progress=False, rtol=1e-8, max_iter=3000)
    parts = used[-1]
    assert parts is not None and parts.linear and parts.held[0] is not None  # a held and a linear source
    assert parts.points is None
    monkeypatch.setattr(optimize, "fixed_parts", lambda core, renderers: None)
    whole, info_whole = sc.fit(start, obs, progress=False, rtol=1e-8, max_iter=3000)
    assert info.converged and info_whole.converged and info_stamped.converged
    np.testing.assert_allclose(info.chi2, info_whole.chi2, rtol=1e-6)
    # the stamp moves the observed PSF instead of the model PSF (tests/unit/render/test_points.py):
    # on data the canvas path drew, chi^2 differs by far less than its noise (sd ~ 100 here)
    assert abs(info_stamped.chi2 - info_whole.chi2) < 1.0
    for i in (1, 2):
        for f in (fitted, stamped):
            np.testing.assert_allclose(
                f.sources[i].components[0].spectrum.value, whole.sources[i].components[0].spectrum.value, rtol=1e-3
            )
    assert np.array_equal(fitted.sources[0].components[0].spectrum.value, start.sources[0].components[0].spectrum.value)
