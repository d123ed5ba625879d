"""Learning curves of trained agents, read from their shipped checkpoints.

``VSMLAgent.fit`` keeps about 100 points of its running-mean population return and score
in the checkpoint's metrics; ``RL2Agent.fit`` about 200 points of the mean return of the
last 100 training trials.  This command draws them, one line per distribution:

    python -m studies.training_curves --agent vsml-ids --env gridworlds
    python -m studies.training_curves --agent rl2 --env rl2-bandits,rl2-mdps

writes ``results/curves/<agent>__training.csv`` and ``.png``.  For VSML the score is the
running mean over ~10 generations of the population's return (perturbed parameters,
training tasks) against the family's exact references (where the reference is a bound or
none, the return is drawn instead).  For RL² the training return is scored against the
random and Bayes-reference returns of the distribution's newest leaderboard row (held-out
tasks, so the score of training trials is approximate).  RL² checkpoints made before
curves were kept have none; for them the curve is read from the training command's
progress log, kept as ``results/logs/rl2/<checkpoint stem>.log`` (its tqdm line shows the
same quantity, the mean return of the last 100 training trials, every 2 s).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from metarl_bench.baselines.vsml.agent import VSMLAgent
from metarl_bench.core.registry import UnknownNameError, make_agent, make_family, resolve_envs
from metarl_bench.evaluation.score import score
from metarl_bench.running.options import CommandParser

AGENTS = ("vsml", "vsml-ids", "vsml-clone-es", "rl2")
_SCALE = {"": 1.0, "k": 1e3, "M": 1e6}
# "2.05M/5.00M [08:35<12:30, 3.93kstep/s, trial_return=108.23]" in a tqdm progress line
# or, past the total, "5.01Mstep [21:02, 4.02kstep/s, trial_return=120.01]"
_PROGRESS = re.compile(r"([\d.]+)([kM]?)(?:step)?(?:/[\d.]+[kM]?)? \[[^\]]*trial_return=(-?[\d.]+)\]")


def curve_from_log(path: Path) -> list[dict[str, float]]:
    """(steps, trial_return) points of an rl2 training progress log, in order, deduplicated."""
    points: dict[int, float] = {}
    for count, unit, ret in _PROGRESS.findall(path.read_text(errors="replace")):
        points[int(round(float(count) * _SCALE[unit]))] = float(ret)
    return [{"steps": k, "trial_return": v} for k, v in sorted(points.items())]


def rl2_curves(envs: Sequence[str], seed: int = 0, results: Path | str = "results") -> pd.DataFrame:
    """The learning curve of each shipped rl2 checkpoint on ``envs``: from the checkpoint, or
    from its training log; scored against the distribution's newest leaderboard row."""
    from metarl_bench.baselines.rl2.agent import RL2Agent
    from metarl_bench.reporting import leaderboard

    board = leaderboard.newest(leaderboard.read(Path(results) / "leaderboard.csv"))
    frames = []
    for env in envs:
        learner = make_agent("rl2", make_family(env))
        assert isinstance(learner, RL2Agent)
        path = learner.checkpoint_path(env, seed)
        if not path.exists():
            print(f"no checkpoint {path}: skipped", file=sys.stderr)
            continue
        points, source = learner.read(path)[0]["curve"], "checkpoint"
        log = Path(results) / "logs" / "rl2" / f"{path.stem}.log"
        if not points and log.exists():
            points, source = curve_from_log(log), f"log {log.name}"
        if not points:
            print(f"{path} holds no learning curve and there is no {log}: skipped", file=sys.stderr)
            continue
        rows = board[(board["agent"] == "rl2") & (board["env"] == env) & (board["train_env"] == env)]
        frame = pd.DataFrame(points).assign(agent="rl2", env=env, train_seed=seed, source=source)
        if not rows.empty:
            random, bayes = float(rows["random_return"].iloc[-1]), float(rows["bayes_return"].iloc[-1])
            frame["score"] = score(frame["trial_return"], random, bayes)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def curves(agent: str, envs: Sequence[str], seed: int = 0) -> pd.DataFrame:
    """The stored curve of each shipped checkpoint of ``agent`` on ``envs`` (missing ones are skipped)."""
    frames = []
    for env in envs:
        family = make_family(env)
        learner = make_agent(agent, family)
        if not isinstance(learner, VSMLAgent):
            raise ValueError(f"agent {agent!r} is not trained by ES; allowed: {list(AGENTS)}")
        path = learner.checkpoint_path(env, seed)
        if not path.exists():
            print(f"no checkpoint {path}: skipped", file=sys.stderr)
            continue
        record, _ = learner.read(path)
        points = record["curve"]
        if not points:
            print(f"{path} holds no learning curve (trained before curves were kept): skipped", file=sys.stderr)
            continue
        frame = pd.DataFrame(points).assign(agent=agent, env=env, train_seed=seed, checkpoint=path.name,
                                            train_wall_s=record["metrics"].get("train_wall_s"))  # fmt: skip
        frames.append(frame)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def plot(frame: pd.DataFrame, path: Path, title: str, x: str = "generation", y: str = "smoothed_score") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000", "#999999",
               "#882255", "#44AA99", "#117733"]  # Okabe-Ito, then three of Tol's
    fig, ax = plt.subplots(figsize=(9.0, 4.8))
    for i, (env, group) in enumerate(frame.groupby("env", sort=False)):
        ax.plot(group[x], group[y], color=colours[i % len(colours)], label=env)
    reference = "Bayes-optimal" if x == "generation" else "Bayes reference (exact, or the best known policy)"
    ax.axhline(100, color="#000000", ls=(0, (5, 2)), lw=1.2, label=reference)
    ax.axhline(0, color="#7F7F7F", ls=(0, (4, 1.5, 1, 1.5)), lw=1.2, label="random play")
    ax.set_xlabel({"generation": "ES generation", "steps": "env steps"}.get(x, x))
    ax.set_ylabel(
        "score (running mean of the population, training tasks)" if x == "generation"
        else "score (last 100 training trials)"
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> int:
    parser = CommandParser(
        prog="python -m studies.training_curves", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--agent", default="vsml-ids", help=f"one of {list(AGENTS)}")
    parser.add_argument("--env", default="gridworlds", help="distribution, suite or comma list")
    parser.add_argument("--train-seed", type=int, default=0)
    parser.add_argument("--results", default="results")
    args = parser.parse_args(argv)
    try:
        if args.agent not in AGENTS:
            raise ValueError(f"unknown agent {args.agent!r}; allowed: {list(AGENTS)}")
        envs = resolve_envs(args.env)
    except (ValueError, UnknownNameError) as exc:
        return parser.fail(exc)
    if args.agent == "rl2":
        frame = rl2_curves(envs, args.train_seed, args.results)
        x, y, title, shown = "steps", "score", "rl2: PPO learning curves", ["env", "steps", "trial_return", "score"]
    else:
        frame = curves(args.agent, envs, args.train_seed)
        x, y, title, shown = "generation", "smoothed_score", f"{args.agent}: ES learning curves", [
            "env", "generation", "smoothed_score", "train_wall_s"]  # fmt: skip
    if frame.empty:
        return parser.fail(ValueError(f"no {args.agent} checkpoint with a learning curve on {envs}"))
    out = Path(args.results) / "curves"
    out.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out / f"{args.agent}__training.csv", index=False)
    plot(frame, out / f"{args.agent}__training.png", title, x, y)
    print(frame.groupby("env", sort=False).tail(1)[[c for c in shown if c in frame]].to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
