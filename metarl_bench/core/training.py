"""How a run readies its learning agents: the training flags, one frozen value.

The command line fills a ``TrainOptions``; ``Agent.prepare`` reads it.  Agents that do not
learn ignore it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


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
    resume: bool = False  # continue a stopped training's partial checkpoint where there is one
    partial_dir: Path | None = None  # where trainings save as they go (None: Learner's partial_folder())
    checkpoint: Path | None = None  # play this file (ours, or a learner's foreign format) instead of training

    @property
    def trains(self) -> bool:
        """Whether the run asks for training (rather than a shipped checkpoint)."""
        return (self.retrain or self.resume or self.train_steps is not None) and self.checkpoint is None
