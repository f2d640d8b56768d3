"""Scene storage: Zarr round trips without pickle, stores from before the layered layout, and
hostile or damaged stores refused before anything is built or run."""

import json
import shutil
from pathlib import Path

import numpy as np
import numpyro.distributions as dist
import pytest
import xarray as xr
import zarr

import scarlet2 as sc
from scarlet2.labeled.serialize import scene_from_json, scene_to_json

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


def _scene():
    with sc.Scene(sc.Frame(["a", "b"], (20, 20))) as scene:
        sc.Source(
            (10, 10),
            spectrum=sc.Parameter(np.ones(2), "positive", prior=dist.LogNormal(0.0, 1.0)),
            morphology=sc.Spergel(0.3, 2.0, q=0.7, angle=0.4),
        )
    return scene


def test_scene_storage_is_pickle_free(tmp_path):
    scene = _scene()
    sc.save_scene(scene, str(tmp_path / "s.zarr"))
    back = sc.load_scene(str(tmp_path / "s.zarr"))
    p = back.sources[0].components[0].spectrum
    assert isinstance(p.prior, dist.LogNormal) and float(p.log_prior()) == pytest.approx(
        float(scene.sources[0].components[0].spectrum.log_prior())
    )
    structure = json.loads(scene_to_json(scene)[0])
    assert structure["format"] == "scarlet2-scene/2"
    assert structure["scene"]["__class__"] == "Scene"  # a registered name, not a module path


def test_store_written_before_the_layered_layout_loads_and_renders_the_same():
    """tests/fixtures/scene_v0.1.0.zarr was written by scarlet2 0.1.0 (flat modules, format /1,
    dotted class paths); its render through a Moffat observation was saved beside it by that
    version."""
    scene = sc.load_scene(str(FIXTURES / "scene_v0.1.0.zarr"))
    kinds = [type(s).__name__ for s in scene.sources]
    assert kinds == ["Background", "Source", "PointSource", "Source", "Source", "Source"]
    assert isinstance(scene.frame.psf, sc.MoffatPSF) and scene.frame.wcs is not None
    assert isinstance(scene.sources[1].components[1].spectrum.prior, dist.LogNormal)
    assert scene.sources[3].components[0].spectrum.share == "sed"
    psf = np.asarray(sc.MoffatPSF(2.5, 3.0).image((15, 15), n_bands=2))
    obs = sc.Observation(np.zeros((2, 21, 25)), weights=np.ones((2, 21, 25)), psf=psf, bands=["g", "r"])
    expected = np.load(FIXTURES / "scene_v0.1.0_render.npy")
    np.testing.assert_allclose(np.asarray(sc.render(scene, obs)), expected, atol=1e-5 * np.abs(expected).max())


def _hostile(entry, fmt="scarlet2-scene/1"):
    return json.dumps({"format": fmt, "scene": entry})


@pytest.mark.parametrize(
    "entry",
    [
        # names that scarlet2's modules merely import: a dotted-path resolver reached them
        {"__class__": "scarlet2.cli._rmtree", "fields": {}},
        {"__class__": "scarlet2.cli.Path", "fields": {}},
        {"__class__": "scarlet2.demo.write_demo", "fields": {}},
        {"__class__": "scarlet2.cli.main", "fields": {}},
        {"__class__": "os.system", "fields": {}},
        # prefix tricks and dunder names
        {"__class__": "scarlet2.morphology.Sersic.__init__", "fields": {}},
        {"__class__": "scarlet2.morphologyX.Sersic", "fields": {}},
        {"__class__": "scarlet2.labeled.store.shutil", "fields": {}},
        {"__class__": "__builtins__", "fields": {}},
        {"__class__": "Sersic.__class__", "fields": {}},
        {"__class__": "scarlet2.model.morphology.Sersic", "fields": {}},  # the new path: names only
        {"__dist__": "numpyro.distributions.util.jax", "args": {}},
        {"__dist__": "numpyro.distributions.continuous.Normal.__new__", "args": {}},
        {"__dist__": "numpyro.distributions.Delta", "args": {}},
        {"__dist__": "numpyro.distributions.util.Normal", "args": {}},  # not Normal's own module
    ],
)
def test_hostile_scene_entries_are_refused_and_nothing_runs(entry, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "keep.txt").write_text("still here")
    (tmp_path / "folder").mkdir()
    with pytest.raises(sc.StoreError, match=r"refusing to build .* \(entry scene\)"):
        scene_from_json(_hostile(entry), {})
    with pytest.raises(sc.StoreError, match="refusing to build"):
        scene_from_json(_hostile(entry, "scarlet2-scene/2"), {})
    assert (tmp_path / "keep.txt").read_text() == "still here" and (tmp_path / "folder").is_dir()


@pytest.mark.parametrize(
    "entry, message",
    [
        ({"__class__": "Sersic", "fields": {"n": 1.0}}, r"entry scene \(Sersic\) has fields \['n'\], expected"),
        (
            {"__class__": "Real", "fields": {"__class__": "os.system"}},
            r"entry scene \(Real\) has fields \['__class__'\], expected \[\]",
        ),
        ({"__class__": "Real", "fields": "rm -rf"}, r"entry scene \(Real\) has fields str"),
        ({"__dist__": "Normal", "args": {"loc": 0.0, "validate_args": True}}, r"arguments outside"),
        ({"__dist__": "Normal", "args": {"loc": "os.system", "scale": 1.0}}, "must be numbers or arrays"),
        ({"__array__": "a0"}, r"array 'a0' of entry scene is missing from the store"),
        ({"__tuple__": "abc"}, "should be a list"),
        ({"__wcs__": 12}, "not a FITS header"),
        ({"__lambda__": "x"}, r"unrecognised scene entry scene with keys \['__lambda__'\]"),
    ],
)
def test_malformed_scene_entries_are_refused(entry, message):
    with pytest.raises(sc.StoreError, match=message):
        scene_from_json(_hostile(entry, "scarlet2-scene/2"), {})


@pytest.mark.parametrize(
    "text, message",
    [
        ("{not json", "not valid JSON"),
        ('{"format": "pickle/1", "scene": null}', r"format 'pickle/1'"),
        ('["scarlet2-scene/2"]', "format None"),
        ('{"format": "scarlet2-scene/2", "scene": ' + "[" * 5000 + "]" * 5000 + "}", "nested too deeply|not valid"),
    ],
)
def test_unreadable_structures_are_refused(text, message):
    with pytest.raises(sc.StoreError, match=message):
        scene_from_json(text, {})


def _store_with_structure(path, structure, arrays=None):
    ds = xr.Dataset({k: (tuple(f"{k}_{i}" for i in range(np.ndim(v))), v) for k, v in (arrays or {}).items()})
    ds.attrs["structure"] = structure
    sc.write_zarr(ds, str(path))


def test_hostile_store_on_disk_runs_nothing(tmp_path, monkeypatch):
    """The three tampered stores of the audit, as Zarr stores loaded with load_scene."""
    work = tmp_path / "cwd"
    work.mkdir()
    (work / "data.txt").write_text("precious")
    monkeypatch.chdir(work)
    for k, name in enumerate(["scarlet2.cli._rmtree", "scarlet2.demo.write_demo", "scarlet2.cli.main"]):
        store = tmp_path / f"evil{k}.zarr"
        entry = {"__class__": name, "fields": {"p": {"__class__": "scarlet2.cli.Path", "fields": {}}}}
        _store_with_structure(store, _hostile(entry))
        with pytest.raises(sc.StoreError, match=rf"evil{k}\.zarr: refusing to build '{name}'"):
            sc.load_scene(str(store))
    assert (work / "data.txt").read_text() == "precious"


def test_absurd_array_shape_is_refused_before_reading(tmp_path):
    scene = _scene()
    path = tmp_path / "big.zarr"
    sc.save_scene(scene, str(path))
    group = zarr.open_group(str(path), mode="a")
    group.create_array("huge", shape=(10**6, 10**6), chunks=(1000, 1000), dtype="f4")  # metadata only
    with pytest.raises(
        sc.StoreError, match=r"big\.zarr: scene array 'huge' of shape \(1000000, 1000000\) is too large"
    ):
        sc.load_scene(str(path))


def test_missing_chunk_is_refused_not_rendered_as_nan(tmp_path):
    scene = _scene()
    path = tmp_path / "damaged.zarr"
    sc.save_scene(scene, str(path))
    chunks = sorted(p for p in path.rglob("c/*") if p.is_file())
    victim = chunks[0]
    name = victim.relative_to(path).parts[0]
    victim.unlink()
    with pytest.raises(sc.StoreError, match=rf"damaged\.zarr: scene array '{name}' has 1 of its 1 chunks missing"):
        sc.load_scene(str(path))


def test_garbage_metadata_names_the_store(tmp_path):
    path = tmp_path / "garbage.zarr"
    sc.save_scene(_scene(), str(path))
    (path / "zarr.json").write_text("{ this is not json")
    with pytest.raises(sc.StoreError, match=r"garbage\.zarr: not a readable Zarr group"):
        sc.load_scene(str(path))


def test_missing_store_is_a_file_not_found_error(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nowhere\.zarr"):
        sc.load_scene(str(tmp_path / "nowhere.zarr"))


def test_non_finite_scene_array_is_refused(tmp_path):
    text, arrays = scene_to_json(_scene())
    key = next(iter(arrays))
    arrays[key] = np.asarray(arrays[key], np.float32).copy()
    arrays[key].flat[0] = np.nan  # what a format /1 store with a missing float chunk reads as
    path = tmp_path / "nan.zarr"
    _store_with_structure(path, text, arrays)
    with pytest.raises(sc.StoreError, match=rf"nan\.zarr: scene array '{key}' has \d+ non-finite values"):
        sc.load_scene(str(path))


def test_chunks_equal_to_the_fill_value_are_written(tmp_path):
    """An origin at pixel (0, 0) and a zero sky are the arrays' fill values: still stored, so a
    missing chunk is always damage, never a legitimate zero."""
    with sc.Scene(sc.Frame(["a", "b"], (20, 20))) as scene:
        sc.Background(np.zeros(2))
        sc.PointSource((0.0, 0.0), spectrum=np.ones(2))
    sc.save_scene(scene, str(tmp_path / "z.zarr"))
    back = sc.load_scene(str(tmp_path / "z.zarr"))
    assert np.all(np.asarray(back.sources[1].origin) == 0)
    assert np.all(np.asarray(back.sources[0].spectrum.value) == 0)


def test_copy_of_a_good_store_still_loads(tmp_path):
    path = tmp_path / "a.zarr"
    sc.save_scene(_scene(), str(path))
    shutil.copytree(path, tmp_path / "b.zarr")
    assert len(sc.load_scene(str(tmp_path / "b.zarr")).sources) == 1
