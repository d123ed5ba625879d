"""The learners' one lifecycle and one container: load, else fit, else refuse; the checks on load."""

import json
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest

import metarl_bench
from metarl_bench.core.agent import CheckpointError, UnsupportedFamilyError
from metarl_bench.core.learner import CONTAINER_FORMAT, RECORD_FILE, RECORD_KEYS, Learner, file_sha256

ENV = "bernoulli-k2-h100"
CHECKPOINTS = Path(metarl_bench.__file__).resolve().parent.parent / "baselines" / "checkpoints"


class CountingLearner(Learner):
    """A learner whose whole state is one number: how many steps it was fitted for."""

    name = "test-counting"
    weights_file = "state.json"

    def __init__(self, family, bias: float = 0.0):
        super().__init__(family, bias=bias)
        self.value = None

    def fit(self, family, budget, seed=0, train_env="", device="cpu", **_):
        self.value, self.trained_on, self.train_steps = float(budget) + self.config["bias"], train_env, int(budget)
        self.curve = [{"steps": budget, "trial_return": 1.0}]
        return {"train_steps": budget, "train_wall_s": 0.0, "checkpoint": ""}

    def default_budget(self):
        return 7

    def weights_bytes(self):
        return json.dumps({"value": self.value}).encode()

    def load_state(self, weights, record, device="cpu"):
        self.value = json.loads(weights)["value"]

    def reset(self, num_trials, rng=None, tasks=None):
        return {}

    def act(self, obs, memory):
        return np.zeros(len(obs["reward"]), dtype=np.int64), memory


@pytest.fixture
def learner(tmp_path, monkeypatch):
    monkeypatch.setattr(CountingLearner, "checkpoint_dir", tmp_path, raising=False)
    return CountingLearner(metarl_bench.make_family(ENV))


def test_missing_checkpoint_is_refused_by_name_unless_a_budget_or_retrain_is_given(learner, tmp_path):
    family = learner.family
    with pytest.raises(UnsupportedFamilyError, match=f"no shipped test-counting checkpoint for '{ENV}'"):
        learner.prepare(family, ENV)
    stats = learner.prepare(family, ENV, budget=5, seed=3)
    assert stats["train_steps"] == 5 and learner.value == 5.0 and learner.train_seed == 3
    assert learner.prepare(family, ENV, retrain=True)["train_steps"] == 7  # the default budget


def test_save_then_prepare_loads_the_container_and_reports_its_hash(learner, tmp_path):
    learner.fit(learner.family, 11, train_env=ENV)
    learner.train_seed = 2
    path = learner.save(learner.checkpoint_path(ENV, 2))
    assert path.name == f"{ENV}__seed2.zip" and not list(tmp_path.glob(".*tmp"))
    with zipfile.ZipFile(path) as zf:
        assert sorted(zf.namelist()) == sorted([RECORD_FILE, "state.json"])
        record = json.loads(zf.read(RECORD_FILE))
    assert set(RECORD_KEYS) <= set(record) and record["format"] == CONTAINER_FORMAT
    assert (record["agent"], record["trained_on"], record["train_seed"], record["train_steps"]) == (
        "test-counting", ENV, 2, 11)
    fresh = CountingLearner(learner.family)
    stats = fresh.prepare(fresh.family, ENV, seed=2)
    assert fresh.value == 11.0 and fresh.train_steps == 11 and fresh.curve == learner.curve
    assert stats["checkpoint"] == path.name and stats["checkpoint_sha256"] == file_sha256(path)
    assert CountingLearner.load(path, learner.family).value == 11.0


def _write(path: Path, record: dict | None, weights: bytes | None, raw: bytes | None = None) -> Path:
    if raw is not None:
        path.write_bytes(raw)
        return path
    with zipfile.ZipFile(path, "w") as zf:
        if record is not None:
            zf.writestr(RECORD_FILE, json.dumps(record))
        if weights is not None:
            zf.writestr("state.json", weights)
    return path


@pytest.mark.parametrize(
    "change, weights, raw, message",
    [
        ({}, None, b"not a zip", "is not a test-counting checkpoint: not a zip file"),
        (None, b"{}", None, "its zip holds no 'record.json'"),
        ({"agent": "rl2"}, b"{}", None, "is a checkpoint of agent 'rl2', not 'test-counting'"),
        ({"format": 1}, b"{}", None, "of format 2 (format 1"),
        ({}, None, None, "holds no 'state.json'"),
        ({"trained_on": "bernoulli-k5-h100"}, b'{"value": 1}', None, "trained on 'bernoulli-k5-h100', not on"),
        ({"spaces": {"num_actions": 5, "obs_shape": [1]}}, b'{"value": 1}', None, "was trained for spaces"),
    ],
    ids=["not-zip", "no-record", "other-agent", "old-format", "no-weights", "other-env", "other-spaces"],
)
def test_a_bad_checkpoint_is_refused_by_name_and_changes_nothing(learner, tmp_path, change, weights, raw, message):
    learner.fit(learner.family, 3, train_env=ENV)
    good = learner.record()
    record = None if change is None else good | change
    path = _write(tmp_path / "bad.zip", record, weights, raw)
    with pytest.raises((CheckpointError, UnsupportedFamilyError), match=re.escape(message)):
        learner.load_weights(path, expect_env=ENV)
    assert learner.value == 3.0 and learner.train_steps == 3


def test_a_missing_file_is_named_as_missing(learner, tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint file"):
        learner.load_weights(tmp_path / "nowhere.zip")


SHIPPED = sorted(p for p in CHECKPOINTS.glob("*/*") if p.suffix != ".md")


def test_every_shipped_checkpoint_is_one_container_with_its_seed_and_distribution():
    assert len(SHIPPED) >= 40
    for path in SHIPPED:
        assert path.suffix == ".zip", f"{path} is not in the container format"
        with zipfile.ZipFile(path) as zf:
            record = json.loads(zf.read(RECORD_FILE))
            assert len(zf.namelist()) == 2
        env, _, seed = path.stem.partition("__seed")
        assert record["agent"] == path.parent.name and record["format"] == CONTAINER_FORMAT
        assert record["trained_on"] == env and record["train_seed"] == int(seed or 0), path
        assert set(RECORD_KEYS) <= set(record)


@pytest.mark.parametrize("agent", ["rl2", "gradient-bandit", "vsml"])
def test_shipped_checkpoints_load_through_the_lifecycle(agent):
    learner = metarl_bench.make_agent(agent, metarl_bench.make_family(ENV))
    stats = learner.prepare(learner.family, ENV)
    path = learner.checkpoint_path(ENV)
    assert stats["checkpoint"] == path.name and stats["checkpoint_sha256"] == file_sha256(path)
    assert learner.trained_on == ENV and learner.train_seed == 0
