"""Cross-evaluation: how an agent meta-trained on one distribution scores on others.

The table is built from leaderboard rows, so every cell is a run made by the one CLI
(``python -m metarl_bench.run --agent vsml --train-env bernoulli-k2-h100 --env bandits``)
with its provenance.  A cell is

- the score and its CI from the newest row of (agent, train_env, env),
- ``not-applicable`` (``n/a`` on the heat map) where the agent cannot play the test
  distribution at all: another observation shape, or another action count where
  ``Agent.transfers_across_spaces`` is False (an RL² LSTM policy has a fixed output layer),
- ``missing`` where it could but no row exists yet.

    python -m metarl_bench.crosseval --agent vsml,rl2 --train-env bernoulli-k2-h100,bernoulli-k5-h100 --env bandits

writes ``results/crosseval.csv`` (long format, one row per cell) and ``results/crosseval.png``
(one heat map per agent).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from metarl_bench.core.registry import get_agent_factory, make_family

CSV_FILE = "crosseval.csv"
PNG_FILE = "crosseval.png"
CELL_COLUMNS = ["agent", "train_env", "env", "status", "score", "score_ci_low", "score_ci_high", "n_tasks", "seeds",
                "train_steps", "checkpoint", "commit", "command", "timestamp"]  # fmt: skip


def compatible(agent: str, train_env: str, env: str) -> bool:
    """Whether ``agent`` meta-trained on ``train_env`` can act in ``env`` at all."""
    train, test = make_family(train_env), make_family(env)
    if tuple(train.obs_shape) != tuple(test.obs_shape):
        return False  # no agent here reads observations of another size
    return train.num_actions == test.num_actions or getattr(get_agent_factory(agent), "transfers_across_spaces", False)


def table(rows: pd.DataFrame, agents: list[str], train_envs: list[str], envs: list[str]) -> pd.DataFrame:
    """One row per (agent, train_env, env) cell; see the module docstring for ``status``."""
    latest = rows.sort_values("timestamp").drop_duplicates(["agent", "train_env", "env"], keep="last")
    latest = latest.set_index(["agent", "train_env", "env"])
    cells = []
    for agent in agents:
        for train_env in train_envs:
            for env in envs:
                cell = {"agent": agent, "train_env": train_env, "env": env}
                if not compatible(agent, train_env, env):
                    cell["status"] = "not-applicable"  # not "n/a": pandas reads that back as NaN
                elif (agent, train_env, env) in latest.index:
                    row = latest.loc[(agent, train_env, env)]
                    cell |= {c: row[c] for c in CELL_COLUMNS if c in row.index}
                    cell["status"] = "ok"
                else:
                    cell["status"] = "missing"
                cells.append(cell)
    return pd.DataFrame(cells, columns=CELL_COLUMNS)


def plot(cells: pd.DataFrame, path: str | Path) -> Path:
    """Heat maps of score (one panel per agent): train distribution x test distribution."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    agents = list(dict.fromkeys(cells["agent"]))
    train_envs = list(dict.fromkeys(cells["train_env"]))
    envs = list(dict.fromkeys(cells["env"]))
    size = (len(agents) * (2.6 + 1.0 * len(envs)), 2.4 + 0.6 * len(train_envs))
    fig, axes = plt.subplots(1, len(agents), figsize=size, squeeze=False)
    for ax, agent in zip(axes[0], agents, strict=True):
        sub = cells[cells["agent"] == agent].set_index(["train_env", "env"])
        scores = np.full((len(train_envs), len(envs)), np.nan)
        for i, tr in enumerate(train_envs):
            for j, te in enumerate(envs):
                cell = sub.loc[(tr, te)]
                if cell["status"] == "ok":
                    scores[i, j] = float(cell["score"])
                    half = (float(cell["score_ci_high"]) - float(cell["score_ci_low"])) / 2
                    text = f"{scores[i, j]:.1f}\n±{half:.1f}"
                else:
                    text = "n/a" if cell["status"] == "not-applicable" else cell["status"]
                ax.text(j, i, text, ha="center", va="center", fontsize=7)
        ax.imshow(np.clip(scores, 0, 100), cmap="viridis", vmin=0, vmax=100, alpha=0.8, aspect="auto")
        ax.set_xticks(range(len(envs)), envs, rotation=35, ha="right", fontsize=7)
        ax.set_yticks(range(len(train_envs)), train_envs, fontsize=7)
        ax.set_xlabel("evaluated on")
        ax.set_ylabel("meta-trained on")
        ax.set_title(f"{agent}: score (0 random, 100 Bayes-optimal)", fontsize=8)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
