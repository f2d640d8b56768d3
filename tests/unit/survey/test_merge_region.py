"""Two detections on one galaxy end as one catalog row with the galaxy's flux."""

import dataclasses

import numpy as np
import pytest

import scarlet2 as sc
import scarlet2.survey.kernel as kernel
from scarlet2.infer.merge import MERGE_DISTANCE
from scarlet2.labeled.schema import read_window
from scarlet2.survey.driver import regions_of

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


def test_a_doubly_detected_galaxy_is_merged(field, mosaic, monkeypatch):
    ds = sc.open_dataset(mosaic)
    truth = field.truth
    regions = regions_of(ds, tile=64)
    settings = dataclasses.replace(kernel.SurveySettings(), tile=64, halo=regions[0].halo)
    # the brightest isolated galaxy: a second peak one pixel from its own, as detection makes
    # when a neighbour's light leaves a saddle on a compact galaxy
    ok = truth["isolated"].values & (truth["kind"].values == "galaxy")
    t = np.flatnonzero(ok)[np.argmax(truth["snr"].values[ok])]
    ty, tx = truth["y"].values[t], truth["x"].values[t]
    region = next(r for r in regions if r.owns(np.round([[ty, tx]]).astype(int))[0])
    detect = kernel.detect_peaks

    def doubled(obs, *args, **kwargs):
        pos, snr, peaks = detect(obs, *args, **kwargs)
        k = np.argmin(np.hypot(*(peaks + np.asarray(region.origin) - [ty, tx]).T))
        return np.vstack([pos, pos[k] + [0, 1]]), np.append(snr, snr[k] / 2), np.vstack([peaks, peaks[k] + [0, 1]])

    monkeypatch.setattr(kernel, "detect_peaks", doubled)
    y0, y1, x0, x1 = region.outer
    image, weight, psf, bands = read_window(ds, slice(y0, y1), slice(x0, x1))
    result = kernel.fit_region(region, image, weight, psf, bands, sc.get_wcs(ds), settings)
    assert result.record["n_merged"] >= 1
    cat = result.catalog
    d = np.hypot(cat["y"] - ty, cat["x"] - tx)
    assert np.sum(d < 3.0) == 1  # one row for the galaxy
    c = np.stack([cat["y"], cat["x"]], 1)
    pair = np.hypot(*(c[:, None] - c[None]).transpose(2, 0, 1)) + np.eye(len(c)) * 1e9
    assert pair.min() >= MERGE_DISTANCE
    # the galaxy's light in the one row: within 3 of its errors of the truth in every band
    row = np.argmin(d)
    pulls = (cat["flux"][row] - truth["flux"].values[t]) / cat["flux_err"][row]
    assert np.all(np.abs(pulls) < 3), pulls
