"""Registries of task families and agents, with plugin discovery through entry points.

Built-in families (``envs``) and agents (``baselines``) register themselves exactly as
a user's package does: their modules are named in the entry-point groups
``metarl_bench.families`` and ``metarl_bench.agents`` and are imported on first lookup.
Every family is also registered as the gymnasium id ``metarl_bench/<name>``.

The registry remembers which registrations are built-in (made while our own entry points
load, or of our own code): the contract checkers (``core/checks.py``) trust those and check
a user's registrations the first time they are played.
"""

from __future__ import annotations

import importlib
import inspect
import re
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

import gymnasium as gym

from metarl_bench.core.family import TaskFamily

GYM_NAMESPACE = "metarl_bench"
FAMILY_GROUP = "metarl_bench.families"
AGENT_GROUP = "metarl_bench.agents"
DISTRIBUTION = "metarl-bench"  # our own entry points: the built-ins, loaded first and strictly
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class UnknownNameError(LookupError):
    """A family, suite or agent name that is not registered; the message lists valid ones."""

    def __init__(self, kind: str, name: str, valid: Iterable[str]):
        self.kind, self.name, self.valid = kind, name, sorted(valid)
        super().__init__(f"unknown {kind} {name!r}; valid {kind}s: {', '.join(self.valid)}")

    def __str__(self) -> str:  # LookupError would repr() the message
        return self.args[0]


@dataclass(frozen=True)
class FamilySpec:
    """What ``register`` recorded: enough to rebuild the family from its name alone."""

    name: str
    factory: Callable[..., TaskFamily]
    defaults: dict[str, Any]
    suites: tuple[str, ...] = ()

    @property
    def gym_id(self) -> str:
        return f"{GYM_NAMESPACE}/{self.name}"

    def make(self, **overrides: Any) -> TaskFamily:
        kwargs = {**self.defaults, **overrides}
        try:
            params = inspect.signature(self.factory).parameters
        except (TypeError, ValueError):  # builtins without signatures
            params = {}
        takes_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
        unknown = [k for k in kwargs if params and not takes_any and k not in params]
        if unknown:
            allowed = [k for k, p in params.items() if p.kind is p.POSITIONAL_OR_KEYWORD or p.kind is p.KEYWORD_ONLY]
            raise ValueError(f"{self.name}: unknown parameter(s) {unknown}; allowed: {allowed}")
        family = self.factory(**kwargs)
        if not isinstance(family, TaskFamily):
            raise TypeError(f"{self.name}: factory returned {type(family).__name__}, not a TaskFamily")
        return family


@dataclass
class _Registry:
    families: dict[str, FamilySpec] = field(default_factory=dict)
    suites: dict[str, list[str]] = field(default_factory=dict)
    agents: dict[str, Callable[..., Any]] = field(default_factory=dict)
    loaded: set[str] = field(default_factory=set)
    builtin: set[tuple[str, str]] = field(default_factory=set)  # ("family" | "agent", name)
    loading_builtin: bool = False  # True while our own entry points import


_REG = _Registry()


def _load_group(group: str) -> None:
    """Import every module named in an entry-point group, once: the built-ins first.

    The built-in families and agents are found through the same entry points as a user's
    plugins (the core names no concrete module).  They load before any plugin, and a
    failure among them is an error; a broken plugin only warns.
    """
    if group in _REG.loaded:
        return
    _REG.loaded.add(group)
    eps = list(entry_points(group=group))
    builtin = [ep for ep in eps if ep.dist is not None and ep.dist.name == DISTRIBUTION]
    if not builtin:
        _REG.loaded.discard(group)
        raise RuntimeError(
            f"no built-in {group} entry points: metarl-bench is not installed (run `pip install -e .` "
            "in its repository, or `pip install metarl-bench`)"
        )
    previous = _REG.loading_builtin  # restored: a built-in module may load the other group
    try:
        _REG.loading_builtin = True
        for ep in builtin:
            ep.load()
        _REG.loading_builtin = False  # what a plugin registers is a user's registration
        for ep in eps:
            if ep in builtin:
                continue
            try:
                ep.load()
            except Exception as exc:  # a broken plugin must not break the framework
                warnings.warn(f"metarl_bench: could not load plugin {ep.value!r} ({group}): {exc!r}", stacklevel=2)
    finally:
        _REG.loading_builtin = previous


def load_families() -> None:
    _load_group(FAMILY_GROUP)


def _factory_id(factory: Any) -> str | None:
    """``module:qualname`` of a factory (a lazy string is one already); None when it has none."""
    if isinstance(factory, str):
        return factory
    module, qualname = getattr(factory, "__module__", None), getattr(factory, "__qualname__", None)
    if not module or not qualname or "<lambda>" in qualname:  # two lambdas share a name, not their code
        return None
    return f"{module}:{qualname}"


def _same_factory(a: Any, b: Any) -> bool:
    """The same class, or its redefinition (a notebook cell run again gives a new class object)."""
    return a is b or (_factory_id(a) is not None and _factory_id(a) == _factory_id(b))


def _mark(kind: str, name: str, factory: Any) -> None:
    """Record whether a registration is built-in: made while our own entry points load, or of
    our own code (which covers a built-in module imported directly before the first lookup)."""
    module = (_factory_id(factory) or "").split(":")[0]
    if _REG.loading_builtin or module == "metarl_bench" or module.startswith("metarl_bench."):
        _REG.builtin.add((kind, name))
    else:
        _REG.builtin.discard((kind, name))


def is_builtin(kind: str, name: str) -> bool:
    """True when ``name`` (``kind`` "family" or "agent") is a built-in registration, which the
    contract checkers trust; False for a user's registration (or an unknown name)."""
    return (kind, name) in _REG.builtin


def _equal(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except (TypeError, ValueError):  # e.g. arrays among the defaults: not provably the same
        return False


def _check_name(kind: str, name: Any) -> str:
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ValueError(f"{kind} name must be a non-empty string of letters, digits, '.', '_' or '-', got {name!r}")
    return name


def register(
    name: str,
    family: Callable[..., TaskFamily] | None = None,
    *,
    suites: Iterable[str] = (),
    replace: bool = False,
    **defaults: Any,
) -> Any:
    """Register a task distribution ``name`` = ``family(**defaults)``.

    Also usable as a class decorator: ``@register("my-bandit", k=3)``.  The family is
    built once here, so invalid defaults fail now and leave nothing registered.  The
    distribution also becomes the gymnasium id ``metarl_bench/<name>``.  The same class with
    the same defaults and suites again (a notebook cell run twice) is a no-op, or takes the
    redefined class; anything else under a taken name needs ``replace=True``.
    """
    if family is None:
        return lambda fam: (register(name, fam, suites=suites, replace=replace, **defaults), fam)[1]
    _check_name("family", name)
    load_families()  # a built-in name is taken whatever the order of registration
    suites = tuple(suites)
    for suite in suites:
        _check_name("suite", suite)
        if suite in _REG.families:
            raise ValueError(f"suite name {suite!r} is already a family name")
    if name in _REG.suites:
        raise ValueError(f"family name {name!r} is already a suite name")
    old = _REG.families.get(name)
    if old is not None and not replace:
        same = _same_factory(old.factory, family) and _equal(old.defaults, defaults) and old.suites == suites
        if not same:
            raise ValueError(f"family {name!r} is already registered; pass replace=True to replace it")
        if old.factory is family:  # the very same registration again (a cell run twice): nothing to do
            return family
        # else the same class redefined (the cell was edited and run again): replaced below
    if not callable(family):
        raise TypeError(f"family must be a TaskFamily subclass or factory, got {family!r}")
    spec = FamilySpec(name, family, dict(defaults), suites)
    spec.make()  # validates the defaults; raises before anything is recorded

    gym_kwargs = {"family": name, **defaults}
    if spec.gym_id in gym.registry:
        del gym.registry[spec.gym_id]
    gym.register(
        id=spec.gym_id,
        entry_point="metarl_bench.core.gym_env:SingleTrialEnv",
        vector_entry_point="metarl_bench.core.gym_env:TrialVectorEnv",
        kwargs=gym_kwargs,
        disable_env_checker=True,  # checked by the test suite; the check costs a step
    )
    old = _REG.families.get(name)
    if old is not None:
        for suite in old.suites:
            _REG.suites[suite].remove(name)
    _REG.families[name] = spec
    _mark("family", name, family)
    for suite in suites:
        members = _REG.suites.setdefault(suite, [])
        if name not in members:
            members.append(name)
    return family


def unregister(name: str) -> None:
    """Remove a family (and its gymnasium id); mainly for tests and notebooks."""
    spec = get_spec(name)
    del _REG.families[name]
    _REG.builtin.discard(("family", name))
    for suite in spec.suites:
        _REG.suites[suite].remove(name)
        if not _REG.suites[suite]:
            del _REG.suites[suite]
    gym.registry.pop(spec.gym_id, None)


def get_spec(name: str) -> FamilySpec:
    load_families()
    try:
        return _REG.families[name]
    except KeyError:
        raise UnknownNameError("family", name, _REG.families) from None


def make_family(name: str, **overrides: Any) -> TaskFamily:
    """Build the task family registered as ``name``, with parameter overrides."""
    return get_spec(name).make(**overrides)


def make(name: str, num_trials: int = 1, seed: Any = None, **overrides: Any):
    """A batched :class:`~metarl_bench.core.trial.TrialEnv` of ``num_trials`` trials of ``name``."""
    from metarl_bench.core.trial import TrialEnv

    return TrialEnv(make_family(name, **overrides), num_trials=num_trials, seed=seed)


def list_families(suite: str | None = None) -> list[str]:
    load_families()
    if suite is None:
        return sorted(_REG.families)
    if suite not in _REG.suites:
        raise UnknownNameError("suite", suite, _REG.suites)
    return list(_REG.suites[suite])


def list_suites() -> list[str]:
    load_families()
    return sorted(_REG.suites)


def resolve_envs(expr: str) -> list[str]:
    """Expand ``"bandits"``, ``"a,b"`` or a single name into distribution names, in order."""
    load_families()
    names: list[str] = []
    for part in (p.strip() for p in expr.split(",")):
        if not part:
            continue
        if part in _REG.suites:
            names.extend(_REG.suites[part])
        elif part in _REG.families:
            names.append(part)
        else:
            raise UnknownNameError("env", part, [*_REG.families, *_REG.suites])
    if not names:
        raise ValueError("no task distribution named; give a name, a suite or a comma list")
    return list(dict.fromkeys(names))


# ----------------------------------------------------------------------------- agents


def register_agent(name: str, factory: Callable[..., Any] | str | None = None, *, replace: bool = False) -> Any:
    """Register an agent class (or factory) under ``name``; usable as a decorator.

    ``factory`` may be a ``"module:attribute"`` string, imported on first use, so that
    agents built on torch or SB3 cost nothing until they are asked for.  The same class again
    (or its redefinition) is a no-op; another factory under a taken name needs ``replace=True``.
    """
    if factory is None:
        return lambda f: (register_agent(name, f, replace=replace), f)[1]
    _check_name("agent", name)
    _load_group(AGENT_GROUP)  # a built-in name is taken whatever the order of registration
    if isinstance(factory, str):
        if factory.count(":") != 1:
            raise ValueError(f"a lazy agent factory must read 'module:attribute', got {factory!r}")
    elif not callable(factory):
        raise TypeError(f"agent factory must be callable, got {factory!r}")
    old = _REG.agents.get(name)
    if old is not None and not replace:
        if not _same_factory(old, factory):
            raise ValueError(f"agent {name!r} is already registered; pass replace=True to replace it")
        if old is factory or isinstance(factory, str):  # the same again (a lazy string may be resolved by now)
            return factory
    _REG.agents[name] = factory
    _mark("agent", name, factory)
    return factory


def user_agent_name(cls: type) -> str | None:
    """The name a user registered the agent class ``cls`` under; None for a built-in agent or a
    class no one registered (the contract checkers check only the former's agents).  Loads
    nothing: a user's registration has loaded the agent group already."""
    for name, factory in _REG.agents.items():
        if _same_factory(factory, cls) and not is_builtin("agent", name):
            return name
    return None


def list_agents() -> list[str]:
    _load_group(AGENT_GROUP)
    return sorted(_REG.agents)


def get_agent_factory(name: str) -> Callable[..., Any]:
    _load_group(AGENT_GROUP)
    try:
        factory = _REG.agents[name]
    except KeyError:
        raise UnknownNameError("agent", name, _REG.agents) from None
    if isinstance(factory, str):
        module, attr = factory.split(":")
        factory = _REG.agents[name] = getattr(importlib.import_module(module), attr)
    return factory


def make_agent(name: str, family: TaskFamily, **config: Any) -> Any:
    """Build agent ``name`` for playing ``family`` (its action and observation spaces)."""
    return get_agent_factory(name)(family, **config)


def resolve_agents(expr: str) -> list[str]:
    """``"all"``, a comma list or a single agent name, validated."""
    valid = list_agents()
    if expr.strip() == "all":
        return valid
    names = [p.strip() for p in expr.split(",") if p.strip()]
    for n in names:
        if n not in _REG.agents:
            raise UnknownNameError("agent", n, valid)
    if not names:
        raise ValueError("no agent named")
    return list(dict.fromkeys(names))


# ============================================================================ references
def reference_kind(agent: str) -> str | None:
    """Which reference an agent *is* (``bayes``, ``oracle``, ``random``), or None for a contestant:
    the one rule the leaderboard's "best", the aggregates, the plots and the report follow.

    Told by the registered class, never by name: the Bayes reference declares ``is_reference``,
    the oracle ``privileged``, and random play is the core's own ``RandomAgent``."""
    from metarl_bench.core.agent import RandomAgent  # core.agent loads the registry's users

    try:
        factory = get_agent_factory(agent)
    except (UnknownNameError, ImportError):
        return None
    if getattr(factory, "is_reference", False):
        return "bayes"
    if getattr(factory, "privileged", False):
        return "oracle"
    if factory is RandomAgent or agent == RandomAgent.name:
        return "random"
    return None


def reference_agents(agents: Iterable[str]) -> set[str]:
    """The agents among ``agents`` that are references (Bayes, oracle, random), not contestants."""
    return {a for a in set(agents) if reference_kind(a) is not None}
