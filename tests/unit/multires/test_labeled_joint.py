"""Joint fits through the xarray face: a list of Datasets, a DataTree, and the CLI."""

import numpy as np
import pytest
import xarray as xr
from astropy.coordinates import SkyCoord

import scarlet2 as sc
from scarlet2.cli import main
from scarlet2.labeled.inputs import named_datasets

pytest.importorskip("galsim")
from scarlet2.simulate import simulate_pair  # noqa: E402


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """The simulated pair as two observation Zarr stores, and a catalog of its true positions."""
    pair = simulate_pair(2, sharp_shape=(120, 120), wide_shape=(24, 24), extent=0.6)
    root = tmp_path_factory.mktemp("joint")
    paths = []
    for name, view in (("hst", pair.sharp), ("hsc", pair.wide)):
        ds = sc.from_arrays(
            view["images"], variance=view["variance"], psf=view["psf"], bands=list(view["bands"]), wcs=view["wcs"]
        )
        path = root / f"{name}.zarr"
        sc.write_zarr(ds, path)
        paths.append(path)
    catalog = xr.Dataset({"ra": ("source", pair.truth["ra"]), "dec": ("source", pair.truth["dec"])})
    return paths, catalog, pair


def _check(result, pair, detected=False):
    assert set(result["model"].children) == {"hst", "hsc"}
    hst, hsc = result["model/hst"].to_dataset(), result["model/hsc"].to_dataset()
    assert hst["model"].shape == (1, 120, 120) and hsc["model"].shape == (5, 24, 24)
    # each group carries its own WCS
    assert np.isclose(hsc.scarlet.wcs.proj_plane_pixel_scales()[0].to_value("arcsec"), 0.168)
    cat = result["catalog"].to_dataset()
    assert list(cat["band"].values) == ["F814W", "g", "r", "i", "z", "y"]
    if detected:  # every true source found, within 0.1"
        found = SkyCoord(cat["ra"].values, cat["dec"].values, unit="deg")
        assert pair.sky_positions().match_to_catalog_sky(found)[1].arcsec.max() < 0.1
    else:
        assert cat.sizes["source"] == len(pair.truth["ra"])
    err = cat["flux_err"].values
    assert np.all(err > 0) and np.mean(np.isfinite(err)) >= 0.75  # a faint source may be unconstrained
    for name in ("hst", "hsc"):
        assert 0.8 < result[f"model/{name}"].attrs["chi2_dof"] < 1.5


# Both fits in a child process on one XLA thread: the CPU thread pool varies the order of
# float32 reductions from run to run (one fit twice differs in chi^2's last bit, which 200
# unconverged Adam steps through four refits carry to ~2e-4 of a flux); on one thread a fit
# repeats bit for bit, so the two faces must agree to 1e-4.
_LIST_AND_TREE = """
import sys, json, numpy as np, xarray as xr, scarlet2 as sc
hst, hsc, ra, dec = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), json.loads(sys.argv[4])
catalog = xr.Dataset({"ra": ("source", ra), "dec": ("source", dec)})
ds_hst = sc.open_dataset(hst).assign_attrs(name="hst")
ds_hsc = sc.open_dataset(hsc).assign_attrs(name="hsc")
result = sc.fit_dataset([ds_hst, ds_hsc], catalog=catalog, progress=False, max_iter=200)
tree = xr.DataTree.from_dict({"hst": ds_hst, "hsc": ds_hsc})
again = tree.scarlet.fit(catalog=catalog, progress=False, max_iter=200)
np.testing.assert_allclose(again["catalog"]["flux"].values, result["catalog"]["flux"].values, rtol=1e-4)
"""


@pytest.mark.slow
def test_fit_a_list_and_a_datatree_of_observations(stores):
    import json
    import os
    import subprocess
    import sys

    (p_hst, p_hsc), catalog, pair = stores
    ds_hst = sc.open_dataset(p_hst).assign_attrs(name="hst")
    ds_hsc = sc.open_dataset(p_hsc).assign_attrs(name="hsc")
    _check(sc.fit_dataset([ds_hst, ds_hsc], catalog=catalog, progress=False, max_iter=200), pair)
    ra, dec = (json.dumps(catalog[k].values.tolist()) for k in ("ra", "dec"))
    env = {**os.environ, "PJRT_NPROC": "1", "JAX_PLATFORMS": "cpu"}
    child = [sys.executable, "-c", _LIST_AND_TREE, str(p_hst), str(p_hsc), ra, dec]
    out = subprocess.run(child, capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr[-3000:]


def test_cli_fits_several_stores_jointly(stores, tmp_path, capsys):
    (p_hst, p_hsc), _, pair = stores
    out = tmp_path / "joint.zarr"
    plot = tmp_path / "joint.png"
    args = ["fit", str(p_hst), str(p_hsc), "--out", str(out), "--max-iter", "200", "--quiet", "--plot", str(plot)]
    assert main(args) == 0
    assert (tmp_path / "joint_hst.png").stat().st_size > 0 and (tmp_path / "joint_hsc.png").stat().st_size > 0
    assert "jointly" in capsys.readouterr().err
    result = xr.open_datatree(out, engine="zarr")
    _check(result, pair, detected=True)


def test_datatree_nodes_are_the_observations(stores):
    (p_hst, p_hsc), _, _ = stores
    tree = xr.DataTree.from_dict({"hst": sc.open_dataset(p_hst), "deep/hsc": sc.open_dataset(p_hsc)})
    pairs = named_datasets(tree)
    assert [n for n, _ in pairs] == ["hst", "deep/hsc"]
    with pytest.raises(sc.InputError, match="the DataTree holds no observation"):
        named_datasets(xr.DataTree())


def test_a_list_with_repeated_names_is_refused(stores):
    (p_hst, _), catalog, _ = stores
    ds = sc.open_dataset(p_hst).assign_attrs(name="a")
    with pytest.raises(sc.InputError, match=r"distinct names \(attrs\['name'\]\), \['a'\] repeated"):
        sc.fit_dataset([ds, ds], catalog=catalog, progress=False)


def test_a_band_twice_with_different_zero_points_is_refused(stores):
    (p_hst, p_hsc), catalog, _ = stores
    a = sc.open_dataset(p_hsc).assign_attrs(name="epoch1", zero_point=27.0)
    b = sc.open_dataset(p_hsc).assign_attrs(name="epoch2", zero_point=31.4)
    with pytest.raises(
        sc.InputError, match=r"band 'g' is in observations 'epoch1' and 'epoch2' with different zero_point"
    ):
        sc.fit_dataset([a, b], catalog=catalog, progress=False)
