"""Suite aggregates: the interquartile mean (IQM) and the mean of scores over a suite's
distributions, with stratified bootstrap CIs, and performance profiles.

    python -m metarl_bench.leaderboard --aggregate                      # every registered suite
    python -m metarl_bench.leaderboard --aggregate --env bandits,bernoulli-k2-h100+bernoulli-dependent-k2-h100

``--env`` names *sets* of distributions: a suite, one distribution, or several joined by
``+`` (a set of its own, e.g. the distributions a training-seed study covers).

**Contestants.**  In each set, an agent is what ``python -m metarl_bench.run --agent A --env
<set>`` plays: per distribution, the newest leaderboard row of the agent meta-trained on its
default training distribution for it (``Agent.default_train_env``; VSML plays the Bernoulli
bandits from its 2-armed checkpoint), one contestant per training seed.  A contestant that
lacks a row on some distribution of the set is reported ``incomplete`` with the missing
distributions named, and gets no numbers: never an average over fewer distributions.

**Per-task scores.**  The leaderboard holds per-distribution means only, so the held-out
tasks' returns are measured again: the row's agent (its checkpoint, for learning agents:
never retrained) plays the row's held-out tasks and seeds through the evaluator's own
``rollout``, with its common random numbers.  The recomputed mean return must equal the
row's ``return`` (to the 6 digits the CSV keeps) or the contestant is ``unreproduced``.
The returns are stored under ``results/tasks/`` (index: ``results/tasks/index.csv``) and
reused while the row is the newest; delete the folder to measure everything again.
A task's score is ``100 (return - random) / (bayes - random)``, the references being the
distribution's mean returns on its held-out tasks (one normalisation per distribution, as
rliable normalises per game), so the mean of a distribution's task scores is exactly the
leaderboard's score.

**Intervals.**  IQM: the mean of the middle 50% of all task scores of the set (the
distributions' tasks pooled, as rliable's ``aggregate_iqm``); mean: the mean of the
distributions' scores.  95% percentile CIs from a stratified bootstrap (rliable's
convention: tasks resampled with replacement within each distribution, 2000 resamples,
seed 0).  Unlike rliable's external human/random scores, our references are measured on
the same tasks, so each resample re-takes the mean references over its own tasks (paired,
as every CI of the suite, ``metarl_bench.evaluation.stats``): on one distribution the mean's CI is the
leaderboard's score CI.  They hold the trained agent fixed: they are *evaluation* intervals.  Where two or
more training seeds of an agent are complete, a ``training-seeds`` row gives the mean of
the per-seed estimates and their range (min to max) across training seeds: the spread
that retraining adds.

Why not the ``rliable`` package: rliable 1.2.0 installs, but importing it fails with the
project's pins: its dependency ``arch`` (<8; 7.2.0 resolves) calls pandas' ``deprecate_kwarg``
with its pre-3.0 signature, and ``pandas>=2.0`` resolves to pandas 3.  The few lines it
would do (stratified resampling, trimmed mean, percentile interval) are numpy and scipy here.

Outputs: ``results/aggregates.csv`` (rows of the sets computed replace their old rows),
``results/profiles.csv`` (performance profiles: the fraction of the set's distributions on
which a contestant scores >= tau, with a stratified bootstrap band) and
``results/profiles/<set>.png``.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import trim_mean

from metarl_bench.evaluation.stats import BOOTSTRAP_RESAMPLES, CONFIDENCE
from metarl_bench.records.csvfile import Schema, read_csv
from metarl_bench.reporting import leaderboard

AGGREGATES_FILE = "aggregates.csv"
PROFILES_FILE = "profiles.csv"
PROFILES_DIR = "profiles"
TASKS_DIR = "tasks"
TASKS_INDEX = "index.csv"
BOOTSTRAP_SEED = 0
IQM_CUT = 0.25  # trimmed from each end: the interquartile mean
RETURN_RTOL = 2e-5  # the leaderboard keeps 6 significant digits
EVALUATION, TRAINING_SEEDS = "evaluation", "training-seeds"
OK, INCOMPLETE, UNREPRODUCED = "ok", "incomplete", "unreproduced"
EVAL_INTERVAL = (f"95% stratified bootstrap over held-out tasks (resampled within each distribution; "
                 f"{BOOTSTRAP_RESAMPLES} resamples, seed {BOOTSTRAP_SEED}); training held fixed")  # fmt: skip

AGGREGATE_COLUMNS = [
    "suite", "distributions", "excluded", "agent", "role", "kind", "train_seed", "train_envs", "status", "missing",
    "note", "n_distributions", "n_tasks",
    "iqm", "iqm_ci_low", "iqm_ci_high", "mean", "mean_ci_low", "mean_ci_high",
    "n_train_seeds", "train_seeds", "iqm_seed_min", "iqm_seed_max", "mean_seed_min", "mean_seed_max",
    "interval", "run_ids", "command",
]  # fmt: skip
AGGREGATE_SCHEMA = Schema(
    "aggregates",
    tuple(AGGREGATE_COLUMNS),
    numeric=frozenset(
        [
            "n_distributions",
            "n_tasks",
            "iqm",
            "iqm_ci_low",
            "iqm_ci_high",
            "mean",
            "mean_ci_low",
            "mean_ci_high",
            "n_train_seeds",
            "iqm_seed_min",
            "iqm_seed_max",
            "mean_seed_min",
            "mean_seed_max",
        ]
    ),  # fmt: skip
    required=frozenset(["suite", "agent", "kind", "status"]),
)
PROFILE_COLUMNS = ["suite", "agent", "role", "train_seed", "tau", "fraction", "fraction_ci_low", "fraction_ci_high"]
PROFILE_SCHEMA = Schema(
    "profiles",
    tuple(PROFILE_COLUMNS),
    numeric=frozenset(["tau", "fraction", "fraction_ci_low", "fraction_ci_high"]),
    required=frozenset(["suite", "agent", "tau", "fraction"]),
)
INDEX_COLUMNS = ["env", "agent", "train_env", "train_seed", "run_id", "n_tasks", "seeds", "file", "references",
                 "status", "note", "return", "row_return", "score", "row_score"]  # fmt: skip
INDEX_SCHEMA = Schema(
    "per-task index",
    tuple(INDEX_COLUMNS),
    numeric=frozenset(["n_tasks", "return", "row_return", "score", "row_score"]),
    required=frozenset(["env", "agent", "run_id", "status"]),
)


class AggregateError(ValueError):
    """Bad input to the aggregates: an unknown set name, a results folder that does not fit."""


# ============================================================================ which rows
def train_seeds(df: pd.DataFrame) -> pd.Series:
    """The training seed of each row as text ("" for agents that do not learn).

    The ``train_seed`` column where filled; rows written before it existed take the seed
    from ``run_config``, then from the checkpoint's name (``<env>__seed<N>``), else 0:
    the first shipped checkpoints are seed 0."""
    out = []
    for seed, train_env, config, checkpoint in zip(
        df["train_seed"], df["train_env"], df["run_config"], df["checkpoint"], strict=True
    ):
        if _filled(seed):
            out.append(str(int(float(seed))))
        elif not _filled(train_env):
            out.append("")
        else:
            found = _config_seed(config)
            if found is None:
                match = re.search(r"__seed(\d+)\.", str(checkpoint)) if _filled(checkpoint) else None
                found = int(match.group(1)) if match else 0
            out.append(str(found))
    return pd.Series(out, index=df.index, dtype="object")


def _filled(value: Any) -> bool:
    return not (value is None or (isinstance(value, float) and math.isnan(value)) or str(value) == "")


def _config_seed(config: Any) -> int | None:
    try:
        seed = json.loads(config).get("train_seed") if _filled(config) else None
    except (ValueError, AttributeError):
        return None
    return int(seed) if isinstance(seed, (int, float)) else None


def current_rows(df: pd.DataFrame) -> pd.DataFrame:
    """The newest row per (agent, train_env, training seed, env), the seed made explicit
    (older seed-0 rows carry no ``train_seed``; see :func:`train_seeds`)."""
    df = df.assign(train_seed=train_seeds(df), train_env=df["train_env"].astype("string").fillna("").astype(object))
    return leaderboard.newest(df)


@lru_cache(maxsize=512)
def default_train_env(agent: str, env: str) -> str:
    """The distribution ``agent`` is meta-trained on when it plays ``env`` by default ("" if it does not learn)."""
    from metarl_bench.core.registry import get_agent_factory, get_spec, make_agent

    try:
        if not getattr(get_agent_factory(agent), "learns", False):
            return ""
        return make_agent(agent, get_spec(env).make()).default_train_env(env)
    except Exception:  # an agent that cannot be built for env has no row on it either
        return env


# ============================================================================ sets of distributions
def parse_sets(expr: str | None) -> list[tuple[str, list[str]]]:
    """``--env`` of the aggregates: comma list of suites, distributions, or ``a+b`` sets;
    None: every registered suite.  AggregateError naming what is allowed otherwise."""
    from metarl_bench.core.registry import list_families, list_suites

    suites, families = list_suites(), list_families()
    if not expr:
        return [(s, list_families(s)) for s in suites]
    sets = []
    for item in (p.strip() for p in expr.split(",")):
        if not item:
            continue
        if item in suites:
            sets.append((item, list_families(item)))
            continue
        names = [n.strip() for n in item.split("+")]
        unknown = [n for n in names if n not in families]
        if unknown:
            raise AggregateError(
                f"unknown suite or distribution {unknown[0]!r} in --env {item!r}; suites: {', '.join(suites)}; "
                f"distributions: {', '.join(families)} (join distributions with '+' to make a set)"
            )
        sets.append(("+".join(dict.fromkeys(names)), list(dict.fromkeys(names))))
    if not sets:
        raise AggregateError("--env names no suite or distribution")
    return list(dict(sets).items())


# ============================================================================ per-task data
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
        gap = float(self.bayes.mean() - self.random.mean())
        return 100.0 * (self.returns - self.random) / gap


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
    if _filled(row["env_spec"]) and json.loads(row["env_spec"]) != json.loads(env_spec_json(env, family.params)):
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
    if _filled(row["score"]) and not math.isclose(score, float(row["score"]), rel_tol=1e-4, abs_tol=1e-3):
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
            _atomic_csv(pd.DataFrame({"task": np.arange(len(data.returns)), "return": data.returns}), folder / file,
                        "%.10g")  # fmt: skip
            refs = pd.DataFrame({"task": np.arange(len(data.random)), "random_return": data.random,
                                 "bayes_return": data.bayes})  # fmt: skip
            _atomic_csv(refs, folder / refs_file, "%.10g")
            entry |= {"file": file, "references": refs_file, "return": float(data.returns.mean()),
                      "score": float(data.scores().mean())}  # fmt: skip
        same = (self.index["env"] == row["env"]) & (self.index["agent"] == row["agent"]) & (
            self.index["train_env"].astype(str) == str(row["train_env"])) & (
            self.index["train_seed"].astype(str) == str(row["train_seed"]))  # fmt: skip
        self.index = pd.concat([self.index[~same], pd.DataFrame([entry], columns=INDEX_COLUMNS)], ignore_index=True)
        self.index = self.index.sort_values(["env", "agent", "train_env", "train_seed"], kind="stable")
        _atomic_csv(self.index, self.folder / TASKS_INDEX, "%.6g", INDEX_SCHEMA.numeric)


def _atomic_csv(df: pd.DataFrame, path: Path, float_format: str, numeric: frozenset[str] = frozenset()) -> None:
    """Write ``df`` so that a reader sees the old file or the new one, never half of one;
    ``numeric`` columns as numbers in ``float_format`` (merged frames hold them as objects)."""
    df = df.assign(**{c: pd.to_numeric(df[c], errors="coerce") for c in numeric if c in df.columns})
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".csv", dir=path.parent)
    try:
        with os.fdopen(fd, "w", newline="") as f:
            df.to_csv(f, index=False, float_format=float_format, lineterminator="\n")
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# ============================================================================ the statistics
@dataclass
class Estimate:
    """IQM and mean of one contestant over one set, with their bootstrap intervals and profile."""

    iqm: float
    iqm_ci: tuple[float, float]
    mean: float
    mean_ci: tuple[float, float]
    taus: np.ndarray = field(default_factory=lambda: np.zeros(0))
    profile: np.ndarray = field(default_factory=lambda: np.zeros(0))
    profile_ci: tuple[np.ndarray, np.ndarray] = field(default_factory=lambda: (np.zeros(0), np.zeros(0)))


def iqm(scores: Sequence[np.ndarray], axis: int = -1) -> np.ndarray:
    """Interquartile mean of all task scores of the set, pooled (rliable's ``aggregate_iqm``)."""
    return trim_mean(np.concatenate(scores, axis=axis), IQM_CUT, axis=axis)


def stratified_bootstrap(
    tasks: Sequence[tuple[np.ndarray, np.ndarray]],
    taus: np.ndarray,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
    chunk: int = 250,
) -> Estimate:
    """IQM, mean of distribution scores, and the performance profile over ``taus``, with 95%
    percentile intervals from resampling tasks with replacement *within* each distribution.

    ``tasks`` holds per distribution the per-task ``(gain, gap)``: return - random and
    bayes - random.  A task's score is ``100 gain / mean(gap)``; in each resample the mean gap
    is that of the resampled tasks (paired, as every CI of the suite: the references move with
    their tasks), so a distribution's resampled mean score is its paired score on the resample."""
    tasks = [(np.asarray(g, float), np.asarray(d, float)) for g, d in tasks]
    rng = np.random.default_rng(seed)
    iqms, means, profiles = [], [], []
    for start in range(0, resamples, chunk):  # chunks: a few MB at a time whatever the set's size
        r = min(chunk, resamples - start)
        parts = []
        for gain, gap in tasks:
            idx = rng.integers(0, len(gain), size=(r, len(gain)))
            parts.append(100.0 * gain[idx] / gap[idx].mean(axis=1, keepdims=True))
        dist_means = np.stack([p.mean(axis=1) for p in parts], axis=1)  # (r, distributions)
        iqms.append(iqm(parts, axis=1))
        means.append(dist_means.mean(axis=1))
        profiles.append((dist_means[:, :, None] >= taus[None, None, :]).mean(axis=1))
    q = [(1 - CONFIDENCE) / 2 * 100, (1 + CONFIDENCE) / 2 * 100]
    iqm_lo, iqm_hi = np.percentile(np.concatenate(iqms), q)
    mean_lo, mean_hi = np.percentile(np.concatenate(means), q)
    prof_lo, prof_hi = np.percentile(np.concatenate(profiles), q, axis=0)
    scores = [100.0 * gain / gap.mean() for gain, gap in tasks]
    point_means = np.array([s.mean() for s in scores])
    return Estimate(
        iqm=float(iqm(scores)),
        iqm_ci=(float(iqm_lo), float(iqm_hi)),
        mean=float(point_means.mean()),
        mean_ci=(float(mean_lo), float(mean_hi)),
        taus=taus,
        profile=(point_means[:, None] >= taus[None, :]).mean(axis=0),
        profile_ci=(prof_lo, prof_hi),
    )


def tau_grid(values: Sequence[float]) -> np.ndarray:
    """Thresholds of the performance profile: every whole score from below 0 to above the best."""
    values = [v for v in values if np.isfinite(v)]
    low = min([0.0, *values]) - 5
    high = max([100.0, *values]) + 5
    return np.arange(math.floor(low), math.ceil(high) + 1, 1.0)


# ============================================================================ one set
@dataclass
class Contestant:
    agent: str
    train_seed: str  # "" for agents that do not learn
    rows: dict[str, pd.Series]  # distribution -> its newest row
    missing: list[str]


def contestants(rows: pd.DataFrame, envs: list[str], agents: list[str] | None = None) -> list[Contestant]:
    """Every (agent, training seed) with a row on some distribution of ``envs``; per distribution
    the row of the agent's default training distribution (see the module docstring)."""
    rows = rows[rows["env"].isin(envs)]
    if agents is not None:
        rows = rows[rows["agent"].isin(agents)]
    found = []
    for agent in sorted(rows["agent"].unique()):
        mine = rows[rows["agent"] == agent]
        for seed in sorted(mine["train_seed"].unique(), key=lambda s: (s != "", int(s) if s != "" else 0)):
            chosen, missing = {}, []
            for env in envs:
                hit = mine[(mine["env"] == env) & (mine["train_seed"] == seed)]
                if seed != "":
                    hit = hit[hit["train_env"] == default_train_env(agent, env)]
                if len(hit):
                    chosen[env] = hit.iloc[-1]
                else:
                    missing.append(env)
            if chosen:
                found.append(Contestant(agent, seed, chosen, missing))
    return found


def scored_envs(rows: pd.DataFrame, envs: list[str]) -> tuple[list[str], list[str]]:
    """(the set's distributions that are aggregated, those excluded for every contestant because
    their rows carry no score: no Bayes reference, or none told from random play).  A
    distribution without any row stays in: every contestant then lacks it (incomplete)."""
    excluded = [e for e in envs if (rows["env"] == e).any() and rows.loc[rows["env"] == e, "score"].isna().all()]
    return [e for e in envs if e not in excluded], excluded


def aggregate_set(
    name: str,
    envs: list[str],
    rows: pd.DataFrame,
    store: TaskStore,
    agents: list[str] | None = None,
    command: str = "",
    log: Callable[[str], None] = print,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The aggregate rows and profile rows of one set of distributions."""
    from metarl_bench.reporting.plots import reference_agents

    scored, excluded = scored_envs(rows, envs)
    refs = reference_agents(rows["agent"].unique())
    base = {"suite": name, "distributions": ";".join(scored), "excluded": ";".join(excluded), "command": command}
    out, profiles, estimates = [], [], {}
    entries = contestants(rows, scored, agents)
    for c in entries:
        rec = dict.fromkeys(AGGREGATE_COLUMNS, "") | base
        rec |= {"agent": c.agent, "role": "reference" if c.agent in refs else "agent", "kind": EVALUATION,
                "train_seed": c.train_seed, "n_distributions": len(scored),
                "train_envs": ";".join(str(c.rows[e]["train_env"]) if e in c.rows else "" for e in scored)
                if c.train_seed != "" else "",
                "run_ids": ";".join(str(c.rows[e]["run_id"]) for e in scored if e in c.rows)}  # fmt: skip
        if c.missing:
            rec |= {"status": INCOMPLETE, "missing": ";".join(c.missing),
                    "note": f"no row on {len(c.missing)} of {len(scored)} distributions: not aggregated"}  # fmt: skip
            out.append(rec)
            continue
        data = {e: store.get(c.rows[e], log) for e in scored}
        bad = {e: d for e, d in data.items() if d.status != OK}
        if bad:
            rec |= {"status": UNREPRODUCED, "note": "; ".join(f"{e}: {d.status}: {d.note}" for e, d in bad.items())}
            out.append(rec)
            continue
        estimates[(c.agent, c.train_seed)] = [data[e].paired() for e in scored]
        rec |= {"status": OK, "n_tasks": int(c.rows[scored[0]]["n_tasks"]),
                "interval": EVAL_INTERVAL}  # fmt: skip
        out.append(rec)
    taus = tau_grid([100.0 * g.mean() / d.mean() for pairs in estimates.values() for g, d in pairs])
    for rec in out:
        key = (rec["agent"], rec["train_seed"])
        if rec["status"] != OK:
            continue
        est = stratified_bootstrap(estimates[key], taus)
        rec |= {"iqm": est.iqm, "iqm_ci_low": est.iqm_ci[0], "iqm_ci_high": est.iqm_ci[1], "mean": est.mean,
                "mean_ci_low": est.mean_ci[0], "mean_ci_high": est.mean_ci[1]}  # fmt: skip
        profiles += [
            {"suite": name, "agent": rec["agent"], "role": rec["role"], "train_seed": rec["train_seed"], "tau": t,
             "fraction": f, "fraction_ci_low": lo, "fraction_ci_high": hi}
            for t, f, lo, hi in zip(est.taus, est.profile, *est.profile_ci, strict=True)
        ]  # fmt: skip
    out += _seed_rows(out, base)
    return out, profiles


def _seed_rows(rows: list[dict[str, Any]], base: dict[str, Any]) -> list[dict[str, Any]]:
    """One ``training-seeds`` row per agent with two or more complete training seeds."""
    extra = []
    for agent in dict.fromkeys(r["agent"] for r in rows):
        done = [r for r in rows if r["agent"] == agent and r["train_seed"] != "" and r["status"] == OK]
        if len(done) < 2:
            continue
        iqms, means = [r["iqm"] for r in done], [r["mean"] for r in done]
        rec = dict.fromkeys(AGGREGATE_COLUMNS, "") | base
        rec |= {"agent": agent, "role": done[0]["role"], "kind": TRAINING_SEEDS, "status": OK,
                "train_seed": ";".join(r["train_seed"] for r in done), "n_distributions": done[0]["n_distributions"],
                "n_tasks": done[0]["n_tasks"], "train_envs": done[0]["train_envs"],
                "iqm": float(np.mean(iqms)), "mean": float(np.mean(means)), "n_train_seeds": len(done),
                "train_seeds": ";".join(r["train_seed"] for r in done),
                "iqm_seed_min": min(iqms), "iqm_seed_max": max(iqms),
                "mean_seed_min": min(means), "mean_seed_max": max(means),
                "interval": f"range (min to max) over {len(done)} training seeds of the per-seed estimates; "
                            "iqm and mean are their average",
                "run_ids": ";".join(r["run_ids"] for r in done)}  # fmt: skip
        extra.append(rec)
    return extra


# ============================================================================ files and the command
def seed_text(values: pd.Series) -> pd.Series:
    """Training seeds as text, as the files mean them: "" (does not learn), "1", or "0;1;2"."""

    def one(v: Any) -> str:
        if not _filled(v):
            return ""
        return str(int(v)) if isinstance(v, (int, float, np.number)) else str(v)

    return values.map(one).astype(object)


def read_aggregates(path: str | Path) -> pd.DataFrame:
    """``aggregates.csv`` (empty if absent); CSVSchemaError if a line does not fit."""
    df = read_csv(path, AGGREGATE_SCHEMA)
    return df.assign(train_seed=seed_text(df["train_seed"]), train_seeds=seed_text(df["train_seeds"]))


def read_profiles(path: str | Path) -> pd.DataFrame:
    """``profiles.csv`` (empty if absent); CSVSchemaError if a line does not fit."""
    df = read_csv(path, PROFILE_SCHEMA)
    return df.assign(train_seed=seed_text(df["train_seed"]))


def _merge(old: pd.DataFrame, new: pd.DataFrame, sets: list[str], agents: set[str], keys: list[str]) -> pd.DataFrame:
    """``new`` replaces the rows of ``old`` of the sets and agents just computed (an agent that
    lost its rows loses its old aggregate too); the others stay.  Sorted, so files diff well."""
    gone = old["suite"].astype(str).isin(sets) & old["agent"].astype(str).isin(agents)
    frames = [f.astype(object) for f in (old[~gone], new) if len(f)]
    merged = pd.concat(frames, ignore_index=True) if frames else new
    return merged.sort_values(keys, key=lambda c: c.astype(str), kind="stable").reset_index(drop=True)


def plot_profiles(
    profiles: pd.DataFrame, suite: str, path: str | Path, universe: Sequence[str] | None = None
) -> Path | None:
    """The performance profile of one set: fraction of its distributions with score >= tau,
    one line per complete contestant (its stratified bootstrap band shaded); the references
    (Bayes, oracle, random) in black and grey, as in the curve plots."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from metarl_bench.reporting.plots import REFERENCE_STYLES, agent_styles, reference_kind

    sub = profiles[profiles["suite"] == suite]
    if sub.empty:
        return None
    styles = {kind: (colour, dashes, width) for kind, _, colour, dashes, width in REFERENCE_STYLES}
    fig, ax = plt.subplots(figsize=(8.6, 4))
    keys = list(dict.fromkeys(zip(sub["agent"], sub["train_seed"], strict=True)))
    keys.sort(key=lambda k: (reference_kind(k[0]) is not None, k))  # contestants first, then the references
    everyone = profiles["agent"] if universe is None else universe  # colours agree across the sets' figures
    colours = agent_styles([a for a, _ in keys if reference_kind(a) is None],
                           [a for a in everyone if reference_kind(a) is None])  # fmt: skip
    for agent, seed in keys:
        line = sub[(sub["agent"] == agent) & (sub["train_seed"] == seed)]
        label = agent + (f" (training seed {seed})" if seed else "")
        kind = reference_kind(agent)
        if kind is None:
            style = dict(colours[agent])
            if seed not in ("", "0"):  # further training seeds: the agent's colour, other dashes
                style["ls"] = (0, (3, 1.5)) if int(seed) % 2 else (0, (1, 1))
            ax.fill_between(line["tau"], line["fraction_ci_low"], line["fraction_ci_high"], step="post",
                            color=style["color"], alpha=0.15, lw=0)  # fmt: skip
            ax.step(line["tau"], line["fraction"], where="post", lw=1.4, label=label, **style)
        else:
            colour, dashes, width = styles[kind]
            ax.step(line["tau"], line["fraction"], where="post", color=colour, ls=dashes, lw=width,
                    label=f"{label} (reference)")  # fmt: skip
    ax.set_xlabel("score threshold τ (0 = random play, 100 = Bayes-optimal)")
    ax.set_ylabel("fraction of distributions with score ≥ τ")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(f"performance profile: {suite} (shaded: 95% stratified bootstrap over tasks)", fontsize=9)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, frameon=False)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def profile_png(suite: str) -> str:
    """The file name of a set's profile figure (``+`` kept: sets of distributions are named by it)."""
    return f"{suite}.png"


def aggregate(
    results: Path, sets: list[tuple[str, list[str]]], agents: list[str] | None = None, command: str = "",
    log: Callable[[str], None] = print,
) -> pd.DataFrame:  # fmt: skip
    """Compute the sets' aggregates (measuring per-task data where needed), merge them into
    ``aggregates.csv`` and ``profiles.csv``, draw the profiles; returns the new rows."""
    rows = current_rows(leaderboard.read(results / leaderboard.LEADERBOARD_FILE))
    if any(getattr(_factory(a), "learns", False) for a in rows["agent"].unique()):
        import torch

        torch.set_num_threads(1)  # small models; the other core may be busy
    store = TaskStore(results)
    new, profiles = [], []
    for name, envs in sets:
        recs, prof = aggregate_set(name, envs, rows, store, agents, command, log)
        new += recs
        profiles += prof
    new_df = pd.DataFrame(new, columns=AGGREGATE_COLUMNS)
    prof_df = pd.DataFrame(profiles, columns=PROFILE_COLUMNS)
    names, who = [n for n, _ in sets], set(agents or rows["agent"].unique())
    merged = _merge(read_aggregates(results / AGGREGATES_FILE), new_df, names, who,
                    ["suite", "agent", "kind", "train_seed"])  # fmt: skip
    merged_prof = _merge(read_profiles(results / PROFILES_FILE), prof_df, names, who, ["suite", "agent", "train_seed"])
    _atomic_csv(merged, results / AGGREGATES_FILE, "%.6g", AGGREGATE_SCHEMA.numeric)
    _atomic_csv(merged_prof, results / PROFILES_FILE, "%.6g", PROFILE_SCHEMA.numeric)
    merged_prof = read_profiles(results / PROFILES_FILE)  # draw what the file says
    for name, _ in sets:
        out = results / PROFILES_DIR / profile_png(name)
        if plot_profiles(merged_prof, name, out) is None:
            out.unlink(missing_ok=True)
    return new_df


def _factory(agent: str) -> Any:
    from metarl_bench.core.registry import UnknownNameError, get_agent_factory

    try:
        return get_agent_factory(agent)
    except (UnknownNameError, ImportError):
        return None


def _ci(v: Any, lo: Any, hi: Any) -> str:
    if not _filled(v):
        return ""
    return f"{float(v):.1f}" + (f" [{float(lo):.1f}, {float(hi):.1f}]" if _filled(lo) else "")


def format_table(df: pd.DataFrame) -> str:
    """The aggregates as text: one line per contestant, then the training-seed spreads."""
    if df.empty:
        return "(no rows)"
    shown = pd.DataFrame({
        "suite": df["suite"], "agent": df["agent"], "kind": df["kind"], "seed": df["train_seed"],
        "status": df["status"],
        "IQM [95% CI]": [_ci(*v) for v in zip(df["iqm"], df["iqm_ci_low"], df["iqm_ci_high"], strict=True)],
        "mean [95% CI]": [_ci(*v) for v in zip(df["mean"], df["mean_ci_low"], df["mean_ci_high"], strict=True)],
        "training-seed range": [
            "" if r["kind"] != TRAINING_SEEDS else
            f"IQM {float(r['iqm_seed_min']):.1f}..{float(r['iqm_seed_max']):.1f}, "
            f"mean {float(r['mean_seed_min']):.1f}..{float(r['mean_seed_max']):.1f}"
            for _, r in df.iterrows()
        ],
        "missing": df["missing"],
    })  # fmt: skip
    if not shown["IQM [95% CI]"].str.len().any():
        shown = shown.drop(columns=["IQM [95% CI]", "mean [95% CI]"])
    return shown.to_string(index=False)


def check_inputs(folder: Path) -> None:
    """Refuse, before any work, a results folder the aggregates cannot use (AggregateError or
    CSVSchemaError naming the file): no leaderboard, or a damaged file we would overwrite."""
    if not folder.is_dir():
        raise AggregateError(f"--results {str(folder)!r} is not a folder")
    if not (folder / leaderboard.LEADERBOARD_FILE).is_file():
        raise AggregateError(f"{folder / leaderboard.LEADERBOARD_FILE} does not exist: nothing to aggregate")
    schemas = {AGGREGATES_FILE: AGGREGATE_SCHEMA, PROFILES_FILE: PROFILE_SCHEMA}
    for path in (folder / AGGREGATES_FILE, folder / PROFILES_FILE, folder / TASKS_DIR / TASKS_INDEX):
        if path.exists():  # a damaged file is refused before any work, never overwritten
            read_csv(path, schemas.get(path.name, INDEX_SCHEMA))
    leaderboard.read(folder / leaderboard.LEADERBOARD_FILE)
