"""Profiles against GalSim: PSF-convolved, pixel-integrated images over a grid of shapes."""

import numpy as np
import pytest

import scarlet2 as sc
from scarlet2.ops.fourier import box_size

galsim = pytest.importorskip("galsim")
GSP = galsim.GSParams(
    folding_threshold=2e-4, maxk_threshold=1e-5, kvalue_accuracy=1e-6, xvalue_accuracy=1e-6, maximum_fft_size=32768
)


def _render_pair(kind, index, r_e, g, theta, dy, dx, psf_fwhm=3.0):
    e1, e2 = g * np.cos(2 * theta), g * np.sin(2 * theta)
    S = min((int(8 * r_e * max(1, index / 2)) | 1) + 32, 201) | 1
    psf = galsim.Moffat(beta=3.0, fwhm=psf_fwhm, trunc=4 * psf_fwhm, gsparams=GSP)
    psf_img = psf.drawImage(nx=41, ny=41, scale=1.0).array
    if kind == "sersic":
        gal, morph = galsim.Sersic(n=index, half_light_radius=r_e, gsparams=GSP), sc.Sersic(index, r_e, (e1, e2))
    elif kind == "spergel":
        gal, morph = galsim.Spergel(nu=index, half_light_radius=r_e, gsparams=GSP), sc.Spergel(index, r_e, (e1, e2))
    else:
        sigma = r_e / np.sqrt(2 * np.log(2))
        gal, morph = galsim.Gaussian(sigma=sigma, gsparams=GSP), sc.Gaussian(sigma, (e1, e2))
    gal = gal.shear(g1=e1, g2=e2)
    img = galsim.Convolve(gal, psf, gsparams=GSP).drawImage(nx=S, ny=S, scale=1.0, offset=(dx, dy)).array
    c = S // 2
    frame = sc.Frame(bands=["i"], shape=(S, S))
    obs = sc.Observation(img[None], weights=np.ones((1, S, S)), psf=psf_img[None], bands=["i"])
    with sc.Scene(frame) as scene:
        src = sc.Source(center=(c + dy, c + dx), spectrum=np.ones(1), morphology=morph, box=box_size(2 * S))
    model = np.asarray(sc.render(scene, obs))[0]
    return img, model, src, scene, gal


def _grid(n_cases, seed, kinds):
    rng = np.random.default_rng(seed)
    cases = []
    for kind, indices in kinds:
        for index in indices:
            for r_e in (0.5, 2.0, 10.0):
                g = rng.uniform(0, 0.6)
                cases.append((kind, index, r_e, g, rng.uniform(0, np.pi), *rng.uniform(-0.5, 0.5, 2)))
    return cases[:n_cases] if n_cases else cases


FAST = _grid(0, 1, [("sersic", (0.5, 1.0, 2.5, 4.0, 6.0)), ("spergel", (-0.6, 0.5, 2.0)), ("gaussian", (0.5,))])
FULL = _grid(0, 2, [("sersic", (0.5, 0.8, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0)), ("spergel", (-0.8, 0.0, 1.0, 3.0))])


def _check(case):
    kind, index, r_e, g, theta, dy, dx = case
    img, model, src, scene, gal = _render_pair(kind, index, r_e, g, theta, dy, dx)
    peak_err = np.abs(model - img).max() / img.max()
    assert peak_err < 1e-3, f"{case}: max pixel difference {peak_err:.2e} of the peak"
    total = float(np.asarray(sc.render_source(scene, 0)[0]).sum())  # whole box, uncropped
    assert abs(total / gal.flux - 1) < 1e-4, f"{case}: total flux off by {total / gal.flux - 1:.2e}"
    # where the stamp holds the whole profile, the in-stamp sums must agree as well
    if img.sum() > 0.9995 * gal.flux:
        assert abs(model.sum() / img.sum() - 1) < 1e-4, f"{case}: stamp flux off by {model.sum() / img.sum() - 1:.2e}"


# GalSim takes ~25 s to draw the steepest, largest profile: it runs with the slow tests
FAST_PARAMS = [
    pytest.param(c, marks=pytest.mark.slow, id=f"{c[0]}-{c[1]}-re{c[2]}")
    if c[0] == "sersic" and c[1] >= 6 and c[2] >= 10
    else pytest.param(c, id=f"{c[0]}-{c[1]}-re{c[2]}")
    for c in FAST
]


@pytest.mark.parametrize("case", FAST_PARAMS)
def test_profile_matches_galsim(case):
    _check(case)


@pytest.mark.slow
@pytest.mark.parametrize("case", FULL, ids=lambda c: f"{c[0]}-{c[1]}-re{c[2]}")
def test_profile_matches_galsim_full_grid(case):
    _check(case)


def test_moffat_psf_matches_galsim():
    psf = galsim.Moffat(beta=2.5, fwhm=3.3, gsparams=GSP).drawImage(nx=41, ny=41, scale=1.0).array
    ours = np.asarray(sc.MoffatPSF(3.3, 2.5).image((41, 41)))[0]
    assert np.abs(ours - psf).max() < 1e-3 * psf.max()
    assert abs(ours.sum() / psf.sum() - 1) < 1e-3  # both lose the same wings beyond the stamp


# Steep Sersics whose wings reach far beyond a small frame (#23): Moffat beta 3, FWHM 2.5 px,
# boxes grown to a leakage bound of 1e-4. With boxes capped at twice the frame, the light beyond
# them wrapped into the frame: 0.1-0.2% too much there.
STEEP = [(4.3, 1.0, 0.39), (5.6, 1.8, 0.44), (5.9, 1.8, 0.36), (5.0, 3.0, 0.21), (6.0, 0.3, 0.42)]


def _steep_pair(index, r_e, g, size, dy, dx):
    theta = 0.7
    e1, e2 = g * np.cos(2 * theta), g * np.sin(2 * theta)
    psf = galsim.Moffat(beta=3.0, fwhm=2.5, trunc=10.0, gsparams=GSP)
    gal = galsim.Sersic(n=index, half_light_radius=r_e, gsparams=GSP).shear(g1=e1, g2=e2)
    img = galsim.Convolve(gal, psf, gsparams=GSP).drawImage(nx=size, ny=size, scale=1.0, offset=(dx, dy)).array
    c = (size - 1) / 2  # GalSim's centre: a pixel's centre for odd sizes, a corner for even ones
    frame = sc.Frame(bands=["i"], shape=(size, size))
    psf_img = psf.drawImage(nx=41, ny=41, scale=1.0).array[None]
    obs = sc.Observation(img[None], weights=np.ones((1, size, size)), psf=psf_img, bands=["i"])
    with sc.Scene(frame) as scene:
        morphology = sc.Sersic(index, r_e, (e1, e2))
        sc.Source(center=(c + dy, c + dx), spectrum=np.ones(1), morphology=morphology, box=box_size(11))
    scene = sc.grow_boxes(scene, max_leakage=1e-4)
    return img, np.asarray(sc.render(scene, obs))[0], scene


@pytest.mark.parametrize("index, r_e, g", STEEP, ids=lambda v: str(v))
def test_steep_profile_puts_the_frames_light_where_galsim_does(index, r_e, g):
    img, model, scene = _steep_pair(index, r_e, g, 64, 0.3, -0.2)
    if r_e >= 1:  # the wings need a box beyond twice the frame, and the frame misses their light
        assert max(scene.sources[0].box) > 2 * 64
        assert img.sum() < 0.9965
    assert abs(model.sum() / img.sum() - 1) < 1e-4, f"frame flux off by {model.sum() / img.sum() - 1:.2e}"


@pytest.mark.parametrize("index, r_e, g", STEEP, ids=lambda v: str(v))
def test_steep_profile_on_a_pixel_centre_matches_galsim(index, r_e, g):
    # centred on a pixel: between pixels, a PSF known by its pixels (with power beyond Nyquist at
    # FWHM 2.5 px) cannot be shifted exactly, and even a point source differs by ~4e-3 of the peak
    img, model, _ = _steep_pair(index, r_e, g, 65, 0.0, 0.0)
    peak_err = np.abs(model - img).max() / img.max()
    assert peak_err < 1e-3, f"max pixel difference {peak_err:.2e} of the peak"
