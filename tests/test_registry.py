import gymnasium as gym
import numpy as np
import pytest

import metarl_bench
from metarl_bench import UnknownNameError
from metarl_bench.envs.bandits.family import BernoulliBandit


def test_builtin_suites_hold_the_issue_distributions():
    assert set(metarl_bench.list_families("bandits")) == {
        "bernoulli-k2-h100",
        "bernoulli-dependent-k2-h100",
        "bernoulli-k5-h100",
        "bernoulli-k10-h100",
        "gaussian-k5-h100",
    }
    grid = {f"bernoulli-k{k}-h{h}" for k in (5, 10, 50) for h in (10, 100, 500)}
    assert set(metarl_bench.list_families("rl2-bandits")) == grid


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(UnknownNameError, match="bernoulli-k2-h100") as info:
        metarl_bench.make("bernoulli-k3-h7")
    assert "bernoulli-k3-h7" in str(info.value)
    with pytest.raises(UnknownNameError, match="bandits"):
        metarl_bench.list_families("no-such-suite")
    with pytest.raises(UnknownNameError, match="rl2-bandits"):
        metarl_bench.resolve_envs("bandits,nope")


def test_resolve_expands_suites_and_lists_without_duplicates():
    names = metarl_bench.resolve_envs("bernoulli-k5-h100, bandits")
    assert names[0] == "bernoulli-k5-h100" and len(names) == len(set(names)) == 5


def test_make_with_overrides_and_unknown_parameter():
    env = metarl_bench.make("bernoulli-k2-h100", num_trials=3, seed=0, horizon=7)
    assert env.trial_length == 7 and env.num_trials == 3
    with pytest.raises(ValueError, match=r"unknown parameter.*horizn.*allowed.*horizon"):
        metarl_bench.make("bernoulli-k2-h100", horizn=7)


def test_register_decorator_replace_and_unregister():
    name = "test-reg-bandit"
    try:

        @metarl_bench.register(name, suites=("test-suite",), k=3, horizon=4)
        class Custom(BernoulliBandit):
            pass

        assert name in metarl_bench.list_families("test-suite")
        assert gym.make(f"metarl_bench/{name}").action_space.n == 3
        with pytest.raises(ValueError, match="already registered"):
            metarl_bench.register(name, Custom, k=2)
        metarl_bench.register(name, Custom, replace=True, suites=("test-suite",), k=2, horizon=4)
        assert gym.make(f"metarl_bench/{name}").action_space.n == 2
        assert metarl_bench.list_families("test-suite") == [name]
    finally:
        metarl_bench.unregister(name)
    assert name not in metarl_bench.list_families()
    assert f"metarl_bench/{name}" not in gym.registry
    assert "test-suite" not in metarl_bench.list_suites()


@pytest.mark.parametrize(
    "defaults, message",
    [({"k": 0}, "k must be"), ({"horizon": -1}, "horizon must be"), ({"alpha": 0.0}, "alpha must be")],
)
def test_failed_registration_leaves_nothing(defaults, message):
    name = "test-broken-bandit"
    with pytest.raises(ValueError, match=message):
        metarl_bench.register(name, BernoulliBandit, suites=("broken-suite",), **defaults)
    assert name not in metarl_bench.list_families()
    assert "broken-suite" not in metarl_bench.list_suites()
    assert f"metarl_bench/{name}" not in gym.registry


@pytest.mark.parametrize("bad", ["", "has space", None, "-leading-dash"])
def test_bad_names_are_rejected(bad):
    with pytest.raises(ValueError, match="name must be"):
        metarl_bench.register(bad, BernoulliBandit)


def test_suite_and_family_names_cannot_collide():
    with pytest.raises(ValueError, match="already a family name"):
        metarl_bench.register("test-x", BernoulliBandit, suites=("bernoulli-k2-h100",))
    with pytest.raises(ValueError, match="already a suite name"):
        metarl_bench.register("bandits", BernoulliBandit)


def test_spec_round_trips_through_gymnasium_json():
    spec = gym.spec("metarl_bench/gaussian-k5-h100")
    again = gym.envs.registration.EnvSpec.from_json(spec.to_json())
    env = gym.make(again)
    assert env.action_space.n == 5
    assert np.isclose(env.unwrapped.family.noise_std, 1.0)


def test_agents_register_lazily_and_unknown_agents_list_the_valid_ones():
    import sys

    from metarl_bench.core.registry import get_agent_factory, register_agent

    register_agent("test-lazy-greedy", "metarl_bench.baselines.classical:GreedyAgent", replace=True)
    assert "test-lazy-greedy" in metarl_bench.list_agents()
    assert get_agent_factory("test-lazy-greedy").__name__ == "GreedyAgent"
    with pytest.raises(ValueError, match="module:attribute"):
        register_agent("test-bad-lazy", "no_colon_here")
    with pytest.raises(UnknownNameError, match="thompson"):
        metarl_bench.make_agent("nope", metarl_bench.make_family("bernoulli-k2-h100"))
    # Listing agents must not import torch or SB3.
    code = "import sys, metarl_bench; metarl_bench.list_agents(); assert 'torch' not in sys.modules"
    import subprocess

    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0


# ----------------------------------------------------------------------------- registering again, built-ins
CELL = """
import metarl_bench
from metarl_bench.envs.bandits.family import BernoulliBandit
from metarl_bench.baselines.classical import GreedyAgent


@metarl_bench.register("test-cell-bandit", k=3, horizon=4)
class CellBandit(BernoulliBandit):
    pass


@metarl_bench.register_agent("test-cell-agent")
class CellAgent(GreedyAgent):
    pass
"""


def _run_cell(namespace_name: str = "__main__") -> dict:
    namespace: dict = {"__name__": namespace_name}
    exec(compile(CELL, "<notebook cell>", "exec"), namespace)
    return namespace


def test_running_a_notebook_cell_again_is_a_no_op_and_takes_the_new_class():
    from metarl_bench.core.registry import _REG, get_agent_factory

    try:
        first = _run_cell()
        second = _run_cell()  # the cell again: new class objects of the same names
        assert first["CellBandit"] is not second["CellBandit"]
        assert metarl_bench.get_spec("test-cell-bandit").factory is second["CellBandit"]  # edits take effect
        assert get_agent_factory("test-cell-agent") is second["CellAgent"]
        factory = second["CellBandit"]
        metarl_bench.register("test-cell-bandit", factory, k=3, horizon=4)  # the very same: nothing happens
        metarl_bench.register_agent("test-cell-agent", second["CellAgent"])
        assert metarl_bench.list_families().count("test-cell-bandit") == 1
    finally:
        metarl_bench.unregister("test-cell-bandit")
        _REG.agents.pop("test-cell-agent", None)


def test_a_taken_name_still_refuses_another_class_or_other_defaults():
    from metarl_bench.core.registry import _REG

    try:
        namespace = _run_cell()

        class Other(BernoulliBandit):
            pass

        with pytest.raises(ValueError, match="'test-cell-bandit' is already registered; pass replace=True"):
            metarl_bench.register("test-cell-bandit", Other, k=3, horizon=4)
        with pytest.raises(ValueError, match="already registered"):  # the same class, another distribution
            metarl_bench.register("test-cell-bandit", namespace["CellBandit"], k=5, horizon=4)
        with pytest.raises(ValueError, match="already registered"):
            metarl_bench.register("test-cell-bandit", namespace["CellBandit"], suites=("s",), k=3, horizon=4)
        with pytest.raises(ValueError, match="agent 'test-cell-agent' is already registered"):
            metarl_bench.register_agent("test-cell-agent", Other)
        with pytest.raises(ValueError, match="agent 'test-cell-agent' is already registered"):
            metarl_bench.register_agent("test-cell-agent", lambda family: None)
        with pytest.raises(ValueError, match="family 'bernoulli-k2-h100' is already registered"):
            metarl_bench.register("bernoulli-k2-h100", BernoulliBandit, k=3)  # a built-in's name
    finally:
        metarl_bench.unregister("test-cell-bandit")
        _REG.agents.pop("test-cell-agent", None)


def test_two_lambdas_are_not_the_same_factory():
    from metarl_bench.core.registry import _REG

    try:
        metarl_bench.register_agent("test-lambda-agent", lambda family: None)
        with pytest.raises(ValueError, match="already registered"):
            metarl_bench.register_agent("test-lambda-agent", lambda family: None)
    finally:
        _REG.agents.pop("test-lambda-agent", None)


def test_the_registry_tells_builtins_from_a_users_registrations():
    from metarl_bench.baselines.classical import ThompsonAgent
    from metarl_bench.core.registry import _REG, get_agent_factory, get_spec, is_builtin, user_agent_name

    # other tests of the session may have registered their own names: only ours must be built in
    def ours(factory) -> bool:
        return (getattr(factory, "__module__", None) or "").startswith("metarl_bench.")

    families = [n for n in metarl_bench.list_families() if ours(get_spec(n).factory)]
    agents = [n for n in metarl_bench.list_agents() if ours(get_agent_factory(n))]
    assert {"bernoulli-k2-h100", "gridnavi-5x5"} <= set(families) and {"thompson", "rl2", "vsml"} <= set(agents)
    assert all(is_builtin("family", name) for name in families)
    assert all(is_builtin("agent", name) for name in agents)
    assert user_agent_name(ThompsonAgent) is None
    try:
        namespace = _run_cell("users_module")
        assert not is_builtin("family", "test-cell-bandit") and not is_builtin("agent", "test-cell-agent")
        assert user_agent_name(namespace["CellAgent"]) == "test-cell-agent"
        metarl_bench.register("test-cell-bandit", BernoulliBandit, replace=True, k=3, horizon=4)
        assert is_builtin("family", "test-cell-bandit")  # our own class under a new name: our own code
    finally:
        metarl_bench.unregister("test-cell-bandit")
        _REG.agents.pop("test-cell-agent", None)
        _REG.builtin.discard(("agent", "test-cell-agent"))
    assert not is_builtin("family", "test-cell-bandit")


def test_a_builtin_module_imported_first_is_still_builtin():
    import subprocess
    import sys

    code = (
        "from metarl_bench.baselines.classical import GreedyAgent\n"  # registers before the first lookup
        "from metarl_bench.core.registry import is_builtin\n"
        "import metarl_bench\n"
        "assert all(is_builtin('agent', a) for a in metarl_bench.list_agents()), metarl_bench.list_agents()\n"
        "print('OK')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0 and "OK" in result.stdout, result.stderr
