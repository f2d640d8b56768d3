"""The bundled demo region: a simulated 5-band blend with a TAN WCS, made deterministically."""

from __future__ import annotations

from pathlib import Path

import numpy as np

DEMO_SEED = 2024
DEMO_NAME = "demo_region.zarr"


def demo_wcs(shape, ra=150.1163, dec=2.2058, pixel_scale=0.2):
    """A TAN WCS centred on the frame (COSMOS field), ``pixel_scale`` arcsec per pixel."""
    from astropy.wcs import WCS

    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [ra, dec]
    w.wcs.crpix = [shape[1] / 2 + 0.5, shape[0] / 2 + 0.5]
    w.wcs.cdelt = [-pixel_scale / 3600, pixel_scale / 3600]
    return w


def make_demo_dataset(seed: int = DEMO_SEED):
    """The demo observation Dataset (simulated with known truth, stored in attrs)."""
    import json

    from .labeled.schema import from_arrays
    from .simulate import simulate_blend

    sim = simulate_blend(seed, n_galaxies=5, shape=(64, 64))
    ds = from_arrays(
        sim.images,
        variance=sim.variance,
        psf=sim.psfs,
        bands=sim.bands,
        wcs=demo_wcs((64, 64)),
        instrument=f"simulated (scarlet2.simulate, seed {seed})",
        pixel_scale=0.2,
        flux_unit="counts",
    )
    ds.attrs["truth"] = json.dumps({k: np.asarray(v).tolist() for k, v in sim.truth.items()})
    return ds


def demo_path() -> Path:
    """``data/demo_region.zarr`` in the source tree."""
    return Path(__file__).resolve().parents[1] / "data" / DEMO_NAME


def demo_store() -> Path:
    """The path of the demo observation store, wherever scarlet2 is installed: the repository's
    ``data/demo_region.zarr`` in a source checkout, else a copy made on first use in the cache
    folder (``$SCARLET2_CACHE_DIR/..`` or ``~/.cache/scarlet2``), deterministic like the shipped one.
    """
    from .config import default_cache_dir

    shipped = demo_path()
    if (shipped / "zarr.json").exists():
        return shipped
    made = default_cache_dir().parent / DEMO_NAME
    if not (made / "zarr.json").exists():
        write_demo(made)
    return made


def write_demo(path=None) -> Path:
    """(Re)make the demo store; the repository ships the result of this function."""
    import shutil

    from .labeled.store import write_zarr

    path = Path(path or demo_path())
    if path.exists():
        shutil.rmtree(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_zarr(make_demo_dataset(), str(path), mode="w")
    return path


if __name__ == "__main__":
    print(write_demo())
