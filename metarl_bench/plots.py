"""Curves of evaluations: one CSV per (distribution, agent), one PNG per distribution."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from metarl_bench.evaluate import Evaluation


def write_curves(evaluation: Evaluation, folder: str | Path) -> Path:
    """Write the per-step curve (agent and references) as ``<env>__<agent>.csv``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    curve = evaluation.step_curve
    df = pd.DataFrame({"step": np.arange(1, len(curve["agent"]) + 1), **{f"{k}_reward": v for k, v in curve.items()}})
    path = folder / f"{evaluation.env}__{evaluation.agent}.csv"
    df.to_csv(path, index=False, float_format="%.6g")
    if len(evaluation.episode_curve.get("agent", ())) > 1:
        ep = pd.DataFrame(
            {"episode": np.arange(1, len(evaluation.episode_curve["agent"]) + 1),
             **{f"{k}_return": v for k, v in evaluation.episode_curve.items()}}
        )  # fmt: skip
        ep.to_csv(folder / f"{evaluation.env}__{evaluation.agent}__episodes.csv", index=False, float_format="%.6g")
    return path


def plot_env(env: str, folder: str | Path) -> Path | None:
    """One PNG per distribution: every agent's reward per step (smoothed) with the references."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder = Path(folder)
    files = sorted(p for p in folder.glob(f"{env}__*.csv") if not p.stem.endswith("__episodes"))
    if not files:
        return None
    fig, ax = plt.subplots(figsize=(7, 4))
    refs_drawn = False
    for path in files:
        df = pd.read_csv(path)
        window = max(1, len(df) // 25)
        smooth = df.rolling(window, min_periods=1).mean()
        ax.plot(df["step"], smooth["agent_reward"], label=path.stem.split("__", 1)[1], lw=1.2)
        if not refs_drawn:
            ax.plot(df["step"], smooth["bayes_reward"], "k--", lw=1.5, label="Bayes-optimal")
            ax.plot(df["step"], df["oracle_reward"], "k:", lw=1, label="oracle")
            ax.plot(df["step"], df["random_reward"], color="grey", lw=1, label="random")
            refs_drawn = True
    ax.set_xlabel("step of the trial")
    ax.set_ylabel(f"mean reward per step (running mean, {window})")
    ax.set_title(env)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    out = folder / f"{env}.png"
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out
