"""Learning curves of ES-trained VSML agents, read from their shipped checkpoints.

``VSMLAgent.fit`` keeps about 100 points of its running-mean population return and score
in the checkpoint's metrics; this command draws them, one line per distribution:

    python -m metarl_bench.baselines.training_curves --agent vsml-ids --env gridworlds

writes ``results/curves/<agent>__training.csv`` and ``.png``.  The score is the running
mean over ~10 generations of the population's return (perturbed parameters, training
tasks), against the family's exact references; where the reference is a bound or none the
return is drawn instead.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from metarl_bench.options import CommandParser
from metarl_bench.registry import UnknownNameError, make_agent, make_family, resolve_envs

from .vsml import VSMLAgent

AGENTS = ("vsml", "vsml-ids", "vsml-clone-es")


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
        record = learner.read_checkpoint(path)
        points = record.get("metrics", {}).get("curve")
        if not points:
            print(f"{path} holds no learning curve (trained before curves were kept): skipped", file=sys.stderr)
            continue
        frame = pd.DataFrame(points).assign(agent=agent, env=env, train_seed=seed, checkpoint=path.name,
                                            train_wall_s=record["metrics"].get("train_wall_s"))  # fmt: skip
        frames.append(frame)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def plot(frame: pd.DataFrame, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00"]
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for i, (env, group) in enumerate(frame.groupby("env", sort=False)):
        ax.plot(group["generation"], group["smoothed_score"], color=colours[i % len(colours)], label=env)
    ax.axhline(100, color="#000000", ls=(0, (5, 2)), lw=1.2, label="Bayes-optimal")
    ax.axhline(0, color="#7F7F7F", ls=(0, (4, 1.5, 1, 1.5)), lw=1.2, label="random play")
    ax.set_xlabel("ES generation")
    ax.set_ylabel("score (running mean of the population, training tasks)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> int:
    parser = CommandParser(
        prog="python -m metarl_bench.baselines.training_curves", description=__doc__.split("\n\n")[0]
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
    frame = curves(args.agent, envs, args.train_seed)
    if frame.empty:
        return parser.fail(ValueError(f"no {args.agent} checkpoint with a learning curve on {envs}"))
    out = Path(args.results) / "curves"
    out.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out / f"{args.agent}__training.csv", index=False)
    plot(frame, out / f"{args.agent}__training.png", f"{args.agent}: ES learning curves")
    last = frame.groupby("env", sort=False).tail(1)[["env", "generation", "smoothed_score", "train_wall_s"]]
    print(last.to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
