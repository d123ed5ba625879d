"""The figure of the aggregates: a set's performance profile, ``results/profiles/<set>.png``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from metarl_bench.core.registry import reference_kind
from metarl_bench.reporting.plots import REFERENCE_STYLES, agent_styles, legend_beside, pyplot, save_png


def plot_profiles(
    profiles: pd.DataFrame, suite: str, path: str | Path, universe: Sequence[str] | None = None
) -> Path | None:
    """The performance profile of one set: fraction of its distributions with score >= tau,
    one line per complete contestant (its stratified bootstrap band shaded); the references
    (Bayes, oracle, random) in black and grey, as in the curve plots."""
    sub = profiles[profiles["suite"] == suite]
    if sub.empty:
        return None
    styles = {kind: (colour, dashes, width) for kind, _, colour, dashes, width in REFERENCE_STYLES}
    fig, ax = pyplot().subplots(figsize=(8.6, 4))
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
    legend_beside(ax)
    return save_png(fig, Path(path))


def profile_png(suite: str) -> str:
    """The file name of a set's profile figure (``+`` kept: sets of distributions are named by it)."""
    return f"{suite}.png"
