"""``--agent-config``: an agent's settings from the command line or a TOML file, checked before any work.

    --agent-config rl2:lstm_hidden_size=256,gamma=0.99     # repeatable, one agent per flag
    --agent-config settings.toml                          # [rl2] lstm_hidden_size = 256

The keys are checked against the agent's settings (its ``config_class`` dataclass where it
has one, else the keyword parameters of its constructor), the text of each value is read
as that setting's type, and the agent is built once with them, so that its own range
checks run too.  Every fault is a ``ValueError`` naming the agent, the key and what is
allowed; the command turns it into one line and exit status 2.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import math
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from metarl_bench.core.registry import get_agent_factory, get_spec

FLAG = "--agent-config"
SKIPPED_PARAMETERS = ("self", "family")  # the constructor's own, not settings


def settings_schema(agent: str) -> dict[str, Any] | None:
    """The settings ``agent`` takes, name -> type (``Any`` where unannotated); None for a
    factory without a signature (then only building the agent can check them)."""
    factory = get_agent_factory(agent)
    schema: dict[str, Any] = {}
    config_class = getattr(factory, "config_class", None)
    if config_class is not None and dataclasses.is_dataclass(config_class):
        hints = typing.get_type_hints(config_class)
        schema.update({f.name: hints.get(f.name, Any) for f in dataclasses.fields(config_class)})
    init = factory.__init__ if inspect.isclass(factory) else factory
    try:
        params = inspect.signature(init).parameters
    except (TypeError, ValueError):  # builtins without signatures
        return schema or None
    try:
        hints = typing.get_type_hints(init)
    except (NameError, TypeError):  # annotations naming what the module imports only for type checkers
        hints = {}
    for name, p in params.items():
        # ``**config`` names no setting: an agent whose settings are free-form declares a config_class
        if name not in SKIPPED_PARAMETERS and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            schema[name] = hints.get(name, Any)
    return schema


def parse_agent_settings(values: Sequence[str], agents: Sequence[str], env: str) -> dict[str, dict[str, Any]]:
    """The settings of every ``--agent-config`` value, per agent, checked; ``env`` builds each agent once."""
    settings: dict[str, dict[str, Any]] = {}
    for value in values:
        for agent, given in _read(value).items():
            if agent not in agents:
                raise ValueError(f"{FLAG}: agent {agent!r} is not in this run; its agents are {list(agents)}")
            repeated = sorted(set(given) & set(settings.get(agent, {})))
            if repeated:
                raise ValueError(f"{FLAG}: {agent} setting(s) {repeated} given twice")
            settings.setdefault(agent, {}).update(given)
    for agent, given in settings.items():
        settings[agent] = _checked(agent, given)
        try:
            get_agent_factory(agent)(get_spec(env).make(), **settings[agent])
        except (TypeError, ValueError) as exc:
            said = str(exc)
            raise ValueError(f"{FLAG}: {said if said.startswith(agent) else f'{agent}: {said}'}") from None
    return settings


def _read(value: str) -> dict[str, dict[str, Any]]:
    """One flag's value: ``agent:key=value,...`` (values as text) or a TOML file of tables."""
    if value.endswith(".toml"):
        return _read_toml(Path(value))
    agent, sep, pairs = value.partition(":")
    if not sep or not agent.strip():
        raise ValueError(f"{FLAG} {value!r}: expected AGENT:KEY=VALUE[,KEY=VALUE...] or a .toml file")
    given: dict[str, Any] = {}
    for pair in pairs.split(","):
        key, eq, text = pair.partition("=")
        if not eq or not key.strip():
            raise ValueError(f"{FLAG} {value!r}: {pair!r} is not KEY=VALUE")
        if key.strip() in given:
            raise ValueError(f"{FLAG} {value!r}: {key.strip()!r} given twice")
        given[key.strip()] = _Text(text.strip())
    return {agent.strip(): given}


def _read_toml(path: Path) -> dict[str, dict[str, Any]]:
    try:
        import tomllib
    except ImportError:  # Python 3.10
        raise ValueError(f"{FLAG} {path}: TOML files need Python 3.11 or later; use AGENT:KEY=VALUE") from None
    if not path.is_file():
        raise ValueError(f"{FLAG} {path}: no such file")
    try:
        data = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{FLAG} {path}: not valid TOML ({exc})") from None
    bad = [k for k, v in data.items() if not isinstance(v, dict)]
    if bad:
        raise ValueError(f"{FLAG} {path}: expected one [agent] table per agent, found plain key(s) {bad}")
    return data


class _Text(str):
    """A value typed on the command line: read as the setting's type (a TOML value is typed already)."""


def _checked(agent: str, given: dict[str, Any]) -> dict[str, Any]:
    schema = settings_schema(agent)
    if schema is None:
        return {k: _parse_json(v) if isinstance(v, _Text) else v for k, v in given.items()}
    unknown = sorted(set(given) - set(schema))
    if unknown:
        allowed = sorted(schema) if schema else "none (it takes no settings)"
        raise ValueError(f"{FLAG}: unknown {agent} setting(s) {unknown}; allowed: {allowed}")
    return {k: _as_type(agent, k, v, schema[k]) for k, v in given.items()}


def _as_type(agent: str, key: str, value: Any, kind: Any) -> Any:
    """``value`` as a ``kind`` (int, float, bool, str, optional ones, else JSON), or ValueError naming the setting."""
    options = typing.get_args(kind) if typing.get_origin(kind) in (typing.Union, types.UnionType) else (kind,)
    if isinstance(value, _Text) and value.lower() in ("none", "null") and type(None) in options:
        return None
    for option in options:
        try:
            return _one(value, option)
        except (TypeError, ValueError):
            continue
    names = " or ".join(getattr(o, "__name__", str(o)) for o in options)
    raise ValueError(f"{FLAG}: {agent} setting {key!r} must be {names}, got {str(value)!r}")


def _one(value: Any, kind: Any) -> Any:
    text = value if isinstance(value, _Text) else None
    if kind is bool:
        if text is not None and text.lower() in ("true", "false"):
            return text.lower() == "true"
        if isinstance(value, bool) and text is None:
            return value
    elif kind is int:
        if text is not None:
            return int(text)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif kind is float:
        number = float(text) if text is not None else value
        if isinstance(number, int | float) and not isinstance(number, bool) and math.isfinite(number):
            return float(number)
    elif kind is str:
        return str(value)
    elif kind is type(None):
        pass
    else:  # lists, dicts, unannotated: JSON on the command line, as is from TOML
        return _parse_json(value) if text is not None else value
    raise ValueError(value)


def _parse_json(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return str(text)
