"""Per-task scores of leaderboard rows, measured again from each row's own agent and kept
under ``results/tasks/`` (index: ``results/tasks/index.csv``).

The leaderboard holds per-distribution means only, so the aggregates need the held-out
tasks' returns again: the row's agent (its checkpoint, for learning agents: never retrained)
plays the row's held-out tasks and seeds through the evaluator's own ``rollout``, with its
common random numbers.  The recomputed mean return must equal the row's ``return`` (to the 6
digits the CSV keeps) or the data are not the row's (``mismatch``).  Stored data are reused
while their row is the newest; delete the folder to measure everything again.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from metarl_bench.evaluation.score import score_of_gain
from metarl_bench.records.csvfile import Schema, read_csv
from metarl_bench.reporting.aggregate_files import OK, atomic_csv, filled

TASKS_DIR = "tasks"
TASKS_INDEX = "index.csv"
RETURN_RTOL = 2e-5  # the leaderboard keeps 6 significant digits
INDEX_COLUMNS = ["env", "agent", "train_env", "train_seed", "run_id", "n_tasks", "seeds", "file", "references",
                 "status", "note", "return", "row_return", "score", "row_score"]  # fmt: skip
INDEX_SCHEMA = Schema(
    "per-task index",
    tuple(INDEX_COLUMNS),
    numeric=frozenset(["n_tasks", "return", "row_return", "score", "row_score"]),
    required=frozenset(["env", "agent", "run_id", "status"]),
)


@dataclass
class TaskScores:
    """One leaderboard row's per-task data: returns on its held-out tasks and the references."""

    status: str  # ok, or why not: mismatch, no-checkpoint, error
    note: str = ""
    returns: np.ndarray | None = None
    random: np.ndarray | None = None
    bayes: np.ndarray | None = None

    def paired(self) -> tuple[np.ndarray, np.ndarray]:
        """Per task: (return - random, bayes - random), what the bootstrap resamples together."""
        return self.returns - self.random, self.bayes - self.random

    def scores(self) -> np.ndarray:
        """100 (return - random) / (bayes - random) per task, the references as the
        distribution's means (the mean of these is the row's score)."""
        return score_of_gain(self.returns - self.random, float(self.bayes.mean() - self.random.mean()))


def _stem(row: pd.Series) -> str:
    return str(row["agent"]) + (f"__{row['train_env']}__seed{row['train_seed']}" if row["train_seed"] != "" else "")


def _settings_stem(row: pd.Series) -> str:
    return f"references__{int(row['n_tasks'])}tasks__seeds{str(row['seeds']).replace(';', '-')}"


def measure(row: pd.Series) -> TaskScores:
    """Play the row's agent again on the row's held-out tasks and seeds (never training it)."""
    from metarl_bench.core.agent import UnsupportedFamilyError
    from metarl_bench.core.learner import TrainOptions, train_or_load
    from metarl_bench.core.registry import get_spec, make_agent
    from metarl_bench.evaluation.evaluate import EvalSettings, held_out_tasks, references, rollout
    from metarl_bench.records.row import env_spec_json

    env = str(row["env"])
    family = get_spec(env).make()
    if filled(row["env_spec"]) and json.loads(row["env_spec"]) != json.loads(env_spec_json(env, family.params)):
        return TaskScores("mismatch", f"{env} is registered with other parameters than the row's env_spec")
    settings = EvalSettings(n_tasks=int(row["n_tasks"]), seeds=tuple(int(s) for s in str(row["seeds"]).split(";")))
    agent = make_agent(str(row["agent"]), family)
    if agent.learns:
        seed = int(row["train_seed"])
        path = agent.checkpoint_path(row["train_env"], seed)
        if not path.exists():  # never train here: the row's own agent or nothing
            return TaskScores("no-checkpoint", f"no checkpoint {path.name} for {row['agent']} (training seed {seed})")
        options = TrainOptions(train_env=row["train_env"], train_seed=seed, retrain=False, device="cpu", threads=1)
        try:
            train_or_load(agent, env, options)
        except (UnsupportedFamilyError, ValueError, RuntimeError) as exc:
            return TaskScores("error", f"loading {path.name}: {exc}")
    refs = references(env, settings)
    if refs.bayes is None:
        return TaskScores("mismatch", f"{env} declares no Bayes reference: no score")
    returns = rollout(agent, env, family, held_out_tasks(env, family, settings), settings).task_returns
    return TaskScores(OK, "", returns, np.asarray(refs.random, float), np.asarray(refs.bayes, float))


def _check(row: pd.Series, data: TaskScores) -> TaskScores:
    """The recomputed mean return (and score) must be the row's, else the data are not its run."""
    if data.status != OK:
        return data
    got, want = float(data.returns.mean()), float(row["return"])
    if not math.isclose(got, want, rel_tol=RETURN_RTOL, abs_tol=1e-9):
        return TaskScores("mismatch", f"recomputed mean return {got:.6g} is not the row's {want:.6g}")
    score = float(data.scores().mean())
    if filled(row["score"]) and not math.isclose(score, float(row["score"]), rel_tol=1e-4, abs_tol=1e-3):
        return TaskScores("mismatch", f"recomputed score {score:.6g} is not the row's {float(row['score']):.6g}")
    return data


class TaskStore:
    """``results/tasks/``: per-task returns of leaderboard rows, keyed by the row's run_id."""

    def __init__(self, results: Path):
        self.folder = results / TASKS_DIR
        index = read_csv(self.folder / TASKS_INDEX, INDEX_SCHEMA)  # empty if absent
        # read as text: a seed is a name here ("" for agents that do not learn), not a number
        self.index = index.astype(object).where(index.notna(), "")
        self.index["train_seed"] = [str(int(float(s))) if s != "" else "" for s in self.index["train_seed"]]

    def _entry(self, row: pd.Series) -> pd.Series | None:
        hits = self.index[self.index["run_id"] == row["run_id"]]
        return hits.iloc[-1] if len(hits) else None

    def _load(self, row: pd.Series) -> TaskScores | None:
        """The stored data of this very row, if they are there and still match it."""
        entry = self._entry(row)
        if entry is None:
            return None
        if entry["status"] != OK:
            return TaskScores(str(entry["status"]), str(entry["note"]))
        try:
            returns = pd.read_csv(self.folder / row["env"] / entry["file"])["return"].to_numpy(float)
            refs = pd.read_csv(self.folder / row["env"] / entry["references"])
        except (OSError, KeyError, ValueError, pd.errors.ParserError):
            return None  # a damaged or missing file is measured again
        if not len(returns) == len(refs) == int(row["n_tasks"]):
            return None
        data = _check(row, TaskScores(OK, "", returns, refs["random_return"].to_numpy(float),
                                      refs["bayes_return"].to_numpy(float)))  # fmt: skip
        return data if data.status == OK else None  # files that no longer match their row: measured again

    def get(self, row: pd.Series, log: Callable[[str], None] = print) -> TaskScores:
        """The row's per-task data: stored if measured for this very row, else measured now and stored."""
        found = self._load(row)
        if found is not None:
            return found
        log(
            f"measuring per-task returns: {row['agent']} on {row['env']}"
            + (f" (trained on {row['train_env']}, seed {row['train_seed']})" if row["train_seed"] != "" else "")
        )
        data = _check(row, measure(row))
        self._store(row, data)
        if data.status != OK:
            return data
        # the numbers used are the files' (rounded as stored), so a later run from the files agrees
        return self._load(row) or TaskScores("mismatch", "the stored per-task returns do not read back")

    def _store(self, row: pd.Series, data: TaskScores) -> None:
        folder = self.folder / row["env"]
        folder.mkdir(parents=True, exist_ok=True)
        file, refs_file = f"{_stem(row)}.csv", f"{_settings_stem(row)}.csv"
        entry = {c: row.get(c, "") for c in ("env", "agent", "train_env", "train_seed", "run_id", "n_tasks", "seeds")}
        entry |= {"file": "", "references": "", "status": data.status, "note": data.note, "return": np.nan,
                  "row_return": row["return"], "score": np.nan, "row_score": row["score"]}  # fmt: skip
        if data.status == OK:
            atomic_csv(pd.DataFrame({"task": np.arange(len(data.returns)), "return": data.returns}), folder / file,
                        "%.10g")  # fmt: skip
            refs = pd.DataFrame({"task": np.arange(len(data.random)), "random_return": data.random,
                                 "bayes_return": data.bayes})  # fmt: skip
            atomic_csv(refs, folder / refs_file, "%.10g")
            entry |= {"file": file, "references": refs_file, "return": float(data.returns.mean()),
                      "score": float(data.scores().mean())}  # fmt: skip
        same = (self.index["env"] == row["env"]) & (self.index["agent"] == row["agent"]) & (
            self.index["train_env"].astype(str) == str(row["train_env"])) & (
            self.index["train_seed"].astype(str) == str(row["train_seed"]))  # fmt: skip
        self.index = pd.concat([self.index[~same], pd.DataFrame([entry], columns=INDEX_COLUMNS)], ignore_index=True)
        self.index = self.index.sort_values(["env", "agent", "train_env", "train_seed"], kind="stable")
        atomic_csv(self.index, self.folder / TASKS_INDEX, "%.6g", INDEX_SCHEMA.numeric)

