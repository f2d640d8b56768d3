"""fit_dataset merges two detections of one galaxy, and never drops a catalogue's source."""

import numpy as np
import pytest

import scarlet2.labeled.results as results
from scarlet2.labeled.catalog import catalog_dataset

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


@pytest.fixture(scope="module")
def blend():
    pytest.importorskip("galsim", reason="the blend is drawn with GalSim (pip install scarlet2[sim])")
    from scarlet2.simulate.galsim_blend import simulate_galsim_blend

    return simulate_galsim_blend(2, n_sources=3, kinds={"sersic": 1.0})


def _rows_near(result, yx, radius=3.0):
    cat = result.scarlet.catalog
    return np.flatnonzero(np.hypot(cat["y"].values - yx[0], cat["x"].values - yx[1]) < radius)


def test_a_doubled_detection_becomes_one_source(blend, monkeypatch):
    truth = blend.truth
    t = int(np.argmax(truth["snr"].values))
    yx = blend.positions[t]
    detect = results.detect_peaks

    def doubled(obs, *args, **kwargs):  # a second peak one pixel from the galaxy's own
        pos, *rest = detect(obs, *args, **kwargs)
        k = np.argmin(np.hypot(*(pos - yx).T))
        return (np.vstack([pos, pos[k] + [0.0, 1.0]]), *rest)

    monkeypatch.setattr(results, "detect_peaks", doubled)
    kwargs = dict(progress=False, free_form=False, residual_detection=False, select_points=False)
    result = blend.dataset.scarlet.fit(**kwargs)
    assert result["fit"].attrs["merged"] == 1
    rows = _rows_near(result, yx)
    assert len(rows) == 1
    flux = result.scarlet.catalog["flux"].values[rows[0]]
    assert np.all(np.abs(flux / truth["flux"].values[t] - 1) < 0.1), flux / truth["flux"].values[t]


def test_catalogue_rows_all_stay(blend):
    yx = blend.positions[0]
    cat = catalog_dataset(np.vstack([blend.positions, yx + [0.0, 0.8]]))
    kwargs = dict(progress=False, free_form=False, residual_detection=False, select_points=False)
    result = blend.dataset.scarlet.fit(catalog=cat, **kwargs)
    assert result["fit"].attrs["merged"] == 0
    assert result.scarlet.catalog.sizes["source"] == len(blend.positions) + 1
