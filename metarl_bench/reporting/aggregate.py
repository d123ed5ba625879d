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

This module computes one set's rows and runs the command; the parts live beside it:
``aggregate_sets`` (which rows, sets and contestants), ``task_scores`` (the per-task store
that re-measures rows), ``aggregate_stats`` (IQM, stratified bootstrap, profiles),
``aggregate_files`` (the files' names and schemas) and ``aggregate_plot`` (the profile figures).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from metarl_bench.core.registry import reference_agents
from metarl_bench.evaluation.score import score_of_gain
from metarl_bench.records.csvfile import read_csv
from metarl_bench.reporting import leaderboard
from metarl_bench.reporting.aggregate_files import (
    AGGREGATE_COLUMNS,
    AGGREGATE_SCHEMA,
    AGGREGATES_FILE,
    EVALUATION,
    INCOMPLETE,
    OK,
    PROFILE_COLUMNS,
    PROFILE_SCHEMA,
    PROFILES_DIR,
    PROFILES_FILE,
    TRAINING_SEEDS,
    UNREPRODUCED,
    atomic_csv,
    filled,
    read_aggregates,
    read_profiles,
)
from metarl_bench.reporting.aggregate_plot import plot_profiles, profile_png
from metarl_bench.reporting.aggregate_sets import AggregateError, contestants, current_rows, parse_sets, scored_envs
from metarl_bench.reporting.aggregate_stats import EVAL_INTERVAL, stratified_bootstrap, tau_grid
from metarl_bench.reporting.task_scores import INDEX_SCHEMA, TASKS_DIR, TASKS_INDEX, TaskStore

# what the command line (metarl_bench.running.tables) uses
__all__ = ["AGGREGATES_FILE", "PROFILES_DIR", "PROFILES_FILE", "UNREPRODUCED", "AggregateError", "aggregate",
           "aggregate_set", "check_inputs", "format_table", "parse_sets"]  # fmt: skip


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
    taus = tau_grid([score_of_gain(g.mean(), d.mean()) for pairs in estimates.values() for g, d in pairs])
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


def _merge(old: pd.DataFrame, new: pd.DataFrame, sets: list[str], agents: set[str], keys: list[str]) -> pd.DataFrame:
    """``new`` replaces the rows of ``old`` of the sets and agents just computed (an agent that
    lost its rows loses its old aggregate too); the others stay.  Sorted, so files diff well."""
    gone = old["suite"].astype(str).isin(sets) & old["agent"].astype(str).isin(agents)
    frames = [f.astype(object) for f in (old[~gone], new) if len(f)]
    merged = pd.concat(frames, ignore_index=True) if frames else new
    return merged.sort_values(keys, key=lambda c: c.astype(str), kind="stable").reset_index(drop=True)


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
    atomic_csv(merged, results / AGGREGATES_FILE, "%.6g", AGGREGATE_SCHEMA.numeric)
    atomic_csv(merged_prof, results / PROFILES_FILE, "%.6g", PROFILE_SCHEMA.numeric)
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
    if not filled(v):
        return ""
    return f"{float(v):.1f}" + (f" [{float(lo):.1f}, {float(hi):.1f}]" if filled(lo) else "")


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
