"""Contract checkers, in the spirit of Gymnasium's env checker: a few trials, a few steps.

``check_family`` and ``check_agent`` play a handful of trials for a few steps and raise
:class:`ContractError` at the first breach of the contract (``core/family.py``,
``core/agent.py``), naming the family or agent, the call and the field, so that a faulty
user family or agent fails in milliseconds with one line instead of with a numpy broadcast
error, a row of NaNs or a silently wrong row.  The evaluator runs them (``check_first_play``)
the first time a user-registered family or agent is played, once per class and name per
process; built-in registrations are trusted and pay nothing.
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import fields, is_dataclass
from typing import Any

import numpy as np

from metarl_bench.core.agent import Agent
from metarl_bench.core.family import Arrays, TaskFamily
from metarl_bench.core.registry import get_spec, is_builtin, make_agent, user_agent_name
from metarl_bench.core.trial import TrialEnv, validate_actions

CHECK_TRIALS = 7  # unlike the common action counts and grid sizes, so a missing trial axis shows
OTHER_TRIALS = 3  # a second batch size: memory arrays that grow with it must hold it as an axis
CHECK_STEPS = 16
SEED = 24  # the checks are deterministic: the same fault, the same message


class ContractError(ValueError):
    """A family or agent that breaks its contract; the message names who, the call and the field.

    A ``ValueError``, so every command that reports bad input reports it in one line."""

    def __init__(self, subject: str, call: str, field: str, problem: str):
        self.subject, self.call, self.field, self.problem = subject, call, field, problem
        super().__init__(f"{subject}, {call}, {field}: {problem}")

    def __reduce__(self) -> tuple[Any, ...]:  # pickles whole (a Ray worker may send it back)
        return type(self), (self.subject, self.call, self.field, self.problem)


# ============================================================================ families
def check_family(family: TaskFamily, name: str | None = None) -> None:
    """Play ``CHECK_TRIALS`` trials of ``family`` for a few steps; raise :class:`ContractError`
    at the first fault: spaces, tasks and state without the leading trial axis, observations
    not ``(num_trials, *obs_shape)``, rewards not ``(num_trials,)``, NaN or inf anywhere they
    are returned.  ``name``: the registered name, for the message."""
    who = f"family {name!r}" if name else f"family {type(family).__name__}"
    _check_spaces(family, who)
    n, rng = CHECK_TRIALS, np.random.default_rng(SEED)
    tasks = _batched(family.sample_tasks(rng, n), n, who, "sample_tasks()", "tasks")
    state = _batched(family.init_state(tasks, rng), n, who, "init_state()", "state")
    state = _batched(family.start_episode(tasks, state), n, who, "start_episode()", "state")
    _per_trial(family.oracle_return(tasks), n, who, "oracle_return()", "its value")
    random_return = family.random_return(tasks)
    if random_return is not None:
        _per_trial(random_return, n, who, "random_return()", "its value")
    for t in range(min(family.trial_length, CHECK_STEPS)):
        _observation(family.observe(tasks, state), family, n, who, f"observe() at t={t}")
        state = _step(family, tasks, state, rng.integers(0, family.num_actions, n), who, f"step() at t={t}")
        if (t + 1) % family.horizon == 0 and t + 1 < family.trial_length:
            state = _batched(family.start_episode(tasks, state), n, who, f"start_episode() after t={t}", "state")


def _check_spaces(family: TaskFamily, who: str) -> None:
    for attr in ("num_actions", "horizon", "episodes_per_trial"):
        value = getattr(family, attr, None)
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ContractError(who, "attributes", attr, f"{value!r}; expected an integer >= 1")
    shape = getattr(family, "obs_shape", None)
    if not isinstance(shape, tuple) or not all(isinstance(d, (int, np.integer)) and d >= 0 for d in shape):
        raise ContractError(who, "attributes", "obs_shape", f"{shape!r}; expected a tuple of integers")


def _step(family: TaskFamily, tasks: Arrays, state: Arrays, actions: np.ndarray, who: str, call: str) -> Arrays:
    out = family.step(tasks, state, actions)
    if not isinstance(out, tuple) or len(out) != 2:
        raise ContractError(who, call, "result", f"a {type(out).__name__}; expected the pair (state, rewards)")
    _per_trial(out[1], len(actions), who, call, "rewards")
    return _batched(out[0], len(actions), who, call, "state")


def _batched(arrays: Any, n: int, who: str, call: str, what: str) -> Arrays:
    """Tasks or state: a dict whose every array has the leading trial axis.  State may also be
    trial-major flat (``n * m`` rows, as the tabular MDPs' noise table); tasks may not (the trial
    loop checks ``len`` of every task array)."""
    if not isinstance(arrays, Mapping):
        raise ContractError(who, call, what, f"a {type(arrays).__name__}; expected a dict of arrays")
    for key, value in arrays.items():
        shape = np.shape(value)
        if not shape or (shape[0] != n if what == "tasks" else shape[0] % n or not shape[0]):
            flat = "" if what == "tasks" else f" (or {n} * m rows, trial-major)"
            raise ContractError(
                who, call, f"{what}[{key!r}]",
                f"shape {shape} for {n} trials; every {what} array needs the leading trial axis ({n}, ...){flat}",
            )  # fmt: skip
    return arrays


def _per_trial(values: Any, n: int, who: str, call: str, what: str) -> None:
    """Rewards or returns: one finite number per trial."""
    arr = np.asarray(values)
    if arr.shape != (n,):
        raise ContractError(who, call, what, f"shape {arr.shape} for {n} trials; expected ({n},), one per trial")
    _numeric_and_finite(arr, who, call, what)


def _observation(obs: Any, family: TaskFamily, n: int, who: str, call: str) -> None:
    arr = np.asarray(obs)
    expected = (n, *family.obs_shape)
    if arr.shape != expected:
        raise ContractError(
            who, call, "observation",
            f"shape {arr.shape} for {n} trials; expected {expected} = (num_trials, *obs_shape)",
        )  # fmt: skip
    _numeric_and_finite(arr, who, call, "observation")


def _numeric_and_finite(arr: np.ndarray, who: str, call: str, what: str) -> None:
    if arr.dtype.kind not in "biuf":
        raise ContractError(who, call, what, f"dtype {arr.dtype}; expected numbers")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        where = tuple(int(i) for i in np.argwhere(~np.isfinite(arr))[0])
        index = f" (index {where})" if len(where) > 1 else ""
        raise ContractError(who, call, what, f"{arr[where]} at trial {where[0]}{index}; expected finite numbers")


# ============================================================================ agents
def check_agent(agent: Agent, family: TaskFamily | None = None, name: str | None = None) -> None:
    """Play ``agent`` on ``family`` (default: the family it was built for) for a few steps of
    ``CHECK_TRIALS`` trials; raise :class:`ContractError` at the first fault: ``reset`` memory
    whose arrays grow with the number of trials but do not hold it as an axis, or that is not
    fresh (a second reset after play differs from the first), ``act`` changing the memory it was given (numpy arrays,
    torch tensors and random generators inside dicts, lists, tuples and dataclasses are
    compared), and actions of the wrong shape, dtype or range.  ``name``: for the message."""
    family = agent.family if family is None else family
    who = f"agent {name or agent.name!r}"
    _check_batch(agent, family, who)
    env = TrialEnv(family, num_trials=CHECK_TRIALS)
    obs = env.reset(seed=SEED)
    memory = _reset(agent, CHECK_TRIALS, env.host_tasks)
    first = _snapshot(memory)
    for t in range(min(family.trial_length, CHECK_STEPS)):
        obs, memory = _act(agent, obs, memory, family, who, f"act() at t={t}", env)
    again = _snapshot(_reset(agent, CHECK_TRIALS, env.host_tasks))
    changed = _difference(first, again)
    if changed is not None:
        raise ContractError(
            who, "reset() after play", changed,
            "differs from what reset() gave for the same rng before the play; reset must return fresh memory "
            "(nothing carried over from earlier trials, randomness only from its rng)",
        )  # fmt: skip


def _reset(agent: Agent, n: int, tasks: Arrays) -> Any:
    # privileged agents (the oracle) are told the tasks, as the evaluator tells them
    return agent.reset(n, rng=np.random.default_rng(SEED), tasks=tasks if agent.privileged else None)


def _check_batch(agent: Agent, family: TaskFamily, who: str) -> None:
    """Memory arrays whose shape depends on the number of trials must hold it as an axis (any
    axis: a torch LSTM state is (layers, trials, hidden)); e.g. not ``num_trials + 1`` rows."""
    sizes = (CHECK_TRIALS, OTHER_TRIALS)
    trees = [dict(_leaves(_reset(agent, n, family.sample_tasks(np.random.default_rng(SEED), n)))) for n in sizes]
    for path, big in trees[0].items():
        small = trees[1].get(path)
        if not (_is_array(big) and _is_array(small)):
            continue
        shapes = tuple(np.shape(big)), tuple(np.shape(small))
        if not _batch_axis_ok(*shapes, sizes):
            raise ContractError(
                who, "reset()", path,
                f"shape {shapes[0]} for {sizes[0]} trials and {shapes[1]} for {sizes[1]}; memory that grows "
                "with the number of trials needs it as an axis",
            )  # fmt: skip


def _batch_axis_ok(big: tuple[int, ...], small: tuple[int, ...], sizes: tuple[int, int]) -> bool:
    # every axis either stays, or is the number of trials in both
    return len(big) == len(small) and all(a == b or (a, b) == sizes for a, b in zip(big, small, strict=True))


def _act(agent: Agent, obs: Any, memory: Any, family: TaskFamily, who: str, call: str, env: TrialEnv) -> Any:
    before = _snapshot(memory)
    out = agent.act(obs, memory)
    if not isinstance(out, tuple) or len(out) != 2:
        raise ContractError(who, call, "result", f"a {type(out).__name__}; expected the pair (actions, memory)")
    changed = _difference(before, _snapshot(memory))
    if changed is not None:
        raise ContractError(
            who, call, changed,
            "changed in place; act must leave the memory it is given unchanged and return new memory "
            "(randomness: draw from fresh_rng(memory['rng']) and return it)",
        )  # fmt: skip
    try:
        actions = validate_actions(out[0], CHECK_TRIALS, family.num_actions)
    except ValueError as exc:
        raise ContractError(who, call, "actions", str(exc).removeprefix("actions ")) from None
    return env.step(actions)[0], out[1]


# ----------------------------------------------------------------------------- memory snapshots
_OPAQUE = object()  # a leaf the checker cannot copy: not compared


def _is_tensor(x: Any) -> bool:
    # duck-typed: the core never imports torch
    return type(x).__module__.startswith("torch") and hasattr(x, "detach") and hasattr(x, "clone")


def _is_array(x: Any) -> bool:
    return isinstance(x, np.ndarray) or _is_tensor(x)


def _leaves(tree: Any, path: str = "memory") -> Iterator[tuple[str, Any]]:
    """(path, leaf) pairs of a memory pytree; containers yield their layout too, so an item
    added to or removed from a dict or list in place shows."""
    if isinstance(tree, Mapping):
        yield path, ("dict", tuple(map(repr, tree)))
        for key, value in tree.items():
            yield from _leaves(value, f"{path}[{key!r}]")
    elif isinstance(tree, (list, tuple)):
        yield path, (type(tree).__name__, len(tree))
        for i, value in enumerate(tree):
            yield from _leaves(value, f"{path}[{i}]")
    elif is_dataclass(tree) and not isinstance(tree, type):
        for f in fields(tree):
            yield from _leaves(getattr(tree, f.name), f"{path}.{f.name}")
    else:
        yield path, tree


def _copy(leaf: Any) -> Any:
    if isinstance(leaf, np.ndarray):
        return leaf.copy()
    if isinstance(leaf, np.random.Generator):  # its state, whole (ints, and an array for MT19937)
        return ("generator", pickle.dumps(leaf.bit_generator.state))
    if _is_tensor(leaf):
        return leaf.detach().clone()
    if leaf is None or isinstance(leaf, (bool, int, float, complex, str, bytes, tuple, np.generic)):
        return leaf
    return _OPAQUE


def _snapshot(memory: Any) -> dict[str, Any]:
    return {path: _copy(leaf) for path, leaf in _leaves(memory)}


def _same(a: Any, b: Any) -> bool:
    if a is _OPAQUE or b is _OPAQUE:
        return a is b
    if isinstance(a, np.ndarray):
        if not isinstance(b, np.ndarray) or a.shape != b.shape or a.dtype != b.dtype:
            return False
        return bool(np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))
    if _is_tensor(a):
        if not _is_tensor(b) or a.shape != b.shape or a.dtype != b.dtype or a.device != b.device:
            return False
        return bool(((a == b) | (a.isnan() & b.isnan()) if a.is_floating_point() else a == b).all())
    if isinstance(a, (float, np.floating)) and a != a:
        return isinstance(b, (float, np.floating)) and b != b  # NaN
    return type(a) is type(b) and bool(a == b)


def _difference(before: dict[str, Any], after: dict[str, Any]) -> str | None:
    """The first path at which two snapshots differ, or None."""
    for path in dict.fromkeys([*before, *after]):
        if path not in before or path not in after or not _same(before[path], after[path]):
            return path
    return None


# ============================================================================ when they run
_CHECKED: set[tuple[Any, ...]] = set()


def check_first_play(agent: Agent, name: str) -> None:
    """The evaluator's hook: check the family registered as ``name`` and ``agent`` the first time
    they are played in this process, once per (class, name); built-in registrations (and
    agents no one registered) are trusted, so a run of built-ins pays two set lookups."""
    _family_once(agent.family, name)
    _agent_once(agent, name)


def check_registered(agents: Sequence[str], envs: Sequence[str], settings: Mapping[str, Any] | None = None) -> None:
    """Check the user-registered families among ``envs`` and the user-registered agents among
    ``agents`` that do not learn (a learner is checked when it is evaluated, after training),
    before any run: for a command's pre-flight, so that a fault is refused before any work.
    ``settings``: each agent's ``--agent-config`` settings."""
    for env in envs:
        family = get_spec(env).make()
        _refuse_breach(_family_once, family, env)
        for name in agents:
            if is_builtin("agent", name):
                continue
            try:
                agent = make_agent(name, family, **(settings or {}).get(name, {}))
            except Exception:  # declared unsupported, or a bug: the run reports it (skipped, or failed)
                continue
            if not getattr(agent, "learns", False):
                _refuse_breach(_agent_once, agent, env)


def _refuse_breach(check: Any, subject: Any, env: str) -> None:
    """Raise a ContractError; leave any other error (a bug in the user's code) to the run, which
    reports it as a failed run with its traceback, as it always has."""
    try:
        check(subject, env)
    except ContractError:
        raise
    except Exception:
        return


def _family_once(family: TaskFamily, name: str) -> None:
    # the parameters are part of the key: a name registered again with others is checked again
    key = ("family", type(family), name, json.dumps(family.params, sort_keys=True, default=str))
    if key not in _CHECKED:
        if not is_builtin("family", name):
            check_family(family, name)
        _CHECKED.add(key)  # only once it passed: a faulty family fails again, never silently


def _agent_once(agent: Agent, name: str) -> None:
    key = ("agent", type(agent), name)
    if key not in _CHECKED:
        registered = user_agent_name(type(agent))
        if registered is not None:
            check_agent(agent, agent.family, registered)
        _CHECKED.add(key)
