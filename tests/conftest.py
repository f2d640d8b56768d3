import os
from pathlib import Path

import numpy as np
import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def shared_file(name: str) -> Path:
    """Path of a reference file in ../shared/data, or skip with the reason."""
    p = SHARED / name
    if not p.exists():
        pytest.skip(f"reference data {p} not present (the ../shared/data folder ships only with the dev setup)")
    return p


@pytest.fixture(scope="session")
def hsc_blend():
    d = np.load(shared_file("hsc_cosmos_35.npz"))
    return {k: d[k] for k in d.files}


def pytest_configure(config):
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
