"""The leaderboard row: one run of one agent on one distribution, typed and checked.

A row is four parts, each a frozen dataclass whose fields are the CSV's columns:

* the run's identity (:class:`LeaderboardRow` itself: agent, distribution and its parameters);
* :class:`Metrics`, what the evaluator measured and on which tasks (``metarl_bench.evaluation.evaluate``);
* :class:`Training`, how a learning agent got ready (empty for agents that do not learn);
* :class:`Provenance`, where the row came from.

:data:`COLUMNS` (the CSV header, in order), :data:`SCHEMA` (what ``records.csvfile`` checks
on every read and append) and every reader of the leaderboard take the columns from here.
A numeric field holds a finite number or nothing (``None``, an empty CSV field); NaN and
infinity are refused wherever they come from.  A row is addressable by its column names
(``row["return"]``), the names of the file and of ``results/README.md``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, ClassVar

from metarl_bench.core.registry import get_spec
from metarl_bench.records.csvfile import Schema

TEXT, INT, FLOAT, JSON = "text", "int", "float", "json"


def column(kind: str, required: bool = False, name: str = "", doc: str = "") -> Any:
    """A field that is a CSV column: its kind, whether it may be empty, and its CSV name if it
    is not the field's (``return`` is a Python keyword)."""
    default = None if kind in (INT, FLOAT) else ""
    return field(default=default, metadata={"kind": kind, "required": required, "name": name, "doc": doc})


def _column_fields(cls: type) -> list[Any]:
    return [f for f in fields(cls) if "kind" in f.metadata]


def _name(f: Any) -> str:
    return f.metadata["name"] or f.name


class RowPart(Mapping):
    """A dataclass whose fields are columns: checked on construction, readable by column name."""

    def __post_init__(self) -> None:
        for f in _column_fields(type(self)):
            object.__setattr__(self, f.name, _checked(f, getattr(self, f.name)))

    @classmethod
    def columns(cls) -> list[str]:
        return [_name(f) for f in _column_fields(cls)]

    @classmethod
    def own_values(cls, record: Mapping[str, Any]) -> dict[str, Any]:
        """This class's own fields from a CSV record (column name -> text or value); empty is ``None``."""
        return {f.name: _parse(f, record.get(_name(f))) for f in _column_fields(cls)}

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> RowPart:
        return cls(**cls.own_values(record))

    def record(self) -> dict[str, Any]:
        return {_name(f): getattr(self, f.name) for f in _column_fields(type(self))}

    def __getitem__(self, name: str) -> Any:
        return self.record()[name]

    def __iter__(self):
        return iter(self.columns())

    def __len__(self) -> int:
        return len(self.columns())


def _parse(f: Any, value: Any) -> Any:
    kind = f.metadata["kind"]
    if value is None or (isinstance(value, str) and value == "") or (isinstance(value, float) and math.isnan(value)):
        return None if kind in (INT, FLOAT) else ""
    if kind in (INT, FLOAT):  # an INT column's value is checked whole in _checked
        try:
            return float(value)
        except ValueError:
            raise ValueError(f"leaderboard column {_name(f)!r} must be a number, got {str(value)[:40]!r}") from None
    return str(value)


def _checked(f: Any, value: Any) -> Any:
    kind, name = f.metadata["kind"], _name(f)
    where = f"leaderboard column {name!r}"
    if kind in (INT, FLOAT):
        if value is None:
            if f.metadata["required"]:
                raise ValueError(f"{where} is required (a number), got nothing")
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) and not hasattr(value, "__float__"):
            raise ValueError(f"{where} must be a number, got {value!r}")
        number = float(value)
        if not math.isfinite(number):
            raise ValueError(f"{where} must be a finite number or empty, got {value!r}")
        if kind == INT:
            if number != int(number):
                raise ValueError(f"{where} must be an integer, got {value!r}")
            return int(number)
        return number
    if not isinstance(value, str):
        raise ValueError(f"{where} must be text, got {type(value).__name__} {value!r}")
    if f.metadata["required"] and not value:
        raise ValueError(f"{where} is required, got an empty value")
    if kind == JSON and value:
        try:
            json.loads(value)
        except ValueError:
            raise ValueError(f"{where} must be JSON, got {value[:60]!r}") from None
    return value


@dataclass(frozen=True, kw_only=True)
class Metrics(RowPart):
    """What the evaluator measured on the held-out tasks (ARCHITECTURE.md, definitions)."""

    seeds: str = column(TEXT, required=True, doc="evaluation seeds, ;-separated")
    n_tasks: int = column(INT, required=True, doc="held-out tasks")
    return_: float = column(FLOAT, required=True, name="return", doc="mean trial return")
    return_ci_low: float | None = column(FLOAT)
    return_ci_high: float | None = column(FLOAT)
    score: float | None = column(FLOAT, doc="0 random play, 100 Bayes-optimal; empty with score_note")
    score_ci_low: float | None = column(FLOAT)
    score_ci_high: float | None = column(FLOAT)
    score_note: str = column(TEXT, doc="why the score is empty")
    oracle_return: float = column(FLOAT, required=True)
    bayes_return: float | None = column(FLOAT, doc="exact expected return, or the measured bound")
    bayes_method: str = column(TEXT, required=True, doc="exact, lower-bound:<policy> or none")
    bayes_measured_return: float | None = column(FLOAT)
    random_return: float = column(FLOAT, required=True)
    regret: float = column(FLOAT, required=True)
    regret_ci_low: float | None = column(FLOAT)
    regret_ci_high: float | None = column(FLOAT)
    bayes_gap: float | None = column(FLOAT)
    adapt_steps: float | None = column(FLOAT, doc="empty when the agent never gets 80% of the way")
    bayes_adapt_steps: float | None = column(FLOAT)
    eval_wall_s: float | None = column(FLOAT)


@dataclass(frozen=True, kw_only=True)
class Training(RowPart):
    """How a learning agent got ready: trained here, or loaded from a checkpoint.  Agents that
    do not learn leave every field empty (``run_config`` is ``{}``)."""

    train_env: str = column(TEXT, doc="the distribution it was meta-trained on")
    train_seed: int | None = column(INT, doc="the training seed (empty: the agent does not learn)")
    train_steps: int | None = column(INT)
    train_wall_s: float | None = column(FLOAT)
    checkpoint: str = column(TEXT, doc="the checkpoint played (a shipped name, or a path)")
    checkpoint_sha256: str = column(TEXT, doc="its hash (empty in rows made before hashes were kept)")
    agent_config: str = column(JSON, doc="the agent's settings")
    run_config: str = column(JSON, required=True, doc="the requested training options (JSON)")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.train_env and self.train_seed is None:
            raise ValueError(
                f"leaderboard column 'train_seed' is required for an agent trained on {self.train_env!r}, got nothing"
            )


@dataclass(frozen=True, kw_only=True)
class Provenance(RowPart):
    """Where the row came from (``metarl_bench.records.provenance``)."""

    device: str = column(TEXT)
    threads: int | None = column(INT)
    version: str = column(TEXT, required=True)
    commit: str = column(TEXT)
    command: str = column(TEXT, required=True)
    timestamp: str = column(TEXT, required=True)
    run_id: str = column(TEXT, required=True)


@dataclass(frozen=True, kw_only=True)
class LeaderboardRow(RowPart):
    """One run: its identity, then its metrics, training and provenance."""

    agent: str = column(TEXT, required=True)
    env: str = column(TEXT, required=True)
    env_spec: str = column(JSON, required=True, doc="gymnasium id and parameters")
    metrics: Metrics
    training: Training
    provenance: Provenance

    PARTS: ClassVar[tuple[type[RowPart], ...]] = (Metrics, Training, Provenance)

    @classmethod
    def columns(cls) -> list[str]:
        return [*super().columns(), *(c for part in cls.PARTS for c in part.columns())]

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> LeaderboardRow:
        """The row from a CSV record; ValueError naming the column that does not fit."""
        parts = {"metrics": Metrics, "training": Training, "provenance": Provenance}
        return cls(**cls.own_values(record), **{k: part.from_record(record) for k, part in parts.items()})

    def record(self) -> dict[str, Any]:
        out = super().record()
        for part in (self.metrics, self.training, self.provenance):
            out.update(part.record())
        return out

    def with_command(self, command: str) -> LeaderboardRow:
        """The same row, recorded as made by ``command`` (the driver's, not a worker's argv)."""
        return replace(self, provenance=replace(self.provenance, command=command))


def _kinds() -> dict[str, tuple[str, bool]]:
    out = {}
    for cls in (LeaderboardRow, *LeaderboardRow.PARTS):
        for f in fields(cls):
            if "kind" in f.metadata:
                out[f.metadata["name"] or f.name] = (f.metadata["kind"], f.metadata["required"])
    return out


COLUMNS: tuple[str, ...] = tuple(LeaderboardRow.columns())
KINDS = _kinds()
SCHEMA = Schema(
    "leaderboard",
    COLUMNS,
    upgrade="a leaderboard of an older schema is rewritten once by: python -m metarl_bench.records.migrate {path}",
    numeric=frozenset(c for c, (kind, _) in KINDS.items() if kind in (INT, FLOAT)),
    required=frozenset(c for c, (_, required) in KINDS.items() if required),
)
# A row's identity for "the newest row": one contestant trained on one distribution, played on one.
ROW_IDENTITY = ("agent", "train_env", "train_seed", "env")


def env_spec_json(env: str, params: dict[str, Any]) -> str:
    """The distribution's gymnasium id and parameters, as a row records them (JSON)."""
    return json.dumps({"id": get_spec(env).gym_id, "kwargs": params}, sort_keys=True)
