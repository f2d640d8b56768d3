"""Rendering into observations on other pixel grids, against GalSim and reproject as oracles."""

import numpy as np
import pytest

import scarlet2 as sc
from scarlet2.model import grids
from scarlet2.simulate.multires import tan_wcs

galsim = pytest.importorskip("galsim")
GSP = galsim.GSParams(
    folding_threshold=2e-4, maxk_threshold=1e-5, kvalue_accuracy=1e-6, xvalue_accuracy=1e-6, maximum_fft_size=32768
)
FINE, COARSE = 0.03, 0.168
SHAPE_FINE, SHAPE_COARSE = (240, 240), (40, 40)
# positions in fine pixels (y, x); fluxes in (F814W, i)
SOURCES = [
    dict(kind="sersic", yx=(112.3, 131.7), n=1.5, r_e=9.0, e=(0.2, -0.1), flux=(300.0, 500.0)),
    dict(kind="bd", yx=(140.6, 96.2), n=(4.0, 1.0), r_e=(4.0, 15.0), e=((0.05, 0.1), (-0.3, 0.2)), frac=0.35,
         flux=(400.0, 600.0)),
    dict(kind="star", yx=(90.4, 88.9), flux=(200.0, 250.0)),
]  # fmt: skip


def _galsim_object(s, band):
    if s["kind"] == "sersic":
        g = galsim.Sersic(n=s["n"], half_light_radius=s["r_e"], gsparams=GSP).shear(g1=s["e"][0], g2=s["e"][1])
    elif s["kind"] == "bd":
        b = galsim.Sersic(n=s["n"][0], half_light_radius=s["r_e"][0], gsparams=GSP).shear(
            g1=s["e"][0][0], g2=s["e"][0][1]
        )
        d = galsim.Sersic(n=s["n"][1], half_light_radius=s["r_e"][1], gsparams=GSP).shear(
            g1=s["e"][1][0], g2=s["e"][1][1]
        )
        g = s["frac"] * b + (1 - s["frac"]) * d
    else:
        g = galsim.DeltaFunction(gsparams=GSP)
    return g.withFlux(s["flux"][band]).shift(s["yx"][1], s["yx"][0])


def _affine(wcs_from, wcs_to):
    """GalSim's map from ``wcs_from`` pixels to "world" = ``wcs_to`` pixels (x, y)."""
    m = grids.map_pixels(np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]), wcs_from, wcs_to)
    dy, dx = m[1] - m[0], m[2] - m[0]
    return galsim.AffineTransform(
        dudx=dx[1], dudy=dy[1], dvdx=dx[0], dvdy=dy[0], origin=galsim.PositionD(0, 0),
        world_origin=galsim.PositionD(m[0][1], m[0][0]),
    )  # fmt: skip


def _draw(sources, band, psf, shape, affine):
    img = galsim.ImageD(shape[1], shape[0], xmin=0, ymin=0)
    obj = galsim.Convolve(galsim.Sum([_galsim_object(s, band) for s in sources]), psf, gsparams=GSP)
    obj.drawImage(img, wcs=affine, center=affine.toImage(galsim.PositionD(0, 0)))
    return img.array


def _scene(frame, sources, w_fine):
    with sc.Scene(frame) as scene:
        for s in sources:
            sky = w_fine.pixel_to_world(s["yx"][1], s["yx"][0])
            spec = np.array(s["flux"])
            if s["kind"] == "sersic":
                sc.Source(center=sky, spectrum=spec, morphology=sc.Sersic(s["n"], s["r_e"], s["e"]), box=225)
            elif s["kind"] == "bd":
                comps = [
                    sc.Component(spec * s["frac"], sc.Sersic(s["n"][0], s["r_e"][0], s["e"][0])),
                    sc.Component(spec * (1 - s["frac"]), sc.Sersic(s["n"][1], s["r_e"][1], s["e"][1])),
                ]
                sc.Source(center=sky, components=comps, box=315)
            else:
                sc.PointSource(center=sky, spectrum=spec)
    return scene


@pytest.fixture(scope="module")
def pair():
    """A fine north-up grid and a coarse one rotated by 30 degrees with a sub-pixel offset."""
    w_fine = tan_wcs(FINE, SHAPE_FINE)
    w_coarse = tan_wcs(COARSE, SHAPE_COARSE, 30.0, (0.37, -0.21))
    a_fine, a_coarse = _affine(w_fine, w_fine), _affine(w_coarse, w_fine)
    psf_fine = galsim.Gaussian(fwhm=0.09 / FINE, gsparams=GSP)
    psf_coarse = galsim.Moffat(beta=3.0, fwhm=0.7 / FINE, trunc=4 * 0.7 / FINE, gsparams=GSP)
    j = a_coarse.jacobian()
    local = galsim.JacobianWCS(j.dudx, j.dudy, j.dvdx, j.dvdy)
    out = {
        "w_fine": w_fine,
        "w_coarse": w_coarse,
        "a_coarse": a_coarse,
        "psf_coarse": psf_coarse,
        "local": local,
        "img_fine": _draw(SOURCES, 0, psf_fine, SHAPE_FINE, a_fine),
        "img_coarse": _draw(SOURCES, 1, psf_coarse, SHAPE_COARSE, a_coarse),
        "epsf_fine": psf_fine.drawImage(nx=41, ny=41, scale=1.0).array,
        "epsf_coarse": psf_coarse.drawImage(nx=41, ny=41, wcs=local).array,
    }
    fine = sc.Observation(
        out["img_fine"], weights=np.ones(SHAPE_FINE), psf=out["epsf_fine"], bands=["F814W"], wcs=w_fine, name="hst"
    )
    coarse = sc.Observation(
        out["img_coarse"], weights=np.ones(SHAPE_COARSE), psf=out["epsf_coarse"], bands=["i"], wcs=w_coarse, name="hsc"
    )
    out["obs"] = [fine, coarse]
    out["frame"] = sc.Frame.from_observations(out["obs"])
    return out


def test_frame_is_the_finest_grid_extended_to_the_union(pair):
    frame, (fine, coarse) = pair["frame"], pair["obs"]
    assert frame.bands == ("F814W", "i")
    offset = grids.integer_offset(SHAPE_FINE, fine.wcs, frame.wcs)
    assert offset is not None and min(offset) > 0  # the fine grid, shifted by whole pixels
    lo, hi = grids.footprint(SHAPE_COARSE, coarse.wcs, frame.wcs)
    assert np.all(lo >= -0.5) and np.all(hi <= np.array(frame.shape) - 0.5)  # the coarse view inside
    assert lo.min() < 0.5 and (np.array(frame.shape) - 0.5 - hi).min() < 0.5  # and tight around it
    assert np.isclose(grids.pixel_scale(frame.wcs), FINE)


def test_render_into_a_rotated_coarse_grid_matches_galsim(pair):
    """Every pixel to 1e-3 of the peak, the total flux to 1e-4."""
    scene = _scene(pair["frame"], SOURCES, pair["w_fine"])
    model = np.asarray(sc.render(scene, pair["obs"][1]))[0]
    truth = pair["img_coarse"]
    err = np.abs(model - truth).max() / truth.max()
    assert err < 1e-3, f"max pixel difference {err:.2e} of the peak"
    assert abs(model.sum() / truth.sum() - 1) < 1e-4, f"total flux off by {model.sum() / truth.sum() - 1:.2e}"
    fine = np.asarray(sc.render(scene, pair["obs"][0]))[0]  # the same scene on the frame's own grid
    assert np.abs(fine - pair["img_fine"]).max() / pair["img_fine"].max() < 1e-3


def test_star_lands_at_its_wcs_position_in_the_coarse_grid(pair):
    """The star's image, ours against GalSim's, agrees in centroid to 0.01 coarse pixel."""
    star = [s for s in SOURCES if s["kind"] == "star"]
    scene = _scene(pair["frame"], star, pair["w_fine"])
    model = np.asarray(sc.render(scene, pair["obs"][1]))[0]
    truth = _draw(star, 1, pair["psf_coarse"], SHAPE_COARSE, pair["a_coarse"])
    from scarlet2.ops.centroid import windowed_centroid

    dy, dx = np.subtract(windowed_centroid(model), windowed_centroid(truth))
    assert np.hypot(dy, dx) < 0.01, f"star off by ({dy:.4f}, {dx:.4f}) coarse pixels"


def test_reproject_agrees_with_our_resampling_of_a_band_limited_image():
    """A smooth (band-limited) scene seen on a north-up grid and on a grid rotated by 30 degrees
    with the same pixel scale and the same round PSF: reproject's bicubic interpolation of the
    first image onto the second grid agrees with our rendering of the second to its accuracy."""
    reproject = pytest.importorskip("reproject")
    w_a = tan_wcs(0.1, (80, 80))
    w_b = tan_wcs(0.1, (50, 50), 30.0, (0.3, -0.4))
    psf = np.asarray(sc.GaussianPSF(2.5).image((31, 31)))
    obs_a = sc.Observation(np.zeros((1, 80, 80)), weights=np.ones((80, 80)), psf=psf, bands=["r"], wcs=w_a)
    obs_b = sc.Observation(np.zeros((1, 50, 50)), weights=np.ones((50, 50)), psf=psf, bands=["r"], wcs=w_b)
    frame = sc.Frame(["r"], (80, 80), wcs=w_a)
    with sc.Scene(frame) as scene:
        sc.Source((38.3, 41.6), spectrum=[100.0], morphology=sc.Sersic(1.0, 4.0, (0.2, 0.1)), box=81)
        sc.PointSource((30.2, 50.7), spectrum=[40.0])
    img_a = np.asarray(sc.render(scene, obs_a))[0]
    ours = np.asarray(sc.render(scene, obs_b))[0]
    theirs, footprint = reproject.reproject_interp((img_a, w_a), w_b, shape_out=(50, 50), order="bicubic")
    inner = footprint > 0
    inner[:3], inner[-3:], inner[:, :3], inner[:, -3:] = False, False, False, False
    err = np.abs(ours - theirs)[inner].max() / ours.max()
    assert err < 2e-3, f"reproject and our resampling differ by {err:.2e} of the peak"
