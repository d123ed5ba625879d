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
from metarl_bench.core.training import TrainOptions

ENV = "bernoulli-k2-h100"
CHECKPOINTS = Path(metarl_bench.__file__).resolve().parent.parent / "baselines" / "checkpoints"


class CountingLearner(Learner):
    """A learner whose whole state is one number: how many steps it was fitted for."""

    name = "test-counting"
    weights_file = "state.json"

    def __init__(self, family, bias: float = 0.0):
        super().__init__(family, bias=bias)
        self.value = None

    def train(self, family, budget, run, **_):
        """Counts up to ``budget``, one curve point per step; a resumed run counts on from where it was."""
        done = self.train_steps if run.resume else 0
        stop = getattr(self, "stop_after", None)  # a stop (SIGTERM, a lost machine) after a save
        points = [{"steps": s, "trial_return": 1.0} for s in range(done + 1, (stop or budget) + 1)]
        self.curve = (self.curve if run.resume else []) + points
        if stop is not None:
            self.value, self.trained_on, self.train_steps = float(stop), run.train_env, stop
            self.save(run.save_path)
            raise KeyboardInterrupt
        self.value, self.trained_on, self.train_steps = float(budget) + self.config["bias"], run.train_env, int(budget)
        self.runs = getattr(self, "runs", []) + [(done, budget)]
        if run.save_path is not None:
            self.save(run.save_path)
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
    monkeypatch.setenv("METARL_BENCH_PARTIAL", str(tmp_path / "partial"))
    return CountingLearner(metarl_bench.make_family(ENV))


def test_missing_checkpoint_is_refused_by_name_unless_a_budget_or_retrain_is_given(learner, tmp_path):
    family = learner.family
    with pytest.raises(UnsupportedFamilyError, match=f"no shipped test-counting checkpoint for '{ENV}'"):
        learner.prepare(family, ENV)
    stats = learner.prepare(family, ENV, TrainOptions(train_steps=5, train_seed=3))
    assert stats["train_steps"] == 5 and learner.value == 5.0 and learner.train_seed == 3
    assert learner.prepare(family, ENV, TrainOptions(retrain=True))["train_steps"] == 7  # the default budget


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
    stats = fresh.prepare(fresh.family, ENV, TrainOptions(train_seed=2))
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


def test_a_checkpoint_trained_with_other_settings_is_refused_not_reused(learner, tmp_path):
    learner.fit(learner.family, 4, train_env=ENV)
    learner.save(learner.checkpoint_path(ENV))
    other = CountingLearner(learner.family, bias=0.5)
    refused = r"trained with other test-counting settings \(bias: trained with 0.0, asked for 0.5\)"
    with pytest.raises(CheckpointError, match=refused):
        other.prepare(other.family, ENV)
    assert other.value is None
    assert CountingLearner(learner.family).prepare(learner.family, ENV)["train_steps"] == 4  # the same settings load


def test_resume_continues_the_partial_checkpoint_and_its_record_says_from_where(learner, tmp_path):
    family = learner.family
    learner.stop_after = 3
    with pytest.raises(KeyboardInterrupt):
        learner.prepare(family, ENV, TrainOptions(train_steps=8, train_seed=1))  # stopped at 3, its last save
    partial = learner.partial_path(ENV, 1)
    assert partial.is_file() and partial.parent.parent == tmp_path / "partial"
    resumed = CountingLearner(family)
    stats = resumed.prepare(family, ENV, TrainOptions(train_steps=8, train_seed=1, resume=True))
    assert resumed.runs == [(3, 8)] and resumed.train_steps == 8 and stats["train_steps"] == 8
    assert [p["steps"] for p in resumed.curve] == list(range(1, 9))  # the curve continues
    assert stats["resumed_from"] == [{"path": str(partial), "train_steps": 3}]
    record, _ = CountingLearner.read(partial)
    assert record["resumed_from"] == [{"path": str(partial), "train_steps": 3}] and record["train_steps"] == 8


def test_resume_without_a_partial_checkpoint_or_of_a_rerun_learner_trains_afresh_and_says_so(
    learner, monkeypatch, capsys
):
    stats = learner.prepare(learner.family, ENV, TrainOptions(train_steps=3, resume=True))
    assert learner.runs == [(0, 3)] and "resumed_from" not in stats
    assert "has no partial checkpoint at" in capsys.readouterr().err
    monkeypatch.setattr(CountingLearner, "resumable", False)
    again = CountingLearner(learner.family)
    again.prepare(learner.family, ENV, TrainOptions(train_steps=3, resume=True))  # a partial of 3 exists now
    assert again.runs == [(0, 3)] and "is rerun, not resumed" in capsys.readouterr().err
    monkeypatch.setattr(CountingLearner, "resumable", True)
    other_budget = CountingLearner(learner.family)
    other_budget.prepare(learner.family, ENV, TrainOptions(train_steps=9, resume=True))
    assert other_budget.runs == [(0, 9)]
    assert "of a training of 3 env steps, not 9; training from the start" in capsys.readouterr().err


def test_a_partial_checkpoint_of_other_settings_is_not_resumed(learner):
    learner.stop_after = 3
    with pytest.raises(KeyboardInterrupt):
        learner.prepare(learner.family, ENV, TrainOptions(train_steps=6))
    other = CountingLearner(learner.family, bias=1.0)
    with pytest.raises(CheckpointError, match="trained with other test-counting settings"):
        other.prepare(other.family, ENV, TrainOptions(train_steps=6, resume=True))


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


@pytest.mark.parametrize("path", SHIPPED, ids=[f"{p.parent.name}/{p.stem}" for p in SHIPPED])
def test_every_shipped_checkpoint_is_played_by_the_default_agent_of_its_distribution(path):
    """No shipped checkpoint is refused as trained with other settings than the defaults that play it."""
    env, _, seed = path.stem.partition("__seed")
    learner = metarl_bench.make_agent(path.parent.name, metarl_bench.make_family(env))
    stats = learner.prepare(learner.family, env, TrainOptions(train_seed=int(seed or 0)))
    assert stats["checkpoint"] == path.name
