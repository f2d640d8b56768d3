"""A small simulated mosaic (GalSim-drawn, with truth) shared by the survey tests."""

import pytest

TILE = 64  # 192 x 192 pixels: 3 x 3 regions


@pytest.fixture(scope="package")
def field():
    pytest.importorskip("galsim", reason="the survey tests draw their mosaic with GalSim (pip install scarlet2[sim])")
    from scarlet2.simulate.field import simulate_field

    return simulate_field((192, 192), seed=5)


@pytest.fixture(scope="package")
def mosaic(field, tmp_path_factory):
    """The field's observation Dataset in a local Zarr store, chunked by tile."""
    path = tmp_path_factory.mktemp("survey") / "field.zarr"
    field.to_zarr(path, chunk=TILE)
    return path


@pytest.fixture(scope="package")
def fitted(mosaic, tmp_path_factory):
    """One in-process run over the 9 regions, with the compilations it made."""
    import jax

    import scarlet2 as sc

    pytest.importorskip("distributed", reason="scarlet2.survey needs dask.distributed (pip install scarlet2[survey])")
    out = tmp_path_factory.mktemp("survey-out") / "fit.zarr"
    compiles = []

    def listener(name, seconds, **kwargs):
        if name == "/jax/core/compile/backend_compile_duration":
            compiles.append(seconds)

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        summary = sc.survey.run(sc.open_dataset(mosaic), out, tile=TILE, workers=0, progress=False)
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
    return out, summary, len(compiles)
