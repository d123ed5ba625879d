"""The learning agents' lifecycle: how one gets ready to play (load its checkpoint or meta-train).

``TrainOptions`` are the training flags of a run; ``train_or_load`` hands them to the agent's
``prepare``.  Every caller that readies a learning agent (a sweep's run, the probe, the
aggregates re-measuring a row) goes through here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from metarl_bench.core.registry import get_spec


@dataclass(frozen=True)
class TrainOptions:
    """How learning agents get ready (ignored by agents that do not learn)."""

    train_env: str | None = None  # None: each run meta-trains on (or loads) its agent's default
    train_steps: int | None = None  # None: the shipped checkpoint (or the agent's default budget)
    train_seed: int = 0
    retrain: bool = False
    save_checkpoint: bool = False
    device: str = "cpu"
    threads: int = 1



def train_or_load(agent: Any, env: str, options: TrainOptions) -> tuple[str, dict[str, Any]]:
    """Let a learning agent load its checkpoint or meta-train, on ``options.train_env`` if given,
    else on the agent's default for ``env``; returns (the training distribution used, its stats)."""
    o = options
    train_env = o.train_env or agent.default_train_env(env, retrain=o.retrain or o.train_steps is not None)
    stats = agent.prepare(
        train_family=get_spec(train_env).make(),
        train_env=train_env,
        budget=o.train_steps,
        seed=o.train_seed,
        retrain=o.retrain,
        device=o.device,
    )
    return train_env, stats
