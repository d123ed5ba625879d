"""Sweeps: the runs of one command, computed on a backend (in-process or Ray), each appended once.

A *run* is the unit of a sweep and of the leaderboard: one agent on one task distribution,
evaluated under all the requested seeds (they share the held-out tasks; the CIs bootstrap
the per-task seed average), with its training options.  One run makes one row.  A sweep is
the runs of agents x distributions; splitting a run by seed would change what a row means.

Backends only compute.  ``execute_run`` builds, trains or loads, and evaluates; it returns
the row and the curves and writes nothing.  The driver (``run_sweep``, in the command's
process) is the one writer: it appends each complete row through the leaderboard's atomic
append as soon as its result arrives.  So a run that dies leaves nothing behind, a Ray
worker on another machine needs no access to the results folder, and a result (which Ray
hands over once, however many times its task was retried) becomes exactly one row.

Faults: a Python exception in a run is deterministic (same seeds, same error), so it is
reported, not retried; ``UnsupportedFamilyError`` marks an agent that declares it does not
play a distribution and is reported as skipped; any other error fails the run.  A Ray worker that dies (killed, crashed,
out of memory) has its run resubmitted up to ``max_retries`` times, then reported as
failed.  Either way the sweep goes on with the other runs.

Resume: a run is already done when the leaderboard holds a row with its key (``RunSpec.key``,
``row_key``): agent, env, seeds, n_tasks, env_spec (the distribution's parameters) and
run_config (the training options, for agents that learn; ``{}`` for the others).
"""

from __future__ import annotations

import json
import re
import socket
import sys
import time
import traceback
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from tqdm import tqdm

from metarl_bench.core.agent import CheckpointError, UnsupportedFamilyError
from metarl_bench.core.checks import ContractError
from metarl_bench.core.learner import TrainOptions, file_sha256, train_or_load
from metarl_bench.core.registry import (
    FamilySpec,
    UnknownNameError,
    get_agent_factory,
    get_spec,
    make_agent,
    register,
    register_agent,
)
from metarl_bench.evaluation.evaluate import EvalSettings, Evaluation, evaluate
from metarl_bench.records.provenance import provenance
from metarl_bench.records.row import LeaderboardRow, Provenance, Training, env_spec_json
from metarl_bench.reporting import leaderboard, plots

OK, SKIPPED, FAILED = "ok", "skipped", "failed"
BACKENDS = ("local", "ray")
DEFAULT_MAX_RETRIES = 2
# "local" (a private instance), "auto" (the running cluster), host:port, or ray://host:port
_ADDRESS_RE = re.compile(r"^(local|auto|(ray://)?([A-Za-z0-9_.\-]+|\[[0-9A-Fa-f:]+\]):\d{1,5})$")


class BackendError(RuntimeError):
    """A backend that cannot start: Ray missing, a malformed or unreachable address."""


# ============================================================================ what a run is
@dataclass(frozen=True)
class RunSpec:
    """One run: everything a worker needs to make its row."""

    agent: str
    env: str
    settings: EvalSettings
    options: TrainOptions
    learns: bool
    env_spec: str  # JSON, as in the row: the distribution's gymnasium id and parameters
    agent_settings: str = "{}"  # JSON of the agent's --agent-config settings (checked by then)

    @property
    def seeds(self) -> str:
        return ";".join(str(s) for s in self.settings.seeds)

    @property
    def run_config(self) -> str:
        """JSON of the requested options that change a learning agent's result ({} otherwise)."""
        o = self.options
        config = (
            {"train_env": o.train_env or self.env, "train_steps": o.train_steps, "train_seed": o.train_seed,
             "retrain": o.retrain}
            if self.learns else {}
        )  # fmt: skip
        settings = json.loads(self.agent_settings)
        extra = ({"agent_config": settings} if settings else {}) | (
            {"checkpoint": str(o.checkpoint)} if o.checkpoint is not None and self.learns else {}
        )
        return json.dumps(config | extra, sort_keys=True)

    @property
    def key(self) -> tuple[str, str, str, int, str, str]:
        return (self.agent, self.env, self.seeds, self.settings.n_tasks, self.env_spec, self.run_config)

    def label(self) -> str:
        return f"{self.agent} on {self.env} (seeds {self.seeds}, {self.settings.n_tasks} tasks)"


@dataclass
class RunResult:
    """What came back from a run: its row and curves, or why there are none."""

    spec: RunSpec
    status: str
    row: LeaderboardRow | None = None
    evaluation: Evaluation | None = None
    error: str = ""
    detail: str = ""  # the traceback, when there is one


def plan_runs(
    agents: Sequence[str],
    envs: Sequence[str],
    settings: EvalSettings,
    options: TrainOptions | None = None,
    agent_settings: dict[str, dict[str, Any]] | None = None,
) -> list[RunSpec]:
    """The runs of agents x distributions, distribution-major (as the local loop always ran them);
    ``agent_settings``: each agent's checked ``--agent-config`` settings."""
    options = options or TrainOptions()
    chosen = {a: json.dumps((agent_settings or {}).get(a, {}), sort_keys=True) for a in agents}
    learns = {a: bool(getattr(get_agent_factory(a), "learns", True)) for a in agents}  # unknown: assume it does
    specs = []
    for env in envs:
        env_spec = env_spec_json(env, get_spec(env).make().params)
        specs += [RunSpec(a, env, settings, options, learns[a], env_spec, chosen[a]) for a in agents]
    return specs


# ============================================================================ doing one run
def evaluate_run(spec: RunSpec) -> tuple[LeaderboardRow, Evaluation]:
    """Build, (meta-train or load), and evaluate one agent on one distribution: its row."""
    o = spec.options
    family = get_spec(spec.env).make()
    agent = make_agent(spec.agent, family, **json.loads(spec.agent_settings))
    if "torch" in sys.modules:  # set here, not only in the CLI: a Ray worker is a process of its own
        import torch

        torch.set_num_threads(o.threads)
    if agent.learns:
        start = time.perf_counter()
        train_env, stats = train_or_load(agent, spec.env, o)
        checkpoint, sha256 = stats.get("checkpoint", ""), stats.get("checkpoint_sha256", "")
        if o.save_checkpoint and not checkpoint:
            path = agent.save(agent.checkpoint_path(train_env, o.train_seed))
            checkpoint, sha256 = path.name, file_sha256(path)
        seed = stats.get("train_seed", o.train_seed) if train_env else None  # a foreign file names neither
        training = Training(
            train_env=train_env,
            train_seed=seed,
            train_steps=stats.get("train_steps", 0),
            train_wall_s=stats.get("train_wall_s", time.perf_counter() - start),
            checkpoint=checkpoint,
            checkpoint_sha256=sha256,
            agent_config=json.dumps(agent.config, sort_keys=True, default=str),
            run_config=spec.run_config,
        )
    else:  # agents that do not learn: every training field empty
        config = json.dumps(agent.config, sort_keys=True, default=str)
        training = Training(agent_config=config, run_config=spec.run_config)
    evaluation = evaluate(agent, spec.env, spec.settings)
    # the device the agent actually ran on, as the agent reports it
    device = str(getattr(agent, "device", o.device)) if agent.learns else None
    row = LeaderboardRow(
        agent=spec.agent,
        env=spec.env,
        env_spec=env_spec_json(spec.env, agent.family.params),
        metrics=evaluation.metrics,
        training=training,
        provenance=Provenance(**provenance(threads=o.threads, device=device), run_id=uuid.uuid4().hex),
    )
    return row, evaluation


@dataclass(frozen=True)
class Registrations:
    """The driver's registry entries a run needs, so a worker process plays the same names.

    A family or agent registered in the driver's code (a notebook, a test) does not exist in
    a fresh worker process; shipping the entries makes it exist there.
    """

    families: tuple[FamilySpec, ...] = ()
    agents: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def for_run(cls, spec: RunSpec) -> Registrations:
        names = dict.fromkeys([spec.env, *([spec.options.train_env] if spec.options.train_env else [])])
        return cls(tuple(get_spec(n) for n in names), ((spec.agent, get_agent_factory(spec.agent)),))

    def install(self) -> None:
        for fam in self.families:
            try:
                same = get_spec(fam.name) == fam
            except UnknownNameError:
                same = False
            if not same:
                register(fam.name, fam.factory, suites=fam.suites, replace=True, **fam.defaults)
        for name, factory in self.agents:
            try:
                same = get_agent_factory(name) is factory
            except UnknownNameError:
                same = False
            if not same:
                register_agent(name, factory, replace=True)


def execute_run(spec: RunSpec, registrations: Registrations | None = None) -> RunResult:
    """One run, anywhere; errors come back as a result instead of ending the sweep."""
    try:
        if registrations is not None:
            registrations.install()
        row, evaluation = evaluate_run(spec)
    except UnsupportedFamilyError as exc:  # declared: this agent does not play this family
        return RunResult(spec, SKIPPED, error=str(exc))
    except (CheckpointError, ContractError) as exc:  # a named fault (a file, a contract): its one line says it all
        return RunResult(spec, FAILED, error=f"{type(exc).__name__}: {exc}")
    except Exception as exc:  # the sweep goes on; the summary names this run and its error
        return RunResult(spec, FAILED, error=f"{type(exc).__name__}: {exc}", detail=traceback.format_exc())
    return RunResult(spec, OK, row, evaluation)


# ============================================================================ backends
class Backend(Protocol):
    def run(self, specs: Sequence[RunSpec]) -> Iterator[RunResult]:
        """Results of ``specs`` in the order they complete."""
        ...

    def close(self) -> None: ...


class LocalBackend:
    """Runs one after another in this process (needs no Ray)."""

    def run(self, specs: Sequence[RunSpec]) -> Iterator[RunResult]:
        for spec in specs:
            yield execute_run(spec)

    def close(self) -> None:
        pass


def check_address(address: str) -> str:
    if not isinstance(address, str) or not _ADDRESS_RE.match(address):
        raise ValueError(
            f"bad Ray address {address!r}: expected 'local' (start a private instance), 'auto' (the running "
            "cluster), host:port (the head's GCS address) or ray://host:port (Ray Client)"
        )
    return address


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise BackendError("the ray backend needs Ray: pip install -e '.[ray]'") from None
    return ray


class RayBackend:
    """Each run is a Ray task of one CPU; a task whose worker died is resubmitted ``max_retries`` times.

    Uses the Ray connection of this process if there is one (a test, a notebook); otherwise
    connects to ``address`` and disconnects on ``close``.
    """

    def __init__(self, address: str = "local", max_retries: int = DEFAULT_MAX_RETRIES):
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ValueError(f"max_retries must be an integer >= 0, got {max_retries!r}")
        check_address(address)
        self.ray = import_ray()
        self.max_retries = max_retries
        self.owns = not self.ray.is_initialized()
        if self.owns:
            if address not in ("local", "auto"):
                _probe(address)
            extra = {"include_dashboard": False} if address == "local" else {}
            try:
                self.ray.init(address=address, logging_level="WARNING", **extra)
            except (ConnectionError, ValueError, RuntimeError, TimeoutError) as exc:
                raise BackendError(f"could not start or reach Ray at {address!r}: {exc}") from None

    def run(self, specs: Sequence[RunSpec]) -> Iterator[RunResult]:
        ray = self.ray
        task = ray.remote(execute_run).options(num_cpus=1, max_retries=self.max_retries, retry_exceptions=False)
        pending = {task.remote(spec, Registrations.for_run(spec)): spec for spec in specs}
        try:
            while pending:
                (ref,), _ = ray.wait(list(pending), num_returns=1)
                spec = pending.pop(ref)
                try:
                    yield ray.get(ref)
                except ray.exceptions.RayError as exc:  # the worker died on every attempt, or the task never ran
                    error = f"{type(exc).__name__}: {_first_line(exc)} (tried {self.max_retries + 1} times)"
                    yield RunResult(spec, FAILED, error=error)
        finally:  # an interrupted sweep leaves no tasks running on a shared cluster
            for ref in pending:
                ray.cancel(ref, force=True)

    def close(self) -> None:
        if self.owns and self.ray.is_initialized():
            self.ray.shutdown()


def _probe(address: str, timeout_s: float = 10.0) -> None:
    """Fail fast when nothing listens at host:port (Ray itself waits minutes for a missing head)."""
    host, port = address.removeprefix("ray://").rsplit(":", 1)
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise BackendError(f"no Ray cluster reachable at {address!r} ({exc}); is `ray start --head` running?") from None


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else repr(exc)


def check_backend(name: str, address: str | None = None) -> None:
    """ValueError unless ``name`` is a backend and ``address`` (ray only) is well formed."""
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; valid backends: {', '.join(BACKENDS)}")
    if address is not None:
        if name != "ray":
            raise ValueError("--address applies to the ray backend only (add --backend ray)")
        check_address(address)


def make_backend(name: str, address: str | None = None, max_retries: int = DEFAULT_MAX_RETRIES) -> Backend:
    """The backend called ``name``; ValueError or BackendError for bad input."""
    check_backend(name, address)
    return LocalBackend() if name == "local" else RayBackend(address or "local", max_retries)


def ray_starmap(fn: Any, arg_tuples: Iterable[tuple]) -> list[Any]:
    """``[fn(*args) for args in arg_tuples]`` as Ray tasks of one CPU, in order.

    A generic shard map, e.g. for ``VSMLAgent.fit(shard_map=ray_starmap)``.  Uses the current
    Ray connection (call ``ray.init`` first, or Ray starts a local instance).
    """
    ray = import_ray()
    task = _REMOTE.get(fn)
    if task is None:  # export each function to the cluster once, not once per call
        task = _REMOTE[fn] = ray.remote(num_cpus=1)(fn)
    return ray.get([task.remote(*args) for args in arg_tuples])


_REMOTE: dict[Any, Any] = {}


# ============================================================================ resume
def _norm_seeds(value: Any) -> str:
    return ";".join(str(int(float(s))) for s in str(value).split(";"))


def _norm_json(value: Any) -> str:
    return json.dumps(json.loads(value), sort_keys=True)


def row_key(row: Mapping[str, Any]) -> tuple[str, str, str, int, str, str]:
    """The run key of a leaderboard row (as ``RunSpec.key``); the schema guarantees every part."""
    return (str(row["agent"]), str(row["env"]), _norm_seeds(row["seeds"]), int(row["n_tasks"]),
            _norm_json(row["env_spec"]), _norm_json(row["run_config"]))  # fmt: skip


def completed_keys(path: str | Path) -> set[tuple]:
    """Keys of the runs the leaderboard at ``path`` holds; LeaderboardError if it is not one."""
    df = leaderboard.read(path)
    return {row_key(r) for _, r in df.iterrows()}


def missing_runs(specs: Sequence[RunSpec], path: str | Path) -> list[RunSpec]:
    done = completed_keys(path)
    return [s for s in specs if s.key not in done]


# ============================================================================ the driver
@dataclass
class SweepReport:
    rows: list[LeaderboardRow] = field(default_factory=list)
    failed: list[RunResult] = field(default_factory=list)
    skipped: list[RunResult] = field(default_factory=list)

    def skip_line(self, verbose: bool = False) -> str:
        """One line for the runs whose agent does not play the distribution ('' when none)."""
        if not self.skipped:
            return ""
        listed = "listed above" if verbose else "--verbose lists them"
        return f"skipped {len(self.skipped)} run(s) whose agent does not play the distribution ({listed})"

    def summary(self) -> str:
        """The failed runs and their errors ('' when none failed)."""
        if not self.failed:
            return ""
        lines = [f"{len(self.failed)} run(s) failed:"]
        lines += [f"  {r.spec.label()}: {r.error}" for r in self.failed]
        return "\n".join(lines)


def run_sweep(
    specs: Sequence[RunSpec],
    backend: Backend,
    results: str | Path | None,
    command: str,
    progress: bool = True,
    verbose: bool = False,
) -> SweepReport:
    """Run ``specs`` on ``backend``; append each complete row to ``results`` (None: write nothing).
    Skipped runs are listed as they come only when ``verbose`` (``summary`` counts them)."""
    report = SweepReport()
    order = {s.key: i for i, s in enumerate(specs)}
    done: list[tuple[int, LeaderboardRow]] = []
    folder = None if results is None else Path(results)
    bar = tqdm(total=len(specs), desc="runs", leave=False, disable=not progress or len(specs) < 2)
    for result in backend.run(specs):
        bar.update()
        if result.status == SKIPPED:
            if verbose:
                tqdm.write(f"skipped {result.spec.agent} on {result.spec.env}: {result.error}", file=sys.stderr)
            report.skipped.append(result)
            continue
        if result.status == OK:
            row = result.row.with_command(command)  # the driver's command; a worker's argv is Ray's
            try:
                if folder is not None:  # one append per run: a later failure loses nothing already done
                    leaderboard.append_rows(folder / leaderboard.LEADERBOARD_FILE, [row])
                    training = row.training
                    plots.write_curves(result.evaluation, folder / "curves", training.train_env, training.train_seed)
                done.append((order[result.spec.key], row))
                continue
            except (OSError, leaderboard.LeaderboardError) as exc:
                result = RunResult(result.spec, FAILED, error=f"could not save the row: {type(exc).__name__}: {exc}")
        tqdm.write(f"failed: {result.spec.label()}: {result.error}\n{result.detail}".rstrip(), file=sys.stderr)
        report.failed.append(result)
    bar.close()
    report.rows = [row for _, row in sorted(done, key=lambda pair: pair[0])]  # the plan's order, for the table
    if folder is not None:
        for env in dict.fromkeys(r["env"] for r in report.rows):
            try:
                plots.plot_env(env, folder / "curves")
            except Exception as exc:  # a plot is a by-product; a concurrent sweep may be rewriting a curve
                print(f"could not plot {env}: {type(exc).__name__}: {exc}", file=sys.stderr)
    return report
