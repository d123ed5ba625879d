"""Rename the curve files of a results folder written before curves were keyed by training (run once).

Until then a curve was ``<env>__<agent>.csv`` whatever the agent was trained on, so the last
run of an agent on a distribution overwrote it: the file belongs to the *last* leaderboard
row of that (agent, distribution) in the order written.  This gives each such file the key
of that row (``metarl_bench.reporting.plots.curve_key``), then redraws the figures.

    python studies/key_curves.py --results results
"""

from __future__ import annotations

import argparse
from pathlib import Path

from metarl_bench.reporting import leaderboard, plots


def key_curves(results: Path) -> list[tuple[str, str]]:
    """Rename what needs it; returns (old name, new name) pairs."""
    board = leaderboard.read(results / leaderboard.LEADERBOARD_FILE)
    last = board.drop_duplicates(["agent", "env"], keep="last")
    curves, renamed = results / "curves", []
    for row in last.itertuples():
        trained = isinstance(row.train_env, str) and row.train_env != ""  # pandas reads an empty field as NaN
        seed = int(row.train_seed) if trained else None
        key = plots.curve_key(row.agent, row.env, row.train_env if trained else None, seed)
        if key == row.agent:
            continue
        for suffix in (".csv", "__episodes.csv"):
            old, new = curves / f"{row.env}__{row.agent}{suffix}", curves / f"{row.env}__{key}{suffix}"
            if old.exists() and not new.exists():
                old.rename(new)
                renamed.append((old.name, new.name))
    for env in dict.fromkeys(last.env):
        plots.plot_env(env, curves)
    return renamed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--results", type=Path, required=True)
    args = parser.parse_args()
    for old, new in key_curves(args.results):
        print(f"{old} -> {new}")


if __name__ == "__main__":
    main()
