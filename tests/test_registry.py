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
