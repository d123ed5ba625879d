"""The learning agents' lifecycle: how one gets ready to play (load its checkpoint or meta-train).

``TrainOptions`` are the training flags of a run; ``train_or_load`` hands them to the agent's
``prepare``.  Every caller that readies a learning agent (a sweep's run, the probe, the
aggregates re-measuring a row) goes through here.  ``Learner`` is the base class of the
learning agents: it owns load-or-fit-or-refuse, the checkpoint path and the one checkpoint
container; a learner implements only its fitting and its state.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from metarl_bench.core.agent import Agent, CheckpointError, UnsupportedFamilyError, checkpoint_name
from metarl_bench.core.family import TaskFamily
from metarl_bench.core.registry import get_spec
from metarl_bench.core.version import __version__


@dataclass(frozen=True)
class TrainOptions:
    """How learning agents get ready (ignored by agents that do not learn)."""

    train_env: str | None = None  # None: each run meta-trains on (or loads) its agent's default
    train_steps: int | None = None  # None: the shipped checkpoint (or the agent's default budget)
    train_seed: int = 0
    retrain: bool = False
    save_checkpoint: bool = False
    device: str = "cpu"
    threads: int = 1



def train_or_load(agent: Any, env: str, options: TrainOptions) -> tuple[str, dict[str, Any]]:
    """Let a learning agent load its checkpoint or meta-train, on ``options.train_env`` if given,
    else on the agent's default for ``env``; returns (the training distribution used, its stats)."""
    o = options
    train_env = o.train_env or agent.default_train_env(env, retrain=o.retrain or o.train_steps is not None)
    stats = agent.prepare(
        train_family=get_spec(train_env).make(),
        train_env=train_env,
        budget=o.train_steps,
        seed=o.train_seed,
        retrain=o.retrain,
        device=o.device,
    )
    return train_env, stats


# ============================================================================ the lifecycle
CONTAINER_FORMAT = 2  # 1 was each learner's own file (SB3 zip with a record, torch dict, JSON)
RECORD_FILE = "record.json"
CHECKPOINT_SUFFIX = ".zip"
RECORD_KEYS = ("agent", "format", "config", "trained_on", "train_seed", "train_steps", "version", "spaces", "curve")


class Learner(Agent):
    """A learning agent: one lifecycle (load, else fit, else refuse) and one checkpoint container.

    The container is a zip holding ``record.json`` (agent, config, training distribution and
    seed, budget spent, code version, spaces, learning curve, and the learner's own extras)
    beside the weights in the learner's native form, one member named ``weights_file``
    (SB3's zip, a torch ``state_dict``, JSON).  A subclass implements only:

    * ``fit(family, budget, seed, train_env=..., device=...)``: meta-train, set its state,
      ``trained_on``, ``train_steps`` and ``curve``; return the training stats;
    * ``weights_bytes()`` and ``load_state(weights, record, device)``: its state, out and in
      (``load_state`` raises ``CheckpointError`` naming what does not fit, and changes nothing);
    * optionally ``extra_record()`` (more of its own record), ``default_budget()`` and
      ``fit_options()``.

    The checks on load (a zip of ours, this agent, the expected distribution, the spaces)
    are made here, before ``load_state`` sees anything.
    """

    learns = True
    checkpoint_dir: Path  # the shipped checkpoints of this agent
    weights_file: str = "weights.bin"
    # True for learners whose fit takes seconds (a tuning sweep): a missing checkpoint is fitted
    # instead of refused.
    fit_when_missing: bool = False

    def __init__(self, family: TaskFamily, **config: Any):
        super().__init__(family, **config)
        self.trained_on: str | None = None
        self.train_seed: int | None = None
        self.train_steps = 0
        self.curve: list[dict[str, float]] = []

    # ------------------------------------------------------------------ what subclasses give
    def default_budget(self) -> int:
        """The training budget (env steps) when the user gives none."""
        raise NotImplementedError(f"{type(self).__name__} names no default budget")

    def weights_bytes(self) -> bytes:
        raise NotImplementedError

    def load_state(self, weights: bytes, record: dict[str, Any], device: str = "cpu") -> None:
        raise NotImplementedError

    def extra_record(self) -> dict[str, Any]:
        return {}

    def fit_options(self, train_env: str, seed: int) -> dict[str, Any]:
        """More keyword arguments for ``fit`` when ``prepare`` trains (e.g. where to save periodically)."""
        return {}

    def spaces(self) -> dict[str, Any]:
        """What a checkpoint must match to be played here (the default: the exact spaces)."""
        return {"num_actions": self.family.num_actions, "obs_shape": list(self.family.obs_shape)}

    def check_spaces(self, spaces: dict[str, Any], path: Path) -> None:
        if spaces != self.spaces():
            raise UnsupportedFamilyError(
                f"checkpoint {path} was trained for spaces {spaces}, but {self.family.describe()} has {self.spaces()}"
            )

    # ------------------------------------------------------------------ the lifecycle
    def checkpoint_path(self, train_env: str, seed: int = 0) -> Path:
        return self.checkpoint_dir / checkpoint_name(train_env, seed, CHECKPOINT_SUFFIX)

    def prepare(
        self,
        train_family: TaskFamily,
        train_env: str,
        budget: int | None = None,
        seed: int = 0,
        retrain: bool = False,
        device: str = "cpu",
    ) -> dict[str, Any]:
        """Load the shipped checkpoint for (``train_env``, ``seed``) unless ``retrain`` or a
        ``budget`` is given; else fit; a missing checkpoint is refused (by name) unless fitting
        is cheap (``fit_when_missing``)."""
        path = self.checkpoint_path(train_env, seed)
        if not retrain and budget is None:
            if path.exists():
                self.load_weights(path, expect_env=train_env, device=device)
                return {
                    "train_steps": self.train_steps,
                    "train_wall_s": 0.0,
                    "checkpoint": path.name,
                    "checkpoint_sha256": file_sha256(path),
                }
            if not self.fit_when_missing:
                raise UnsupportedFamilyError(self.missing_checkpoint_message(train_env, path))
        self.train_seed = int(seed)  # before fit: a learner that saves while it trains records its seed
        options = {"train_env": train_env, "device": device, **self.fit_options(train_env, seed)}
        return self.fit(train_family, budget or self.default_budget(), seed, **options)

    def missing_checkpoint_message(self, train_env: str, path: Path) -> str:
        return (
            f"no shipped {self.name} checkpoint for {train_env!r} (looked for {path}); "
            "pass --retrain or --train-steps to train one"
        )

    # ------------------------------------------------------------------ the container
    def record(self) -> dict[str, Any]:
        return {
            "agent": self.name,
            "format": CONTAINER_FORMAT,
            "config": self.config,
            "trained_on": self.trained_on,
            "train_seed": self.train_seed,
            "train_steps": int(self.train_steps),
            "version": __version__,
            "spaces": self.spaces(),
            "curve": self.curve,
            **self.extra_record(),
        }

    def save(self, path: str | Path) -> Path:
        """Write the container atomically (a reader never sees half a checkpoint)."""
        path = Path(path)
        path = path if path.suffix == CHECKPOINT_SUFFIX else path.with_name(path.name + CHECKPOINT_SUFFIX)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_container(path, self.record(), self.weights_file, self.weights_bytes())
        return path

    @classmethod
    def read(cls, path: str | Path) -> tuple[dict[str, Any], bytes]:
        """(record, weights) of a checkpoint of this agent; CheckpointError naming what is wrong."""
        path = Path(path)
        if not path.is_file():
            raise CheckpointError(f"{path}: no such checkpoint file")
        not_ours = f"{path} is not {_article(cls.name)} {cls.name} checkpoint"
        try:
            with zipfile.ZipFile(path) as zf:
                names = set(zf.namelist())
                if RECORD_FILE not in names:
                    raise CheckpointError(f"{not_ours}: its zip holds no {RECORD_FILE!r}")
                record = json.loads(zf.read(RECORD_FILE))
                weights = zf.read(cls.weights_file) if cls.weights_file in names else None
        except zipfile.BadZipFile:
            raise CheckpointError(f"{not_ours}: not a zip file (the container {cls.__name__}.save writes)") from None
        except (OSError, ValueError, EOFError, zipfile.LargeZipFile) as exc:
            if isinstance(exc, CheckpointError):
                raise
            raise CheckpointError(f"{not_ours}: its zip cannot be read ({type(exc).__name__}: {exc})") from None
        if not isinstance(record, dict):
            raise CheckpointError(f"{not_ours}: {RECORD_FILE} is not a JSON object")
        if record.get("agent") != cls.name:
            raise CheckpointError(f"{path} is a checkpoint of agent {record.get('agent')!r}, not {cls.name!r}")
        missing = [k for k in RECORD_KEYS if k not in record]
        if missing or record["format"] != CONTAINER_FORMAT:
            raise CheckpointError(
                f"{not_ours} of format {CONTAINER_FORMAT} (format {record.get('format')!r}, record lacks {missing})"
            )
        if weights is None:
            raise CheckpointError(f"{not_ours}: it holds no {cls.weights_file!r} (the weights)")
        return record, weights

    def load_weights(self, path: str | Path, expect_env: str | None = None, device: str = "cpu") -> None:
        """Take the checkpoint's state; on any error nothing changes."""
        path = Path(path)
        record, weights = self.read(path)
        if expect_env is not None and record["trained_on"] != expect_env:
            raise CheckpointError(f"{path} was trained on {record['trained_on']!r}, not on {expect_env!r}")
        self.check_spaces(record["spaces"], path)
        try:
            self.load_state(weights, record, device)
        except (CheckpointError, UnsupportedFamilyError) as exc:
            raise type(exc)(f"checkpoint {path} {exc}") from None
        self.trained_on, self.train_steps = record["trained_on"], int(record["train_steps"])
        self.train_seed, self.curve = record["train_seed"], list(record["curve"])

    @classmethod
    def load(cls, path: str | Path, family: TaskFamily, expect_env: str | None = None) -> Learner:
        record, _ = cls.read(path)
        try:
            agent = cls(family, **record["config"])
        except (TypeError, ValueError) as exc:
            raise CheckpointError(f"{path} holds a {cls.name} config this version cannot read ({exc})") from None
        agent.load_weights(path, expect_env=expect_env)
        return agent


def _article(name: str) -> str:
    """"an rl2", "a vsml": the article as the letters are spoken."""
    return "an" if name[:1].lower() in "aefhilmnorsx" else "a"


def write_container(path: Path, record: dict[str, Any], weights_file: str, weights: bytes) -> None:
    """The zip of ``record.json`` and the weights, written beside ``path`` and renamed over it."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(RECORD_FILE, json.dumps(record, indent=2, sort_keys=True, default=str))
            zf.writestr(weights_file, weights)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
