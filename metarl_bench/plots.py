"""Curves of evaluations: one CSV per (distribution, agent), PNGs per distribution.

``<env>.png`` plots reward per step; for distributions whose trials hold several inner
episodes, ``<env>__episodes.png`` plots return per inner episode (the adaptation from
one episode to the next).  Redraw them from the stored CSVs with
``python -m metarl_bench.plots [--results results] [--env gridworlds]``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from metarl_bench.evaluate import Evaluation
from metarl_bench.options import CommandParser


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
    plot_episodes(env, folder)
    return out


def plot_episodes(env: str, folder: str | Path) -> Path | None:
    """``<env>__episodes.png``: mean return per inner episode of every agent, with the references."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder = Path(folder)
    files = sorted(folder.glob(f"{env}__*__episodes.csv"))
    if not files:
        return None
    fig, ax = plt.subplots(figsize=(6, 4))
    for i, path in enumerate(files):
        df = pd.read_csv(path)
        ax.plot(df["episode"], df["agent_return"], "o-", lw=1.2, label=path.stem.split("__")[1])
        if i == 0:
            if "bayes_return" in df:
                ax.plot(df["episode"], df["bayes_return"], "k--", lw=1.5, label="Bayes-optimal")
            if "random_return" in df:
                ax.plot(df["episode"], df["random_return"], color="grey", lw=1, label="random")
    ax.set_xlabel("inner episode of the trial")
    ax.set_ylabel("mean return per episode")
    ax.set_xticks(pd.read_csv(files[0])["episode"])
    ax.set_title(f"{env}: adaptation across episodes")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    out = folder / f"{env}__episodes.png"
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out


def main(argv: list[str] | None = None) -> int:

    from metarl_bench.registry import UnknownNameError, list_families, resolve_envs

    parser = CommandParser(prog="python -m metarl_bench.plots", description="Redraw the curve PNGs.")
    parser.add_argument("--results", default="results", help="results folder (curves are in <results>/curves)")
    parser.add_argument("--env", default=None, help="distribution, suite or comma list (default: all)")
    args = parser.parse_args(argv)
    try:
        envs = resolve_envs(args.env) if args.env else list_families()
    except UnknownNameError as exc:
        return parser.fail(exc)
    for env in envs:
        path = plot_env(env, Path(args.results) / "curves")  # also draws <env>__episodes.png
        if path is not None:
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
