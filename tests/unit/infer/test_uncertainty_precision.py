"""Fisher-matrix errors and float32 centre precision."""

import numpy as np
import pytest

import scarlet2 as sc


def _point_obs(center, flux, shape=(31, 31), noise=2.0, fixed_center=True):
    psf = np.asarray(sc.GaussianPSF(1.8).image((21, 21), n_bands=2))
    frame = sc.Frame(["a", "b"], shape)
    with sc.Scene(frame) as scene:
        sc.PointSource(center, spectrum=np.asarray(flux, float), box=21, fixed_center=fixed_center)
    w = np.full((2,) + shape, 1 / noise**2)
    template = sc.Observation(np.zeros((2,) + shape), weights=w, psf=psf, bands=["a", "b"])
    model = np.asarray(sc.render(scene, template))
    return scene, model, w, psf


def test_fisher_error_of_linear_flux_is_exact():
    scene, model, w, psf = _point_obs((15.3, 14.6), [500.0, 800.0])
    obs = sc.Observation(model, weights=w, psf=psf, bands=["a", "b"])
    (err,) = sc.uncertainties(scene, obs).values()
    unit = model / np.array([500.0, 800.0])[:, None, None]
    expected = 1 / np.sqrt((w * unit**2).sum(axis=(1, 2)))
    np.testing.assert_allclose(err, expected, rtol=1e-3)


def test_fit_errors_in_info_cover_truth():
    scene, model, w, psf = _point_obs((15.3, 14.6), [500.0, 800.0], fixed_center=False)
    rng = np.random.default_rng(4)
    pulls = []
    for _ in range(8):
        data = model + rng.normal(0, 2.0, model.shape)
        obs = sc.Observation(data, weights=w, psf=psf, bands=["a", "b"])
        fitted, info = sc.fit(scene, obs, max_iter=400, progress=False, errors=True)
        spec_err = info.errors["sources[0].components[0].spectrum"]  # free: offset, spectrum
        pulls.append((np.asarray(fitted.sources[0].components[0].spectrum.value) - [500, 800]) / spec_err)
    pulls = np.concatenate(pulls)
    assert np.all(np.isfinite(pulls))
    assert 0.4 < np.std(pulls) < 1.8  # errors of the right size (8 fits x 2 bands)


def test_float32_resolves_millipixel_shift():
    truth = (15.3012, 14.6)
    scene_t, model_t, w, psf = _point_obs(truth, [1e4, 1e4], fixed_center=False)
    assert np.abs(model_t - _point_obs((15.3, 14.6), [1e4, 1e4])[1]).max() > 0  # 1.2 mpix changes the image
    start, _, _, _ = _point_obs((15.3, 14.6), [1e4, 1e4], fixed_center=False)
    obs = sc.Observation(model_t, weights=w, psf=psf, bands=["a", "b"])
    fitted, info = sc.fit(start, obs, max_iter=600, rtol=0, progress=False)
    assert np.abs(np.asarray(fitted.sources[0].center) - truth).max() < 3e-4


def test_centre_is_integer_origin_plus_small_offset():
    frame = sc.Frame(["a"], (4000, 4000))
    with sc.Scene(frame) as scene:
        sc.PointSource((3517.4567, 2999.0012), spectrum=np.ones(1))
    src = scene.sources[0]
    assert src.origin.dtype == np.int32 and np.abs(np.asarray(src.offset.value)).max() <= 0.5
    np.testing.assert_allclose(
        np.asarray(src.origin) + np.asarray(src.offset.value, np.float64), (3517.4567, 2999.0012), atol=1e-6
    )


def test_fit_chi2_excludes_the_prior():
    """info.chi2 is the data term alone, with and without a prior on a parameter."""
    import numpyro.distributions as dist

    _, model, w, psf = _point_obs((15.3, 14.6), [500.0, 800.0])
    data = model + np.random.default_rng(7).normal(0, 2.0, model.shape)
    obs = sc.Observation(data, weights=w, psf=psf, bands=["a", "b"])
    for prior in (None, dist.LogNormal(np.log(600.0), 0.3)):
        with sc.Scene(sc.Frame(["a", "b"], (31, 31))) as scene:
            sc.PointSource((15.0, 15.0), spectrum=sc.Parameter(np.array([400.0, 400.0]), "positive", prior=prior))
        fitted, info = sc.fit(scene, obs, max_iter=300, progress=False)
        chi2 = float(np.sum(w * (np.asarray(sc.render(fitted, obs)) - data) ** 2))
        assert info.chi2 == pytest.approx(chi2, rel=1e-4)


def test_covariance_from_hessian_handles_a_degenerate_split():
    """Only a + b is constrained (a bulge/disk flux split): a and b get inf, their sum and the
    independent c keep exact finite variances, also with float32-level noise that makes the
    Hessian slightly indefinite (as an unconverged fit's does)."""
    from scarlet2.infer.uncertainty import covariance_from_hessian

    h = np.array([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 4.0]]) * 1e4
    rng = np.random.default_rng(0)
    for noise in (0.0, 1e-7):
        e = rng.normal(0, noise, (3, 3)) * 1e4
        cov, var = covariance_from_hessian(h + e + e.T)
        assert np.isinf(var[0]) and np.isinf(var[1])
        assert var[2] == pytest.approx(0.25e-4, rel=1e-4)
        s = np.array([1.0, 1.0, 0.0])
        assert s @ cov @ s == pytest.approx(1e-4, rel=1e-3)  # loss (a + b)^2 / 2 x 1e4
        assert np.all(np.linalg.eigvalsh(cov) >= -1e-12)  # positive semi-definite: no NaN errors
    # a well-conditioned Hessian is simply inverted
    g = np.array([[2.0, 0.5], [0.5, 1.0]])
    cov, var = covariance_from_hessian(g)
    np.testing.assert_allclose(cov, np.linalg.inv(g), rtol=1e-10)
    np.testing.assert_allclose(var, np.diag(np.linalg.inv(g)), rtol=1e-10)


def test_covariance_floored_part_tells_unconstrained_combinations():
    """A bulge/disk split (only a + b constrained) and a flux without data (d: no curvature at
    all, a band whose pixels are all masked): the floored part of the covariance is most of the
    variance of a - b and of d, and a negligible part of that of a + b."""
    from scarlet2.infer.uncertainty import covariance_from_hessian

    h = np.zeros((4, 4))
    h[:2, :2], h[2, 2] = 1e4, 4e4
    cov, var, low = covariance_from_hessian(h, floored=True)
    assert np.isinf(var[0]) and np.isinf(var[1]) and np.isinf(var[3]) and np.isfinite(var[2])
    for a, constrained in (([1, 1, 0, 0], True), ([1, -1, 0, 0], False), ([0, 0, 0, 1], False), ([0, 0, 1, 0], True)):
        a = np.asarray(a, float)
        share = (a @ low @ a) / (a @ cov @ a)
        assert (share < 1e-6) if constrained else (share > 0.99), (a, share)
    np.testing.assert_allclose(covariance_from_hessian(h)[0], cov)  # the same covariance either way


def test_covariance_from_hessian_holds_a_parameter_at_its_bound():
    """A fit ended against a bound (negative curvature, as a Sersic index at its limit gives):
    that parameter gets inf and is held fixed; the others get their conditional variances."""
    from scarlet2.infer.uncertainty import covariance_from_hessian

    h = np.array([[4.0, 0.5, 0.0], [0.5, -2.0, 0.3], [0.0, 0.3, 1.0]])
    cov, var = covariance_from_hessian(h)
    assert np.isinf(var[1]) and np.isinf(cov[1, 1]) and cov[0, 1] == cov[1, 2] == 0
    np.testing.assert_allclose(var[[0, 2]], [0.25, 1.0], rtol=1e-10)  # inverse of h without row/col 1
    np.testing.assert_allclose(cov[np.ix_([0, 2], [0, 2])], np.linalg.inv(h[np.ix_([0, 2], [0, 2])]), rtol=1e-10)


def test_hessian_in_column_batches_is_the_same(monkeypatch):
    """Large frames compute the Hessian a few columns at a time (bounded memory): the same
    matrix as all columns at once."""
    from scarlet2.infer import uncertainty
    from scarlet2.render.observe import prepare

    scene, model, w, psf = _point_obs((15.3, 14.6), [500.0, 800.0], fixed_center=False)
    obs = sc.Observation(model, weights=w, psf=psf, bands=["a", "b"])
    _, renderers = prepare(scene, [obs])
    assert uncertainty.hessian_batch(4, renderers) == 4  # a small canvas: all columns together
    all_at_once = sc.uncertainties(scene, obs, covariance=True)[1]
    monkeypatch.setattr(uncertainty, "HESSIAN_BYTES", 1)
    assert uncertainty.hessian_batch(4, renderers) == 1
    one_by_one = sc.uncertainties(scene, obs, covariance=True)[1]
    # float32 sums in another order: equal to round-off, relative to the largest entry
    np.testing.assert_allclose(one_by_one, all_at_once, rtol=0, atol=1e-5 * np.abs(all_at_once).max())


def _fisher_and_hessian(scene, monkeypatch):
    """The covariances from the Fisher information and from the exact Hessian (the path of
    scenes whose Jacobian exceeds JACOBIAN_BYTES), at the scene's own noiseless image."""
    from scarlet2.infer import uncertainty

    psf = np.asarray(sc.GaussianPSF(1.5).image((21, 21), n_bands=2))
    w = np.full((2, 41, 41), 0.25)
    template = sc.Observation(np.zeros((2, 41, 41)), weights=w, psf=psf, bands=["a", "b"])
    obs = sc.Observation(np.asarray(sc.render(scene, template)), weights=w, psf=psf, bands=["a", "b"])
    fisher = sc.uncertainties(scene, obs, covariance=True)[1]
    with monkeypatch.context() as m:
        m.setattr(uncertainty, "JACOBIAN_BYTES", 1)
        hessian = sc.uncertainties(scene, obs, covariance=True)[1]
    return fisher, hessian


def test_fisher_information_is_the_hessian_at_a_noiseless_optimum(monkeypatch):
    """J^T W J from central differences of the render equals the exact (autodiff) Hessian of
    the negative log likelihood where the model fits the data exactly, for linear (fluxes) and
    nonlinear (centre, size, Sersic index, ellipticity) parameters; scenes whose Jacobian would
    not fit in JACOBIAN_BYTES get that Hessian. With a prior, its curvature is in both."""
    import numpyro.distributions as dist

    for prior in (None, dist.Normal(1.5, 0.05)):
        with sc.Scene(sc.Frame(["a", "b"], (41, 41))) as scene:
            r_e = sc.Parameter(1.5, "positive", prior=prior)
            galaxy = sc.Sersic(n=2.5, r_e=r_e, ellipticity=np.array([0.2, -0.1]))
            sc.Source((20.3, 19.6), spectrum=np.array([300.0, 500.0]), morphology=galaxy)
            sc.PointSource((11.2, 27.7), spectrum=np.array([200.0, 100.0]))
        fisher, hessian = _fisher_and_hessian(scene, monkeypatch)
        sd = np.sqrt(np.diag(hessian))
        assert np.all(np.isfinite(sd))
        np.testing.assert_allclose(np.sqrt(np.diag(fisher)), sd, rtol=2e-3)
        np.testing.assert_allclose(fisher / np.outer(sd, sd), hessian / np.outer(sd, sd), atol=2e-3)  # correlations
        if prior is not None:  # the prior (sd 0.05) bounds r_e's error
            k = sc.parameter_names(scene).index("sources[0].components[0].morphology.r_e")
            assert sd[sum(np.size(p.value) for p in sc.free_parameters(scene)[:k])] < 0.05


def test_a_parameter_at_its_domain_edge_gets_a_one_sided_difference(monkeypatch):
    """A Sersic index just above its lower bound (0.3) and an ellipticity at the unit disk's
    edge (radius 0.95): their differences are one-sided, inward, the others central, and the
    Fisher errors still agree with the exact Hessian's at a noiseless optimum (second order)."""
    from scarlet2.infer import uncertainty
    from scarlet2.model.parameter import free_slots

    with sc.Scene(sc.Frame(["a", "b"], (41, 41))) as scene:
        galaxy = sc.Sersic(n=0.301, r_e=2.5, ellipticity=np.array([0.0, 0.948]))
        sc.Source((20.3, 19.6), spectrum=np.array([3000.0, 5000.0]), morphology=galaxy)
    slots = free_slots(scene)
    values = [np.asarray(p.value) for p, _ in slots]
    offsets, _ = uncertainty.difference_steps(slots, values)
    names = [n for (p, _), v, n in zip(slots, values, sc.parameter_names(scene), strict=True) for _ in range(v.size)]
    one_sided = {n for n, t in zip(names, offsets, strict=True) if t[0] * t[1] > 0}
    assert one_sided == {"sources[0].components[0].morphology.n", "sources[0].components[0].morphology.ellipticity"}
    inward = {n: t for n, t in zip(names, offsets, strict=True) if t[0] * t[1] > 0}
    assert inward["sources[0].components[0].morphology.n"][0] > 0  # up from the lower bound
    fisher, hessian = _fisher_and_hessian(scene, monkeypatch)
    # 0.4% (2% with the full central step one-sided: the index's profile bends fast near 0.3)
    np.testing.assert_allclose(np.sqrt(np.diag(fisher)), np.sqrt(np.diag(hessian)), rtol=1e-2)
