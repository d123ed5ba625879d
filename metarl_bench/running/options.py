"""The command-line options that ``run`` and ``probe`` share: declared once, parsed once.

``add_common_arguments`` declares the flags; ``parse_common`` checks every name and value
before any work and returns one :class:`CommonOptions`, which the commands pass whole.
Bad input raises ``ValueError`` (or ``UnknownNameError``) with a message naming what is
allowed; the commands turn it into exit status 2.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

from metarl_bench.core.learner import TrainOptions
from metarl_bench.core.registry import get_agent_factory, get_spec, resolve_agents, resolve_envs
from metarl_bench.evaluation.evaluate import EvalSettings
from metarl_bench.running.preflight import check_bounds, split_names

# A user's runs go to a folder of their own (git ignores it in a checkout); the shipped results/
# folder changes only when a command names it.
USER_RESULTS = Path("metarl-results")
SHIPPED_RESULTS = Path("results")


class CommandParser(argparse.ArgumentParser):
    """argparse with the suite's error convention: one line on stderr, exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")

    def fail(self, exc: BaseException) -> int:
        """Report bad input found after parsing (a name, a value, a file) the same way; returns 2."""
        print(f"{self.prog}: error: {exc}", file=sys.stderr)
        return 2


def int_list(text: str) -> tuple[int, ...]:
    """A comma list of non-negative integers, e.g. seeds ``0,1,2``."""
    try:
        values = tuple(int(p) for p in text.split(",") if p.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a comma list of integers, got {text!r}") from None
    if not values or any(v < 0 for v in values):
        raise argparse.ArgumentTypeError(f"expected non-negative integers, got {text!r}")
    if len(set(values)) != len(values):
        raise argparse.ArgumentTypeError(f"expected distinct integers (a repeated seed replays one run), got {text!r}")
    return values


def bounded_int(minimum: int):
    """An argparse type: an integer >= ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {value}")
        return value

    return parse


positive_int = bounded_int(1)
non_negative_int = bounded_int(0)


@dataclass(frozen=True)
class CommonOptions:
    """What ``run`` and ``probe`` both need, validated: who plays what, how, and where rows go."""

    agents: tuple[str, ...]
    envs: tuple[str, ...]
    settings: EvalSettings
    train: TrainOptions = field(default_factory=TrainOptions)
    results: Path = USER_RESULTS
    save: bool = True
    command: str = ""


def add_common_arguments(
    p: argparse.ArgumentParser,
    *,
    default_seeds: tuple[int, ...],
    default_tasks: int,
    default_agent: str | None,
    default_env: str | None,
) -> None:
    """Declare the shared flags on ``p`` (``--agent`` and ``--env`` are required without a default)."""
    p.add_argument(
        "--agent", default=default_agent, required=default_agent is None, help="agent name, comma list, or 'all'"
    )
    p.add_argument(
        "--env", default=default_env, required=default_env is None, help="distribution, suite, or comma list"
    )
    p.add_argument("--seeds", type=int_list, default=default_seeds, help="evaluation seeds, e.g. 0,1,2")
    p.add_argument("--eval-tasks", type=bounded_int(2), default=default_tasks, help="held-out tasks (at least 2)")
    p.add_argument("--train-env", help="meta-train (or load the checkpoint of) learning agents on this distribution")
    p.add_argument("--train-steps", type=positive_int, help="meta-training budget in env steps (learning agents)")
    p.add_argument("--train-seed", type=non_negative_int, default=0, help="seed of the training task stream")
    p.add_argument(
        "--retrain", action="store_true", help="train learning agents instead of loading shipped checkpoints"
    )
    p.add_argument("--device", default="cpu", help="torch device for learning agents: cpu, cuda, cuda:N, auto")
    p.add_argument(
        "--threads", type=positive_int, default=1, help="torch CPU threads (default 1: fastest for small models)"
    )
    p.add_argument(
        "--results",
        default=str(USER_RESULTS),
        help=f"results folder (default: ./{USER_RESULTS}; the shipped results are regenerated only by --results "
        f"{SHIPPED_RESULTS})",
    )
    p.add_argument("--no-save", action="store_true", help="print only; write no rows or curves")


def check_device(name: str) -> str:
    """The torch device ``name`` resolved and checked before any work: ``cpu``, ``cuda[:N]``
    (refused where CUDA is absent, never a silent fallback) or ``auto`` (cuda if present)."""
    if name == "cpu":
        return name
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise ValueError(f"--device {name!r} is not a torch device; use cpu, cuda, cuda:N or auto") from None
    if device.type != "cuda":
        raise ValueError(f"--device {name!r}: the learning agents run on cpu or cuda; use cpu, cuda, cuda:N or auto")
    if not torch.cuda.is_available():
        raise ValueError(
            f"--device {name!r}: torch sees no CUDA device here (torch.cuda.is_available() is False); "
            "use --device cpu, or --device auto to take a GPU only where there is one"
        )
    if device.index is not None and device.index >= torch.cuda.device_count():
        raise ValueError(f"--device {name!r}: only {torch.cuda.device_count()} CUDA device(s) here")
    return name


def check_writable(folder: Path) -> None:
    """Refuse a results folder that cannot take our files, before any work: a path that is
    a file, or a folder where a file cannot be created."""
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"--results {str(folder)!r} is a file, not a folder")
    existing = next((p for p in (folder, *folder.parents) if p.exists()), Path("."))
    if not existing.is_dir():
        raise ValueError(f"--results {str(folder)!r}: {str(existing)!r} is a file, not a folder")
    try:  # os.access is not enough: root passes it everywhere, a read-only mount does not
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as exc:
        raise ValueError(f"--results {str(folder)!r} is not writable ({exc.strerror}: {str(existing)!r})") from None


def parse_common(args: argparse.Namespace, command: str) -> CommonOptions:
    """Check the shared flags and build the one options object; ValueError on bad input."""
    agents = resolve_agents(split_names("--agent", args.agent))
    envs = resolve_envs(split_names("--env", args.env))
    if args.train_env:
        get_spec(args.train_env)  # exactly one distribution (a suite or a list would fail every run)
    device = check_device(args.device)
    if not args.no_save:
        check_writable(Path(args.results))
    train = TrainOptions(
        train_env=args.train_env,
        train_steps=args.train_steps,
        train_seed=args.train_seed,
        retrain=args.retrain,
        save_checkpoint=getattr(args, "save_checkpoint", False),
        device=device,
        threads=args.threads,
        resume=getattr(args, "resume", False),
        # a training saves as it goes into the results folder, which survives a reboot (a temp folder may not)
        partial_dir=None if args.no_save else Path(args.results) / "partial",
        checkpoint=getattr(args, "checkpoint", None),
    )
    settings = EvalSettings(n_tasks=args.eval_tasks, seeds=args.seeds)
    check_bounds(settings, train)
    return CommonOptions(
        agents=tuple(agents),
        envs=tuple(envs),
        settings=settings,
        train=train,
        results=Path(args.results),
        save=not args.no_save,
        command=command,
    )


def set_torch_threads(options: CommonOptions) -> None:
    """Fix torch's CPU threads before any model is built (1 by default: small models spin
    waiting for each other on a busy machine)."""
    learns = any(getattr(get_agent_factory(a), "learns", False) for a in options.agents)
    if "torch" in sys.modules or learns:
        import torch

        torch.set_num_threads(options.train.threads)
