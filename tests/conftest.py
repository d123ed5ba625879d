import numpy as np
import pytest


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


@pytest.fixture(autouse=True)
def _private_partial_checkpoints(tmp_path_factory, monkeypatch):
    """Trainings in tests save as they go into a folder of the session, never the machine's temp
    folder: a stale partial checkpoint of another run must not be resumed."""
    monkeypatch.setenv("METARL_BENCH_PARTIAL", str(tmp_path_factory.getbasetemp() / "partial"))
