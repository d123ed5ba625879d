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
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from metarl_bench.core.agent import Agent, CheckpointError, UnsupportedFamilyError, checkpoint_name
from metarl_bench.core.family import TaskFamily
from metarl_bench.core.registry import get_spec
from metarl_bench.core.training import TrainOptions
from metarl_bench.core.version import __version__


def train_or_load(agent: Any, env: str, options: TrainOptions) -> tuple[str, dict[str, Any]]:
    """Let a learning agent load its checkpoint or meta-train, on ``options.train_env`` if given,
    else on the agent's default for ``env``; returns (the training distribution used, its stats)."""
    if options.checkpoint is not None:  # the file says where it was trained
        stats = agent.prepare(agent.family, options.train_env or env, options)
        return stats.get("trained_on", ""), stats
    train_env = options.train_env or agent.default_train_env(env, retrain=options.trains)
    return train_env, agent.prepare(get_spec(train_env).make(), train_env, options)


# ============================================================================ the lifecycle
@dataclass(frozen=True)
class FitRun:
    """One meta-training run as a learner's ``train`` sees it (``Learner.fit`` fills it)."""

    train_env: str  # the training distribution's name (the family's description when unnamed)
    seed: int
    progress: bool = True
    device: str = "cpu"
    save_path: Path | None = None  # saved here every few updates and at the end (None: nowhere)
    resume: bool = False  # continue the state taken from a partial checkpoint (budget counts in all)


def partial_folder() -> Path:
    """Where trainings started from the command line save as they go (``--resume`` reads them):
    ``$METARL_BENCH_PARTIAL`` or the temp folder, never the package."""
    # "metarl-bench-partial", not "metarl_bench": a folder of the package's name would shadow it for
    # Python started in the temp folder
    return Path(os.environ.get("METARL_BENCH_PARTIAL") or Path(tempfile.gettempdir()) / "metarl-bench-partial")


# Settings that change how a trained agent plays, not what it learnt: a checkpoint is reused across them.
PLAY_SETTINGS = frozenset({"deterministic"})

CONTAINER_FORMAT = 2  # 1 was each learner's own file (SB3 zip with a record, torch dict, JSON)
RECORD_FILE = "record.json"
CHECKPOINT_SUFFIX = ".zip"
RECORD_KEYS = ("agent", "format", "config", "trained_on", "train_seed", "train_steps", "version", "spaces", "curve")
# Beside them, a resumed training's record names what it continued: {"path", "train_steps"} per resume.
RESUMED_KEY = "resumed_from"
TARGET_KEY = "target_steps"  # the budget of the training that saved the checkpoint


class Learner(Agent):
    """A learning agent: one lifecycle (load, else fit, else refuse) and one checkpoint container.

    The container is a zip holding ``record.json`` (agent, config, training distribution and
    seed, budget spent, code version, spaces, learning curve, and the learner's own extras)
    beside the weights in the learner's native form, one member named ``weights_file``
    (SB3's zip, a torch ``state_dict``, JSON).  A subclass implements only:

    * ``train(family, budget, run: FitRun)``: meta-train (``fit`` is the public entry), set its
      state, ``trained_on``, ``train_steps`` and ``curve``, save to ``run.save_path`` as it goes,
      continue its state when ``run.resume``; return the training stats;
    * ``weights_bytes()`` and ``load_state(weights, record, device)``: its state, out and in
      (``load_state`` raises ``CheckpointError`` naming what does not fit, and changes nothing);
    * optionally ``extra_record()``, ``default_budget()``, ``budget_unit()``, ``config_class``,
      ``load_file()`` (a foreign format for ``--checkpoint``) and ``comparable_settings()``.

    The checks on load (a zip of ours, this agent, the expected distribution, the spaces, the
    settings it was trained with) are made here, before ``load_state`` sees anything.
    """

    learns = True
    checkpoint_dir: Path  # the shipped checkpoints of this agent
    weights_file: str = "weights.bin"
    # True for learners whose fit takes seconds (a tuning sweep): a missing checkpoint is fitted
    # instead of refused.
    fit_when_missing: bool = False
    resumable = True  # False for learners that fit in minutes: --resume reruns them

    def __init__(self, family: TaskFamily, **config: Any):
        super().__init__(family, **config)
        self.trained_on: str | None = None
        self.train_seed: int | None = None
        self.resumed: list[dict[str, Any]] = []  # the partial checkpoints this training continued
        self.target_steps: int | None = None  # the budget of the current (or last) training
        self.train_steps = 0
        self.curve: list[dict[str, float]] = []

    def fit(
        self,
        family: TaskFamily,
        budget: int,
        seed: int | None = 0,
        train_env: str = "",
        progress: bool = True,
        device: str = "cpu",
        save_path: str | Path | None = None,
        resume: bool = False,
        **extra: Any,
    ) -> dict[str, Any]:
        """Meta-train on tasks of ``family`` (the ``train_env`` training stream of ``seed``) for
        ``budget`` env steps; ``extra`` goes to the learner's own ``train`` (e.g. callbacks)."""
        seed = 0 if seed is None else int(seed)
        self.train_seed, self.target_steps = seed, int(budget)  # before training: saves as it goes record them
        save = None if save_path is None else Path(save_path)
        run = FitRun(train_env or family.describe(), seed, progress, str(device), save, resume)
        return self.train(family, int(budget), run, **extra)

    # ------------------------------------------------------------------ what subclasses give
    def budget_unit(self, family: TaskFamily) -> tuple[int, str]:
        """(env steps, name) of the smallest piece of training on ``family``: a budget below it
        trains nothing, and the command line says what a budget buys in these units."""
        return 1, "env step"

    def default_budget(self) -> int:
        """The training budget (env steps) when the user gives none."""
        raise NotImplementedError(f"{type(self).__name__} names no default budget")

    def weights_bytes(self) -> bytes:
        raise NotImplementedError

    def load_state(self, weights: bytes, record: dict[str, Any], device: str = "cpu") -> None:
        raise NotImplementedError

    def extra_record(self) -> dict[str, Any]:
        return {}

    def train(self, family: TaskFamily, budget: int, run: FitRun, **extra: Any) -> dict[str, Any]:
        """Meta-train for ``budget`` env steps in all (a resumed learner has ``train_steps`` of
        them done already): set the state, ``trained_on``, ``train_steps`` and ``curve``; save to
        ``run.save_path`` as it goes, if given; return the training stats."""
        raise NotImplementedError

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

    def partial_path(self, train_env: str, seed: int = 0, folder: Path | None = None) -> Path:
        """The checkpoint a command-line training saves as it goes (``--resume`` continues it)."""
        name = checkpoint_name(train_env, seed, ".partial" + CHECKPOINT_SUFFIX)
        return (folder or partial_folder()) / self.name / name

    def prepare(self, train_family: TaskFamily, train_env: str, options: TrainOptions | None = None) -> dict[str, Any]:
        """Load the shipped checkpoint for (``train_env``, seed) unless ``options`` ask for
        training; else fit (saving to ``partial_path`` as it goes), or continue the partial
        checkpoint with ``options.resume``; a missing checkpoint is refused (by name) unless
        fitting is cheap (``fit_when_missing``)."""
        options = options or TrainOptions()
        seed, device = options.train_seed, options.device
        if options.checkpoint is not None:
            return self.play_file(Path(options.checkpoint), device)
        path = self.checkpoint_path(train_env, seed)
        if not options.trains:
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
        partial = self.partial_path(train_env, seed, options.partial_dir)
        budget = options.train_steps or self.default_budget()
        if options.resume:
            self.resume_if_stopped(partial, train_env, budget, device)
        partial.parent.mkdir(parents=True, exist_ok=True)
        stats = self.fit(
            train_family, budget, seed, train_env=train_env, device=device, save_path=partial, resume=options.resume
        )
        return {**stats, **({RESUMED_KEY: self.resumed} if self.resumed else {})}

    def play_file(self, path: Path, device: str = "cpu") -> dict[str, Any]:
        """Take the state of the checkpoint file ``path`` (``--checkpoint``), wherever it was trained;
        its distribution and seed come from its record.  Learners that read a foreign format
        (an sb3-contrib zip for rl2) override ``load_file``."""
        self.load_file(path, device)
        return {
            "train_steps": self.train_steps,
            "train_wall_s": 0.0,
            "checkpoint": str(path),
            "checkpoint_sha256": file_sha256(path),
            "trained_on": self.trained_on or "",
            "train_seed": self.train_seed,
        }

    def load_file(self, path: Path, device: str = "cpu") -> None:
        """Our container at ``path``, played with the settings it was trained with (its record's),
        checked as on every load (agent, spaces)."""
        if not path.is_file():
            raise CheckpointError(f"--checkpoint {path}: no such file")
        self.__dict__.update(type(self).load(path, self.family, device=device).__dict__)

    def resume_if_stopped(self, partial: Path, train_env: str, budget: int, device: str = "cpu") -> bool:
        """Take the state of the partial checkpoint a stopped training of ``budget`` env steps
        left, to continue it; without one (or one of another budget, or for a learner that is
        rerun, not resumed) the training starts afresh, and says so.  A partial checkpoint of
        other settings is refused (CheckpointError)."""
        why = ""
        if not self.resumable:
            why = "is rerun, not resumed"
        elif not partial.is_file():
            why = f"has no partial checkpoint at {partial}"
        elif (target := self.read(partial)[0].get(TARGET_KEY)) != budget:
            why = f"has a partial checkpoint at {partial} of a training of {target} env steps, not {budget}"
        if why:
            print(f"resume: {self.name} on {train_env} {why}; training from the start", file=sys.stderr)
            return False
        self.load_weights(partial, expect_env=train_env, device=device)
        self.resumed = [*self.resumed, {"path": str(partial), "train_steps": int(self.train_steps)}]
        print(f"resume: {self.name} on {train_env} continues {partial} at {self.train_steps} steps", file=sys.stderr)
        return True

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
            **({RESUMED_KEY: self.resumed} if self.resumed else {}),
            **({TARGET_KEY: self.target_steps} if self.target_steps is not None else {}),
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
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise CheckpointError(f"{not_ours}: its {RECORD_FILE!r} is not JSON") from None
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
        self.check_config(record["config"], path)
        try:
            self.load_state(weights, record, device)
        except (CheckpointError, UnsupportedFamilyError) as exc:
            raise type(exc)(f"checkpoint {path} {exc}") from None
        self.trained_on, self.train_steps = record["trained_on"], int(record["train_steps"])
        self.train_seed, self.curve = record["train_seed"], list(record["curve"])
        self.resumed = list(record.get(RESUMED_KEY) or [])

    def comparable_settings(self, config: dict[str, Any]) -> dict[str, Any]:
        """The settings that decide what a training learns, as JSON reads them back: the config
        but ``PLAY_SETTINGS``.  A learner whose config holds a budget drops it here."""
        return {k: v for k, v in _plain(config).items() if k not in PLAY_SETTINGS}

    def check_config(self, trained_with: dict[str, Any], path: Path) -> None:
        """Refuse a checkpoint trained with other settings than this agent's (a checkpoint is
        never silently played under settings it was not trained with); ``PLAY_SETTINGS`` may differ,
        and a setting the checkpoint does not name (added since, with a default that keeps the old
        behaviour) is not compared."""
        ours, theirs = self.comparable_settings(self.config), self.comparable_settings(trained_with)
        differ = sorted(k for k in set(ours) & set(theirs) if ours[k] != theirs[k])
        if differ:
            shown = ", ".join(f"{k}: trained with {theirs.get(k)!r}, asked for {ours.get(k)!r}" for k in differ[:4])
            raise CheckpointError(
                f"{path} was trained with other {self.name} settings ({shown}); "
                "pass --retrain (or --train-steps) to train one with these settings"
            )

    @classmethod
    def load(cls, path: str | Path, family: TaskFamily, expect_env: str | None = None, device: str = "cpu") -> Learner:
        record, _ = cls.read(path)
        try:
            agent = cls(family, **record["config"])
        except (TypeError, ValueError) as exc:
            raise CheckpointError(f"{path} holds a {cls.name} config this version cannot read ({exc})") from None
        agent.load_weights(path, expect_env=expect_env, device=device)
        return agent


def _plain(config: dict[str, Any]) -> dict[str, Any]:
    """A config as its JSON would read back (tuples as lists), so saved and live configs compare."""
    return json.loads(json.dumps(config, sort_keys=True, default=str))


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
