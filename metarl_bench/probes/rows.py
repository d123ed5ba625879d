"""The probe's outputs: schema rows, the CSV they are appended to, per-step curves and plots,
and the table printed at the end of a run.

**``results/probes.csv``** (one row per agent x distribution x target; appended atomically,
as the leaderboard is):

    agent, env                 registered names
    target                     belief_features key, or "all" (every feature, each scaled to unit variance)
    target_kind                "distribution" (rows are probability vectors) or "continuous"
    target_dim, memory_dim     dimensions of the target and of the agent's features
    r2, r2_ci_low, r2_ci_high  held-out R² of the probe memory -> target, 95% CI
    control_r2, control_r2_ci_low, control_r2_ci_high   the same on the untrained control
    accuracy, accuracy_ci_low, accuracy_ci_high  distribution targets: the probe's argmax
                               is a most probable entry of the true posterior (else empty)
    control_accuracy           the same for the control
    xent, control_xent         distribution targets: mean cross-entropy (nats) of the true
                               posterior under the probe's distribution
    target_entropy             mean entropy of the true posterior (the floor of xent)
    belief_to_memory_r2, control_belief_to_memory_r2   held-out R² of target -> memory
    ridge_alpha, control_ridge_alpha   chosen penalty (per row of standardised features)
    agreement, agreement_ci_low, agreement_ci_high   share of steps with the Bayes action
    bayes_action_prob          mean p_agent(Bayes action) (agents with action_probs)
    bayes_xent                 mean -log p_agent(Bayes action), nats = KL(bayes || agent)
    control_agreement, control_bayes_action_prob   the same for the control
    bayes_method               "exact" or "lower-bound:<policy>" (the bayes agent's); empty
                               when no bayes agent plays the family (agreement then empty)
    control                    how the control was built, or why there is none
    n_tasks, seeds, task_seed  held-out tasks, evaluation seeds (;-separated), task stream seed
    n_trials, n_fit_trials, n_test_trials, split_seed, steps   trials (tasks x seeds), the
                               split, and steps per trial
    train_env, checkpoint      what the probed agent was trained on / loaded from
    env_spec, agent_config     JSON, as in the leaderboard
    device, threads, version, commit, command, timestamp   provenance, as in the leaderboard
    wall_s, run_id             wall time of the whole probe run; unique id of the run

Per-step curves go to ``results/probes/<env>__<agent>.csv`` and ``.png``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from metarl_bench.evaluation.evaluate import EvalSettings
from metarl_bench.probes.analysis import ProbeReport
from metarl_bench.records.csvfile import Schema, append_csv, read_csv

PROBE_FILE = "probes.csv"
PROBE_DIR = "probes"
PROBE_COLUMNS = [
    "agent", "env", "target", "target_kind", "target_dim", "memory_dim",
    "r2", "r2_ci_low", "r2_ci_high", "control_r2", "control_r2_ci_low", "control_r2_ci_high",
    "accuracy", "accuracy_ci_low", "accuracy_ci_high", "control_accuracy",
    "xent", "control_xent", "target_entropy",
    "belief_to_memory_r2", "control_belief_to_memory_r2", "ridge_alpha", "control_ridge_alpha",
    "agreement", "agreement_ci_low", "agreement_ci_high", "bayes_action_prob", "bayes_xent",
    "control_agreement", "control_bayes_action_prob", "bayes_method", "control",
    "n_tasks", "seeds", "task_seed", "n_trials", "n_fit_trials", "n_test_trials", "split_seed", "steps",
    "train_env", "checkpoint", "env_spec", "agent_config",
    "device", "threads", "version", "commit", "command", "timestamp", "wall_s", "run_id",
]  # fmt: skip
PROBE_SCHEMA = Schema("probe", tuple(PROBE_COLUMNS), required=frozenset(["agent", "env", "target", "run_id"]))


def report_rows(report: ProbeReport, settings: EvalSettings, extra: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One schema row per target (``extra`` holds provenance and the run's settings)."""
    a, c = report.agreement, report.control_agreement
    rows = []
    for t in report.targets.values():
        ct = t.control
        nan2 = (float("nan"), float("nan"))
        row = {
            "agent": report.agent,
            "env": report.env,
            "target": t.name,
            "target_kind": t.kind,
            "target_dim": t.dim,
            "memory_dim": report.memory_dim,
            "r2": t.r2.value,
            "r2_ci_low": t.r2.ci[0],
            "r2_ci_high": t.r2.ci[1],
            "control_r2": ct.r2.value if ct else float("nan"),
            "control_r2_ci_low": (ct.r2.ci if ct else nan2)[0],
            "control_r2_ci_high": (ct.r2.ci if ct else nan2)[1],
            "accuracy": t.accuracy.value if t.accuracy else float("nan"),
            "accuracy_ci_low": (t.accuracy.ci if t.accuracy else nan2)[0],
            "accuracy_ci_high": (t.accuracy.ci if t.accuracy else nan2)[1],
            "control_accuracy": ct.accuracy.value if ct and ct.accuracy else float("nan"),
            "xent": t.xent,
            "control_xent": ct.xent if ct else float("nan"),
            "target_entropy": t.entropy,
            "belief_to_memory_r2": t.inverse_r2,
            "control_belief_to_memory_r2": ct.inverse_r2 if ct else float("nan"),
            "ridge_alpha": t.alpha,
            "control_ridge_alpha": ct.alpha if ct else float("nan"),
            "agreement": a.agreement.value if a else float("nan"),
            "agreement_ci_low": (a.agreement.ci if a else nan2)[0],
            "agreement_ci_high": (a.agreement.ci if a else nan2)[1],
            "bayes_action_prob": a.bayes_action_prob.value if a and a.bayes_action_prob else float("nan"),
            "bayes_xent": a.bayes_xent if a else float("nan"),
            "control_agreement": c.agreement.value if c else float("nan"),
            "control_bayes_action_prob": c.bayes_action_prob.value if c and c.bayes_action_prob else float("nan"),
            "bayes_method": report.bayes_method,
            "control": report.control_note,
            "n_tasks": settings.n_tasks,
            "seeds": ";".join(str(s) for s in settings.seeds),
            "task_seed": settings.task_seed,
            "n_trials": len(report.recording.actions),
            "n_fit_trials": len(report.fit_trials),
            "n_test_trials": len(report.test_trials),
            "steps": report.recording.actions.shape[1],
            **extra,
        }
        rows.append(row)
    return rows


def read_probes(path: str | Path) -> pd.DataFrame:
    """``probes.csv`` as a DataFrame (empty if absent); CSVSchemaError if any line does not fit."""
    return read_csv(path, PROBE_SCHEMA)


def append_rows(path: str | Path, rows: Iterable[Mapping[str, Any]]) -> int:
    """Atomically append schema rows to ``path`` (the leaderboard's lock, temp file, fsync, rename)."""
    return append_csv(path, rows, PROBE_SCHEMA)


def curves(report: ProbeReport) -> pd.DataFrame:
    """Per-step curves: R² (and accuracy) per target, agreement, for the agent and its control."""
    steps = report.recording.actions.shape[1]
    cols: dict[str, np.ndarray] = {"step": np.arange(1, steps + 1)}
    for t in report.targets.values():
        cols[f"r2_{t.name}"] = t.r2.curve
        if t.control:
            cols[f"control_r2_{t.name}"] = t.control.r2.curve
        if t.accuracy:
            cols[f"accuracy_{t.name}"] = t.accuracy.curve
    for prefix, agr in (("", report.agreement), ("control_", report.control_agreement)):
        if agr:
            cols[f"{prefix}agreement"] = agr.agreement.curve
            if agr.bayes_action_prob:
                cols[f"{prefix}bayes_action_prob"] = agr.bayes_action_prob.curve
    return pd.DataFrame(cols)


def write_curves(report: ProbeReport, folder: str | Path) -> tuple[Path, Path]:
    """``<env>__<agent>.csv`` (per-step curves) and ``.png`` (R² and agreement over the trial)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    df = curves(report)
    stem = folder / f"{report.env}__{report.agent}"
    df.to_csv(stem.with_suffix(".csv"), index=False, float_format="%.6g")
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for i, t in enumerate(report.targets.values()):
        color = f"C{i}"
        ax1.plot(df["step"], df[f"r2_{t.name}"], color=color, lw=1.3, label=t.name)
        if f"control_r2_{t.name}" in df:
            ax1.plot(df["step"], df[f"control_r2_{t.name}"], color=color, lw=1, ls="--")
    ax1.set_ylim(-0.2, 1.05)
    ax1.set_xlabel("step of the trial")
    ax1.set_ylabel("held-out R² of the linear probe")
    ax1.set_title("solid: agent, dashed: untrained control", fontsize=8)
    ax1.legend(fontsize=7)
    for prefix, style in (("", "-"), ("control_", "--")):
        if f"{prefix}agreement" in df:
            ax2.plot(df["step"], df[f"{prefix}agreement"], "k" + style, lw=1.2, label=f"{prefix}agreement")
        if f"{prefix}bayes_action_prob" in df:
            ax2.plot(df["step"], df[f"{prefix}bayes_action_prob"], "C3" + style, lw=1, label=f"{prefix}p(Bayes action)")
    ax2.set_ylim(0, 1.02)
    ax2.set_xlabel("step of the trial")
    ax2.set_ylabel("agreement with the Bayes action")
    ax2.set_title(f"Bayes policy: {report.bayes_method or 'none for this family'}", fontsize=8)
    ax2.legend(fontsize=7)
    fig.suptitle(f"{report.agent} on {report.env}")
    fig.tight_layout()
    fig.savefig(stem.with_suffix(".png"), dpi=90)
    plt.close(fig)
    return stem.with_suffix(".csv"), stem.with_suffix(".png")


def format_table(rows: list[dict[str, Any]]) -> str:
    """The probe table: target, R² [CI], control, accuracy (distributions), converse R², agreement."""

    def ci(v: float, lo: float, hi: float) -> str:
        return "" if np.isnan(v) else f"{v:.3f} [{lo:.3f}, {hi:.3f}]"

    table = pd.DataFrame(
        {
            "agent": [r["agent"] for r in rows],
            "env": [r["env"] for r in rows],
            "target": [r["target"] for r in rows],
            "R² [95% CI]": [ci(r["r2"], r["r2_ci_low"], r["r2_ci_high"]) for r in rows],
            "control R²": [ci(r["control_r2"], r["control_r2_ci_low"], r["control_r2_ci_high"]) for r in rows],
            "accuracy": [ci(r["accuracy"], r["accuracy_ci_low"], r["accuracy_ci_high"]) for r in rows],
            "ctrl acc": [f"{r['control_accuracy']:.3f}" if not np.isnan(r["control_accuracy"]) else "" for r in rows],
            "belief->mem R²": [f"{r['belief_to_memory_r2']:.3f}" for r in rows],
            "agreement": [ci(r["agreement"], r["agreement_ci_low"], r["agreement_ci_high"]) for r in rows],
        }
    )
    return table.to_string(index=False)


def format_footer(rows: list[dict[str, Any]]) -> str:
    lines = []
    for r in {(r["agent"], r["env"]): r for r in rows}.values():
        head = f"{r['agent']} on {r['env']}:"
        if np.isnan(r["agreement"]):
            lines.append(f"{head} no Bayes-optimal policy to compare with ({r['bayes_method'] or 'no bayes agent'})")
        else:
            extra = ""
            if not np.isnan(r["bayes_action_prob"]):
                extra = (
                    f"; mean p_agent(Bayes action) {r['bayes_action_prob']:.3f}; "
                    f"cross-entropy -log p_agent(Bayes action) {r['bayes_xent']:.3f} nats (= KL(bayes||agent))"
                )
            ctrl = "" if np.isnan(r["control_agreement"]) else f"; control agreement {r['control_agreement']:.3f}"
            lines.append(f"{head} agreement with Bayes-optimal ({r['bayes_method']}) {r['agreement']:.3f}{extra}{ctrl}")
        lines.append(f"  control: {r['control']}; {r['n_fit_trials']} fit / {r['n_test_trials']} test trials")
    return "\n".join(lines)
