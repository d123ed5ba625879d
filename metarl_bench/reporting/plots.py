"""Curves of evaluations: one CSV per (distribution, agent, training), PNGs per distribution.

A learning agent trained elsewhere than on the distribution itself with seed 0 has a curve
of its own, keyed and labelled by its training distribution and seed (:func:`curve_key`).

``<env>.png`` plots reward per step; for distributions whose trials hold several inner
episodes, ``<env>__episodes.png`` plots return per inner episode (the adaptation from
one episode to the next).  Redraw them from the stored CSVs with
``python -m metarl_bench.plots [--results results] [--env gridworlds]``.

Each thing drawn has one legend entry.  The references (Bayes-optimal, oracle, random
play) are drawn once, in black and grey with their own dashes, after the agents; the
reference agents' own curve files (``bayes``, ``oracle``, ``random``) are the same policies
on the same tasks and noise, so they supply a reference line only where the CSVs carry no
reference column (the per-episode files hold only the Bayes reference).  Agents get the
Okabe-Ito colours (distinguishable with every common colour-vision deficiency) in name
order, so figures with the same agents agree.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from metarl_bench.core.registry import reference_kind
from metarl_bench.evaluation.evaluate import Evaluation

# Okabe & Ito (2008), without black (kept for the references) and yellow (unreadable on white).
AGENT_COLOURS = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#882255"]
AGENT_DASHES = ["-", (0, (6, 2)), (0, (2, 1.5))]  # after the 7 colours are used up
# The references, in the order they are drawn and listed: (kind, label, colour, dashes, width).
REFERENCE_STYLES = [
    ("bayes", "Bayes-optimal (reference)", "#000000", (0, (5, 2)), 1.8),
    ("oracle", "oracle: knows the task (reference)", "#000000", (0, (1, 1.5)), 1.3),
    ("random", "random play (reference)", "#7F7F7F", (0, (4, 1.5, 1, 1.5)), 1.3),
]


def agent_styles(agents: Iterable[str], universe: Iterable[str] = ()) -> dict[str, dict[str, object]]:
    """Colour and dashes of each contestant: colours in name order over ``universe`` (every agent
    of the results folder, so that its figures agree) and ``agents``, then the same colours dashed."""
    names = sorted(set(universe) | set(agents))
    n = len(AGENT_COLOURS)
    return {a: {"color": AGENT_COLOURS[i % n], "ls": AGENT_DASHES[(i // n) % len(AGENT_DASHES)]}
            for i, a in enumerate(names) if a in set(agents)}  # fmt: skip


TRAINED_ON = "on-"  # the key part of a learner not trained on the distribution itself with seed 0


def curve_key(agent: str, env: str, train_env: str | None = None, train_seed: int | None = None) -> str:
    """The file key of a contestant's curve on ``env``: the agent, and where it was trained
    unless that is ``env`` itself with seed 0 (``rl2__on-gridnavi-5x5-permuted-seed0``), so that
    runs of one agent trained elsewhere keep curves of their own."""
    if not train_env or (train_env == env and not train_seed):
        return agent
    return f"{agent}__{TRAINED_ON}{train_env}-seed{int(train_seed or 0)}"


def curve_label(key: str) -> str:
    """What the legend says for a curve key: ``rl2 (trained on gridnavi-5x5-permuted, seed 0)``."""
    agent, _, trained = key.partition("__" + TRAINED_ON)
    if not trained:
        return agent
    train_env, _, seed = trained.rpartition("-seed")
    return f"{agent} (trained on {train_env}, seed {seed})"


def _key_of(path: Path) -> str:
    """The curve key of a curve file ``<env>__<key>[__episodes].csv``."""
    key = path.stem.split("__", 1)[1]
    return key.removesuffix("__episodes")


def curve_agents(folder: str | Path) -> list[str]:
    """The contestants (curve keys) with a curve file in ``folder``: the colour universe of its figures."""
    found = {_key_of(p) for p in Path(folder).glob("*__*.csv")}
    return sorted(k for k in found if reference_kind(k) is None)


def write_curves(
    evaluation: Evaluation, folder: str | Path, train_env: str | None = None, train_seed: int | None = None
) -> Path:
    """Write the per-step curve (agent and references) as ``<env>__<key>.csv`` (see :func:`curve_key`)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    curve = evaluation.step_curve
    df = pd.DataFrame({"step": np.arange(1, len(curve["agent"]) + 1), **{f"{k}_reward": v for k, v in curve.items()}})
    key = curve_key(evaluation.agent, evaluation.env, train_env, train_seed)
    path = folder / f"{evaluation.env}__{key}.csv"
    df.to_csv(path, index=False, float_format="%.6g")
    if len(evaluation.episode_curve.get("agent", ())) > 1:
        ep = pd.DataFrame(
            {"episode": np.arange(1, len(evaluation.episode_curve["agent"]) + 1),
             **{f"{k}_return": v for k, v in evaluation.episode_curve.items()}}
        )  # fmt: skip
        ep.to_csv(folder / f"{evaluation.env}__{key}__episodes.csv", index=False, float_format="%.6g")
    return path


def _draw(ax, files: list[Path], x: str, value: str, smooth: bool, universe: Iterable[str]) -> None:
    """Every contestant once, then every reference once (see the module docstring)."""
    refs: dict[str, tuple[pd.Series, pd.Series]] = {}
    agents = [_key_of(p) for p in files]
    styles = agent_styles([a for a in agents if reference_kind(a) is None], universe)
    for path in files:
        df = pd.read_csv(path)
        if smooth:
            window = max(1, len(df) // 25)
            df = df.rolling(window, min_periods=1).mean().assign(**{x: df[x]})
        agent = _key_of(path)
        for kind, *_ in REFERENCE_STYLES:
            if f"{kind}_{value}" in df and kind not in refs:
                refs[kind] = (df[x], df[f"{kind}_{value}"])
        kind = reference_kind(agent)
        if kind is None:
            ax.plot(df[x], df[f"agent_{value}"], lw=1.4, label=curve_label(agent), **styles[agent])
        elif kind not in refs:
            refs[kind] = (df[x], df[f"agent_{value}"])
    for kind, label, colour, dashes, width in REFERENCE_STYLES:
        if kind in refs:
            ax.plot(*refs[kind], color=colour, ls=dashes, lw=width, label=label)


def pyplot():
    """matplotlib's pyplot on the Agg backend: figures go to files only."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def legend_beside(ax) -> None:
    # beside the axes, not on them: the curves of good agents crowd the top of the plot
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, frameon=False)


def save_png(fig, path: Path, dpi: int = 90) -> Path:
    """Lay ``fig`` out, write it to ``path`` (its folder made if need be) and close it."""
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    pyplot().close(fig)
    return path


def _curve_files(env: str, folder: Path, episodes: bool) -> list[Path]:
    if episodes:
        return sorted(folder.glob(f"{env}__*__episodes.csv"))
    return sorted(p for p in folder.glob(f"{env}__*.csv") if not p.stem.endswith("__episodes"))


def plot_env(
    env: str, folder: str | Path, out_dir: str | Path | None = None, universe: Iterable[str] | None = None
) -> Path | None:
    """``<env>.png`` in ``out_dir`` (default: ``folder``): every agent's reward per step
    (running mean) with the references; also ``<env>__episodes.png`` where trials hold several
    episodes.  ``universe``: the agents colours are assigned over (default: every curve in ``folder``)."""
    out = _plot_curves(env, folder, out_dir, universe, episodes=False)
    if out is not None:
        plot_episodes(env, folder, out_dir, universe)
    return out


def plot_episodes(
    env: str, folder: str | Path, out_dir: str | Path | None = None, universe: Iterable[str] | None = None
) -> Path | None:
    """``<env>__episodes.png`` in ``out_dir`` (default: ``folder``): mean return per inner episode
    of every agent, with the references."""
    return _plot_curves(env, folder, out_dir, universe, episodes=True)


def _plot_curves(
    env: str, folder: str | Path, out_dir: str | Path | None, universe: Iterable[str] | None, episodes: bool
) -> Path | None:
    """One distribution's figure: reward per step (running mean), or return per inner episode."""
    folder = Path(folder)
    out_dir = Path(out_dir) if out_dir is not None else folder
    files = _curve_files(env, folder, episodes)
    if not files:
        return None
    fig, ax = pyplot().subplots(figsize=(8.6, 4))
    universe = curve_agents(folder) if universe is None else list(universe)
    if episodes:
        _draw(ax, files, "episode", "return", smooth=False, universe=universe)
        for line in ax.get_lines():
            line.set_marker("o")
            line.set_markersize(3)
        ax.set_xlabel("inner episode of the trial")
        ax.set_ylabel("mean return per episode")
        ax.set_xticks(pd.read_csv(files[0])["episode"])
        ax.set_title(f"{env}: adaptation across episodes")
    else:
        _draw(ax, files, "step", "reward", smooth=True, universe=universe)
        window = max(1, len(pd.read_csv(files[0])) // 25)  # as _draw smooths
        ax.set_xlabel("step of the trial")
        ax.set_ylabel(f"mean reward per step (running mean, {window})")
        ax.set_title(env)
    legend_beside(ax)
    return save_png(fig, out_dir / (f"{env}__episodes.png" if episodes else f"{env}.png"))
