"""Published results to compare against, and the comparison tables of the README.

RL² (Duan et al. 2016, arXiv:1611.02779v2): Table 1 ("MAB Results": total reward of n
pulls of a k-armed Bernoulli bandit with arm probabilities drawn Uniform[0, 1], mean of
1000 bandits) and Table 2 ("Random MDP Results": total reward of n episodes of 10 steps
in a random MDP with 10 states and 5 actions, mean of 1000 MDPs).  The values are
transcribed from the paper.

    python -m metarl_bench.published [--results results]

prints both tables as markdown, our newest leaderboard row for each cell beside the
paper's value, marked ``=`` where the two agree within sqrt(2) times our 95% CI's
half-width (the paper's 1000 tasks carry about our sampling error too), ``▲`` where we are
above and ``▼`` where below.  Methods we do not implement are shown with the
paper's value only.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from metarl_bench.reporting import leaderboard

SQRT2 = 2**0.5

# Column order of the paper, our agent for each column (None: not implemented here).
TABLE1_AGENTS = {
    "Random": "random",
    "Gittins": "gittins",
    "TS": "thompson",
    "OTS": None,
    "UCB1": "ucb1-tuned",  # the paper grid-searched c and epsilon per setting, as these agents
    "ε-Greedy": "epsilon-greedy-tuned",
    "Greedy": "greedy",
    "RL²": "rl2",
}
TABLE1 = {  # (k, n) -> the row of Table 1, in TABLE1_AGENTS' order
    (5, 10): (5.0, 6.6, 5.7, 6.5, 6.7, 6.6, 6.6, 6.7),
    (10, 10): (5.0, 6.6, 5.5, 6.2, 6.7, 6.6, 6.6, 6.7),
    (50, 10): (5.1, 6.5, 5.2, 5.5, 6.6, 6.5, 6.5, 6.8),
    (5, 100): (49.9, 78.3, 74.7, 77.9, 78.0, 75.4, 74.8, 78.7),
    (10, 100): (49.9, 82.8, 76.7, 81.4, 82.4, 77.4, 77.1, 83.5),
    (50, 100): (49.8, 85.2, 64.5, 67.7, 84.3, 78.3, 78.0, 84.9),
    (5, 500): (249.8, 405.8, 402.0, 406.7, 405.8, 388.2, 380.6, 401.6),
    (10, 500): (249.0, 437.8, 429.5, 438.9, 437.1, 408.0, 395.0, 432.5),
    (50, 500): (249.6, 463.7, 427.2, 437.6, 457.6, 413.6, 402.8, 438.9),
}
TABLE2_AGENTS = {
    "Random": "random",
    "PSRL": "psrl",
    "OPSRL": None,
    "UCRL2": "ucrl2-tuned",
    "BEB": "beb-tuned",
    "ε-Greedy": "mdp-epsilon-greedy",
    "Greedy": "mdp-greedy",
    "RL²": "rl2",
}
TABLE2 = {  # n -> the row of Table 2, in TABLE2_AGENTS' order
    10: (100.1, 138.1, 144.1, 146.6, 150.2, 132.8, 134.8, 156.2),
    25: (250.2, 408.8, 425.2, 424.1, 427.8, 377.3, 368.8, 445.7),
    50: (499.7, 904.4, 930.7, 918.9, 917.8, 823.3, 769.3, 936.1),
    75: (749.9, 1417.1, 1449.2, 1427.6, 1422.6, 1293.9, 1172.9, 1428.8),
    100: (999.4, 1939.5, 1973.9, 1942.1, 1935.1, 1778.2, 1578.5, 1913.7),
}


def newest_rows(results: Path | str = "results") -> pd.DataFrame:
    """The newest row per (agent, distribution) among rows evaluated where they were
    trained (learning agents) and at training seed 0, indexed by (agent, env)."""
    board = leaderboard.newest(leaderboard.read(Path(results) / "leaderboard.csv"))
    seed = pd.to_numeric(board["train_seed"], errors="coerce").fillna(0)
    trained_elsewhere = board["train_env"].fillna("").ne("") & board["train_env"].ne(board["env"])
    return board[(seed == 0) & ~trained_elsewhere].set_index(["agent", "env"])


def cell(rows: pd.DataFrame, agent: str | None, env: str, paper: float) -> str:
    """``ours / paper mark``, or ``– / paper`` without a row."""
    if agent is None or (agent, env) not in rows.index:
        return f"– / {paper:.1f}"
    row = rows.loc[(agent, env)]
    ours = float(row["return"])
    # The paper's mean of its own 1000 tasks carries about the sampling error of ours, so
    # the two differ significantly only beyond sqrt(2) times our CI's half-width.
    margin = SQRT2 * (float(row["return_ci_high"]) - float(row["return_ci_low"])) / 2
    mark = "=" if abs(ours - paper) <= margin else ("▲" if ours > paper else "▼")
    return f"{ours:.1f} / {paper:.1f} {mark}"


def table1(rows: pd.DataFrame) -> str:
    names = [f"{method} (`{agent}`)" if agent else f"{method} (not implemented)"
             for method, agent in TABLE1_AGENTS.items()]
    head = "| setup | " + " | ".join(names) + " |"
    lines = [head, "|---" * (len(TABLE1_AGENTS) + 1) + "|"]
    for (k, n), paper in TABLE1.items():
        env = f"bernoulli-k{k}-h{n}"
        cells = [cell(rows, agent, env, p) for agent, p in zip(TABLE1_AGENTS.values(), paper, strict=True)]
        lines.append(f"| n = {n}, k = {k} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def table2(rows: pd.DataFrame) -> str:
    head = "| method (our agent) | " + " | ".join(f"n = {n}" for n in TABLE2) + " |"
    lines = [head, "|---" * (len(TABLE2) + 1) + "|"]
    for i, (method, agent) in enumerate(TABLE2_AGENTS.items()):
        cells = [cell(rows, agent, f"tabular-mdp-s10-a5-n{n}", paper[i]) for n, paper in TABLE2.items()]
        name = f"`{agent}`" if agent else "not implemented"
        lines.append(f"| {method} ({name}) | " + " | ".join(cells) + " |")
    return "\n".join(lines)
