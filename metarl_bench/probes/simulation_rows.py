"""The simulation analysis's rows: the schema of ``results/belief_simulation.csv`` and its tables.

**``results/belief_simulation.csv``** (one row per agent x distribution x subject x figure;
appended atomically and validated on every read, as the probe rows are):

    agent, env                 the probed agent and the distribution (registered names)
    subject                    whose figure: "agent" (the probed agent), "untrained" (same architecture
                               and config, initial parameters), "other-trained" (the same agent's checkpoint
                               of another distribution), "exact-posterior" and "history-buffer" (synthetic,
                               both act as the Bayes reference; memory: the Bayes state / every observation)
    subject_note               how the subject was built
    measure                    behaviour_kl, state_nmse, output_kl, order_ratio, order_perm_distance,
                               order_other_distance (metarl_bench.probes.simulation and .order)
    direction                  "bayes||subject" or "subject||bayes" (behaviour), "subject->belief" or
                               "belief->subject" (maps); empty for order figures
    histories                  whose histories the figure is measured on: "subject", "bayes" or "agent"
    map                        "mlp" or "ridge" (state and output figures), else empty
    value, ci_low, ci_high     the figure and its 95% bootstrap CI over tasks; empty where left out
    units                      "nats", "mse/var" (normalised MSE) or "dist/var" (normalised squared distance)
    note                       why a figure is left out, else empty
    memory_dim, belief_dim     dimensions of the subject's memory and of the flat posterior
    bayes_method, bayes_eps    the reference ("exact" or "lower-bound:<policy>") and its tremble
    n_tasks, seeds, task_seed  held-out tasks, evaluation seeds (;-separated), task stream seed
    n_trials, n_fit_tasks, n_test_tasks, split_seed, steps   trials (tasks x seeds), the split, steps per trial
    train_env, checkpoint      what the probed agent was trained on / loaded from
    env_spec, agent_config     JSON, as in the leaderboard
    device, threads, version, commit, command, timestamp   provenance, as in the leaderboard
    wall_s, run_id             wall time of the agent's whole simulation run; unique id of the run
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from metarl_bench.evaluation.evaluate import EvalSettings
from metarl_bench.probes.bayes_policy import BAYES_EPS
from metarl_bench.probes.simulation import SimulationReport
from metarl_bench.records.csvfile import Schema, append_csv, read_csv

SIMULATION_FILE = "belief_simulation.csv"
SIMULATION_COLUMNS = [
    "agent", "env", "subject", "subject_note", "measure", "direction", "histories", "map",
    "value", "ci_low", "ci_high", "units", "note", "memory_dim", "belief_dim", "bayes_method", "bayes_eps",
    "n_tasks", "seeds", "task_seed", "n_trials", "n_fit_tasks", "n_test_tasks", "split_seed", "steps",
    "train_env", "checkpoint", "env_spec", "agent_config",
    "device", "threads", "version", "commit", "command", "timestamp", "wall_s", "run_id",
]  # fmt: skip
SIMULATION_SCHEMA = Schema(
    "belief simulation",
    tuple(SIMULATION_COLUMNS),
    numeric=frozenset(["value", "ci_low", "ci_high", "memory_dim", "belief_dim", "bayes_eps", "n_tasks",
                       "task_seed", "n_trials", "n_fit_tasks", "n_test_tasks", "split_seed", "steps", "wall_s"]),
    required=frozenset(["agent", "env", "subject", "measure", "run_id"]),
)  # fmt: skip
UNITS = {"behaviour_kl": "nats", "output_kl": "nats", "state_nmse": "mse/var", "order_ratio": "dist/var",
         "order_perm_distance": "dist/var", "order_other_distance": "dist/var"}  # fmt: skip


def _number(value: float) -> float | None:
    """NaN (a figure left out) is an empty field."""
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def report_rows(report: SimulationReport, settings: EvalSettings, extra: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One schema row per subject and figure (``extra`` holds provenance and the run's settings)."""
    rows = []
    for subject, measures in report.measures.items():
        for m in measures:
            rows.append(
                {
                    "agent": report.agent,
                    "env": report.env,
                    "subject": subject,
                    "subject_note": report.subject_notes.get(subject, ""),
                    "measure": m.measure,
                    "direction": m.direction,
                    "histories": m.histories,
                    "map": m.map,
                    "value": _number(m.value),
                    "ci_low": _number(m.ci[0]),
                    "ci_high": _number(m.ci[1]),
                    "units": UNITS[m.measure],
                    "note": m.note,
                    "memory_dim": report.memory_dims[subject],
                    "belief_dim": report.belief_dim,
                    "bayes_method": report.bayes_method,
                    "bayes_eps": BAYES_EPS,
                    "n_tasks": settings.n_tasks,
                    "seeds": ";".join(str(s) for s in settings.seeds),
                    "task_seed": settings.task_seed,
                    "n_trials": report.n_trials,
                    "n_fit_tasks": len(report.fit_tasks),
                    "n_test_tasks": len(report.test_tasks),
                    "steps": report.steps,
                    **extra,
                }
            )
    return rows


def read_simulation(path: str | Path) -> pd.DataFrame:
    """``belief_simulation.csv`` as a DataFrame (empty if absent); CSVSchemaError if any line does not fit."""
    return read_csv(path, SIMULATION_SCHEMA)


def append_rows(path: str | Path, rows: Iterable[Mapping[str, Any]]) -> int:
    """Atomically append schema rows to ``path`` (the leaderboard's lock, temp file, fsync, rename)."""
    return append_csv(path, rows, SIMULATION_SCHEMA)


# ============================================================================ tables
def figure_label(measure: str, direction: str, histories: str, map: str) -> str:
    """A short name of one figure, e.g. "KL(Bayes||S), S's histories" or "state nMSE S->belief (mlp)"."""
    if measure == "behaviour_kl":
        kl = "KL(Bayes||S)" if direction == "bayes||subject" else "KL(S||Bayes)"
        return f"{kl}, {'own' if histories == 'subject' else 'Bayes'} histories"
    if measure in ("state_nmse", "output_kl"):
        what = "state nMSE" if measure == "state_nmse" else "output KL"
        return f"{what} {direction.replace('subject', 'S')} ({map})"
    return {"order_ratio": "order: reordering / other posterior", "order_perm_distance": "order: reordering moves",
            "order_other_distance": "order: other posterior moves"}[measure]  # fmt: skip


def _cell(value: Any, low: Any, high: Any) -> str:
    if value is None or pd.isna(value):
        return "n/a"
    if low is None or pd.isna(low):
        return f"{value:.3f}"
    return f"{value:.3f} [{low:.3f}, {high:.3f}]"


def pivot(rows: list[dict[str, Any]] | pd.DataFrame) -> dict[tuple[str, str], pd.DataFrame]:
    """Per (agent, env): a table of figures (rows) by subject (columns), cells "value [CI]"."""
    df = pd.DataFrame(rows) if not isinstance(rows, pd.DataFrame) else rows
    out = {}
    for (agent, env), part in df.groupby(["agent", "env"], sort=False):
        part = part.drop_duplicates(["subject", "measure", "direction", "histories", "map"], keep="last")
        labels = [
            figure_label(*(r[c] if isinstance(r[c], str) else "" for c in ("measure", "direction", "histories", "map")))
            for _, r in part.iterrows()
        ]
        table = pd.DataFrame(
            {"figure": labels, "subject": part["subject"].to_list(),
             "cell": [_cell(r.value, r.ci_low, r.ci_high) for r in part.itertuples()]}
        )  # fmt: skip
        wide = table.pivot(index="figure", columns="subject", values="cell")
        order = list(dict.fromkeys(labels))
        wide = wide.reindex(order)[list(dict.fromkeys(part["subject"].to_list()))]
        wide.columns.name = None
        out[agent, env] = wide.fillna("")
    return out


def format_table(rows: list[dict[str, Any]]) -> str:
    """Every (agent, env) table as text, with the notes of left-out figures and how subjects were built."""
    lines = []
    df = pd.DataFrame(rows)
    for (agent, env), wide in pivot(df).items():
        lines.append(f"\n{agent} on {env} (S = the subject of each column; 95% CIs over tasks)")
        lines.append(wide.to_string())
        part = df[(df.agent == agent) & (df.env == env)]
        for subject, note in part.groupby("subject", sort=False)["subject_note"].first().items():
            lines.append(f"  {subject}: {note}")
        for note in dict.fromkeys(n for n in part["note"] if isinstance(n, str) and n):
            lines.append(f"  note: {note}")
    return "\n".join(lines)
