"""Frames from several observations, PSF recentring, distortion and the errors on bad input."""

import jax
import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.wcs import WCS

import scarlet2 as sc
from scarlet2.model import grids
from scarlet2.ops.centroid import fourier_shift, windowed_centroid
from scarlet2.simulate.multires import tan_wcs

COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"


def _psf(sigma=1.5, size=25):
    return np.asarray(sc.GaussianPSF(sigma).image((size, size)))


def _obs(shape, wcs, bands=("r",), name=None, data=None, psf=None, sigma=1.5):
    n = len(bands)
    data = np.zeros((n, *shape)) if data is None else data
    psf = _psf(sigma) if psf is None else psf
    return sc.Observation(data, weights=np.ones((n, *shape)), psf=psf, bands=list(bands), wcs=wcs, name=name)


def test_union_intersection_and_a_north_up_grid():
    a = _obs((60, 60), tan_wcs(0.1, (60, 60)), name="a")
    b = _obs((20, 20), tan_wcs(0.2, (20, 20), 45.0, (3.2, 0.0)), bands=("g", "r"), name="b")
    union = sc.Frame.from_observations([a, b])
    inter = sc.Frame.from_observations([a, b], coverage="intersection")
    assert union.bands == ("r", "g")  # union of bands, in order of appearance
    assert union.shape[0] > 60 and inter.shape[0] <= 60  # the rotated square sticks out of a
    assert grids.integer_offset((60, 60), a.wcs, union.wcs) is not None
    north = sc.Frame.from_observations([a, b], pixel_scale=0.05)
    assert np.isclose(grids.pixel_scale(north.wcs), 0.05)
    assert np.allclose(north.wcs.pixel_scale_matrix, np.diag([-0.05, 0.05]) / 3600)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda a: [a, _obs((20, 20), None, name="nowcs")], r"observation 1 \('nowcs'\) has no WCS"),
        (lambda a: [a, _obs((20, 20), tan_wcs(0.1, (20, 20), 0, (500, 0)), name="far")], r"no sky in common"),
    ],
)
def test_bad_observation_sets_are_named(make, message):
    a = _obs((40, 40), tan_wcs(0.1, (40, 40)), name="a")
    with pytest.raises(sc.InputError, match=message):
        sc.Frame.from_observations(make(a), coverage="intersection")


def test_an_observation_outside_the_frame_is_named():
    a = _obs((40, 40), tan_wcs(0.1, (40, 40)), name="a")
    far = _obs((20, 20), tan_wcs(0.1, (20, 20), 0, (500, 0)), name="far")
    frame = sc.Frame.from_observations([a])
    with sc.Scene(frame) as scene:
        sc.PointSource((20.0, 20.0), spectrum=[1.0])
    with pytest.raises(sc.InputError, match=r"observation 'far' does not overlap the frame"):
        sc.render(scene, far)
    with pytest.raises(sc.InputError, match="coverage must be 'union' or 'intersection'"):
        sc.Frame.from_observations([a], coverage="all")


def test_position_outside_every_observation_is_named():
    a = _obs((40, 40), tan_wcs(0.1, (40, 40)), name="a")
    b = _obs((12, 12), tan_wcs(0.2, (12, 12), 30.0), name="b")
    frame = sc.Frame.from_observations([a, b], pixel_scale=0.1)
    corner = frame.shape[0] - 1.0
    with pytest.raises(sc.InputError, match=r"position 0 .* lies outside every observation \('a', 'b'\)"):
        sc.initialize([a, b], [(corner, corner)], frame=frame)


def test_off_centre_psf_is_recentred_with_a_record_and_sources_land_at_their_positions():
    psf = _psf(1.5)[0]
    shifted = fourier_shift(psf, 0.8, -0.6)
    obs = _obs((40, 40), None, psf=shifted)
    dy, dx = obs.psf_shift[0]
    assert np.allclose((dy, dx), (-0.8, 0.6), atol=0.02)
    with sc.Scene(sc.Frame(["r"], (40, 40))) as scene:
        sc.PointSource((20.3, 17.6), spectrum=[100.0])
    img = np.asarray(sc.render(scene, obs))[0]
    assert np.allclose(windowed_centroid(img), (20.3, 17.6), atol=0.01)
    with pytest.raises(sc.SchemaError, match=r"psf, band 'r': not centred"):
        _obs((40, 40), None, psf=fourier_shift(psf, 2.5, 0.0))


def test_psf_stamp_too_small_for_its_pixel_scale_is_refused():
    with pytest.raises(sc.SchemaError, match=r"band 'r': the 5x5 PSF stamp is too small for its pixel scale"):
        _obs((40, 40), None, psf=np.asarray(sc.GaussianPSF(3.0).image((5, 5))))


def test_frames_fk5_and_icrs_are_converted_by_astropy():
    w_icrs = tan_wcs(0.03, (50, 50))
    w_fk5 = w_icrs.deepcopy()
    w_fk5.wcs.radesys, w_fk5.wcs.equinox = "FK5", 2000.0
    w_fk5.wcs.set()
    yx = grids.map_pixels(np.array([[25.0, 25.0]]), w_icrs, w_fk5)[0]
    star = SkyCoord(*w_icrs.pixel_to_world_values(25.0, 25.0), unit="deg", frame="icrs")
    x, y = w_fk5.world_to_pixel(star.transform_to("fk5"))
    assert np.allclose(yx, (y, x), atol=1e-6)
    assert np.hypot(*(yx - 25.0)) > 0.1  # ICRS and FK5 J2000 differ by ~20 mas: 0.5 pixel here


def test_sip_distortion_is_followed():
    """A star rendered into a grid with SIP distortion lands where astropy puts it."""
    w = tan_wcs(0.2, (40, 40), 10.0)
    hdr = w.to_header()
    hdr["CTYPE1"], hdr["CTYPE2"] = "RA---TAN-SIP", "DEC--TAN-SIP"
    hdr.update({"A_ORDER": 2, "B_ORDER": 2, "A_2_0": 2e-3, "A_0_2": -1e-3, "B_1_1": 3e-3, "B_0_2": 1e-3})
    w_sip = WCS(hdr)
    assert w_sip.sip is not None
    fine = tan_wcs(0.05, (180, 180))
    obs = _obs((40, 40), w_sip, psf=_psf(1.5, 25))
    frame = sc.Frame(["r"], (180, 180), wcs=fine)
    star = w_sip.pixel_to_world(33.3, 31.6)  # far from the distortion's reference pixel, inside the grid
    with sc.Scene(frame) as scene:
        sc.PointSource(star, spectrum=[100.0])
    img = np.asarray(sc.render(scene, obs))[0]
    x, y = w_sip.world_to_pixel(star)
    tan_x, tan_y = tan_wcs(0.2, (40, 40), 10.0).world_to_pixel(star)
    assert np.hypot(x - tan_x, y - tan_y) > 0.1  # the distortion matters here
    assert np.allclose(windowed_centroid(img), (y, x), atol=0.01)


def _joint(seed):
    rng = np.random.default_rng(seed)
    # the same grids, new data and a new start: the same structure
    a_wcs = tan_wcs(0.05, (60, 60))
    b_wcs = tan_wcs(0.2, (16, 16), 30.0, (0.3, -0.2))
    a = _obs((60, 60), a_wcs, name="a", sigma=1.5)
    b = _obs((16, 16), b_wcs, bands=("g", "i"), name="b", sigma=1.2)
    frame = sc.Frame.from_observations([a, b])
    with sc.Scene(frame) as truth:
        spectrum = rng.uniform(30, 60, 3)
        sc.Source(rng.uniform(28, 32, 2), spectrum=spectrum, morphology=sc.Sersic(1.0, 5.0), box=45)
    a = _obs((60, 60), a_wcs, name="a", data=np.asarray(sc.render(truth, a)) + rng.normal(0, 0.05, (1, 60, 60)))
    data_b = np.asarray(sc.render(truth, b)) + rng.normal(0, 0.05, (2, 16, 16))
    b = _obs((16, 16), b_wcs, bands=("g", "i"), name="b", data=data_b, sigma=1.2)
    with sc.Scene(frame) as start:
        sc.Source((31.3, 28.8), spectrum=[40.0, 40.0, 40.0], morphology=sc.Sersic(1.2, 4.0), box=45)
    return start, [a, b]


def test_second_joint_fit_of_the_same_structure_does_not_compile():
    events = []

    def listener(name, duration, **kw):
        if name == COMPILE_EVENT:
            events.append(name)

    (s1, o1), (s2, o2) = _joint(1), _joint(2)
    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        sc.fit(s1, o1, max_iter=60, progress=False)
        first = len(events)
        sc.fit(s2, o2, max_iter=60, progress=False)
        second = len(events) - first
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
    assert first > 0
    assert second == 0, f"second joint fit compiled {second} times"


def test_two_epochs_of_one_band_on_their_own_grids_fit_together():
    """Multi-epoch: band 'r' twice, each epoch with its own WCS (rotated, offset) and PSF; GalSim
    draws a galaxy in both; the joint fit recovers its flux."""
    galsim = pytest.importorskip("galsim")
    flux, rng = 2000.0, np.random.default_rng(5)
    epochs = []
    for k, (rot, off, fwhm) in enumerate([(0.0, (0.0, 0.0), 3.0), (40.0, (0.4, -0.3), 4.0)]):
        w = tan_wcs(0.1, (48, 48), rot, off)
        m = grids.map_pixels(np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]), w, tan_wcs(0.1, (48, 48)))
        dy, dx = m[1] - m[0], m[2] - m[0]
        aff = galsim.AffineTransform(dx[1], dy[1], dx[0], dy[0], origin=galsim.PositionD(0, 0),
                                     world_origin=galsim.PositionD(m[0][1], m[0][0]))  # fmt: skip
        psf = galsim.Moffat(beta=3.0, fwhm=fwhm)
        gal = galsim.Sersic(1.0, half_light_radius=4.0).shear(g1=0.2, g2=0.0).withFlux(flux).shift(24.3, 23.6)
        img = galsim.ImageD(48, 48, xmin=0, ymin=0)
        galsim.Convolve(gal, psf).drawImage(img, wcs=aff, center=aff.toImage(galsim.PositionD(0, 0)))
        j = aff.jacobian()
        epsf = psf.drawImage(nx=31, ny=31, wcs=galsim.JacobianWCS(j.dudx, j.dudy, j.dvdx, j.dvdy)).array
        data = img.array[None] + rng.normal(0, 0.5, (1, 48, 48))
        epochs.append(sc.Observation(data, variance=np.full((1, 48, 48), 0.25), psf=epsf, bands=["r"], wcs=w,
                                     name=f"epoch{k}"))  # fmt: skip
    frame = sc.Frame.from_observations(epochs)
    assert frame.bands == ("r",)
    scene = sc.initialize(epochs, [tan_wcs(0.1, (48, 48)).pixel_to_world(24.3, 23.6)], frame=frame)
    fitted, info = sc.fit(sc.grow_boxes(scene), epochs, max_iter=500, progress=False)
    assert 0.9 < info.chi2_dof < 1.1
    assert abs(float(np.asarray(fitted.sources[1].flux())[0]) / flux - 1) < 0.02


def test_non_square_skewed_pixels_are_modelled_on_a_square_grid():
    """Pixels of 0.1" x 0.15", skewed: the frame is square (north up at 0.1"), the observation
    resampled; a GalSim-drawn galaxy's flux comes back through fit_dataset."""
    galsim = pytest.importorskip("galsim")
    w = tan_wcs(0.1, (40, 40))
    w.wcs.cd = np.array([[-0.1, 0.02], [0.0, 0.15]]) / 3600
    w.wcs.set()
    assert not grids.is_square(w)
    ref = tan_wcs(0.1, (40, 40))  # GalSim's world: this square grid's pixels
    m = grids.map_pixels(np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]), w, ref)
    dy, dx = m[1] - m[0], m[2] - m[0]
    aff = galsim.AffineTransform(dx[1], dy[1], dx[0], dy[0], origin=galsim.PositionD(0, 0),
                                 world_origin=galsim.PositionD(m[0][1], m[0][0]))  # fmt: skip
    psf = galsim.Moffat(beta=3.0, fwhm=6.0)
    gal = galsim.Sersic(1.0, half_light_radius=5.0).withFlux(3000.0).shift(19.6, 20.2)
    img = galsim.ImageD(40, 40, xmin=0, ymin=0)
    galsim.Convolve(gal, psf).drawImage(img, wcs=aff, center=aff.toImage(galsim.PositionD(0, 0)))
    j = aff.jacobian()
    epsf = psf.drawImage(nx=31, ny=31, wcs=galsim.JacobianWCS(j.dudx, j.dudy, j.dvdx, j.dvdy)).array
    rng = np.random.default_rng(0)
    data = img.array + rng.normal(0, 0.3, (40, 40))
    ds = sc.from_arrays(data, variance=np.full((40, 40), 0.09), psf=epsf, bands=["r"], wcs=w)
    centre = ref.pixel_to_world(20.2, 19.6)
    catalog = {"ra": [centre.ra.deg], "dec": [centre.dec.deg]}
    result = sc.fit_dataset(ds, catalog=catalog, progress=False, errors=False)
    assert result["model"]["model"].shape == (1, 40, 40)  # on the observation's own grid
    scene = result.scarlet.scene()
    assert grids.is_square(scene.frame.wcs) and 0.09 < grids.pixel_scale(scene.frame.wcs) <= 0.1  # the finer axis
    flux = float(result["catalog"]["flux"].values[0, 0])
    assert abs(flux / 3000.0 - 1) < 0.03, flux
    assert 0.9 < result.attrs["chi2_dof"] < 1.1
