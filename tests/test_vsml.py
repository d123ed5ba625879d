import json
import math
import zipfile

import numpy as np
import pytest
import torch

import metarl_bench
from metarl_bench.baselines.vsml import agent as vsml
from metarl_bench.baselines.vsml.agent import VSMLAgent
from metarl_bench.baselines.vsml.es import Adam, annealed_lr, antithetic, centered_ranks, es_gradient
from metarl_bench.baselines.vsml.network import VSMLNet
from metarl_bench.baselines.vsml.rollout import play
from metarl_bench.envs.bandits.family import BernoulliBandit

torch.set_num_threads(1)
ENV = "bernoulli-k2-h100"
SMALL = {"population": 16, "tasks_per_generation": 8, "learning_rate": 0.1, "sigma": 0.1}  # a short, bold ES run


def perturbed(family, seed: int = 0, scale: float = 0.5, **config) -> VSMLAgent:
    """An agent with random (not trained) parameters far enough from init to be non-trivial."""
    agent = VSMLAgent(family, **config)
    gen = torch.Generator().manual_seed(seed)
    agent.theta = agent.theta + scale * torch.randn(agent.theta.shape, generator=gen)
    return agent


def history(k: int, steps: int, seed: int = 0) -> list[dict[str, np.ndarray]]:
    """A fixed batch of RL² observations (3 trials) with random previous actions and rewards."""
    rng = np.random.default_rng(seed)
    out = []
    for t in range(steps):
        one_hot = np.zeros((3, k), np.float32)
        if t:
            one_hot[np.arange(3), rng.integers(0, k, 3)] = 1.0
        out.append(
            {
                "obs": np.zeros((3, 1), np.float32),
                "prev_action": one_hot,
                "prev_reward": (rng.random((3, 1)) < 0.5).astype(np.float32) * (t > 0),
                "new_episode": np.full((3, 1), float(t == 0), np.float32),
            }
        )
    return out


def probs_along(agent: VSMLAgent, obs_seq, memory=None):
    memory = agent.reset(len(obs_seq[0]["obs"])) if memory is None else memory
    out = []
    for obs in obs_seq:
        p, memory = agent.action_probs(obs, memory)
        out.append(p)
    return np.array(out), memory


@pytest.mark.parametrize("num_layers", [1, 2])
def test_permuting_the_arms_permutes_the_action_probabilities(num_layers):
    family = metarl_bench.make_family("bernoulli-k5-h100")
    agent = perturbed(family, num_layers=num_layers)
    perm = np.array([3, 0, 4, 1, 2])
    seq = history(5, 6)
    permuted = [{**o, "prev_action": o["prev_action"][:, perm]} for o in seq]
    p, _ = probs_along(agent, seq)
    q, _ = probs_along(agent, permuted)
    assert np.abs(p - p[..., :1]).max() > 1e-3  # the history makes the arms differ
    np.testing.assert_allclose(q, p[..., perm], atol=1e-5)


def test_the_same_parameters_play_2_5_and_10_arms():
    base = perturbed(metarl_bench.make_family(ENV))
    for k in (2, 5, 10):
        agent = VSMLAgent(metarl_bench.make_family(f"bernoulli-k{k}-h100"))
        agent.theta = base.theta.clone()
        env = metarl_bench.make(f"bernoulli-k{k}-h100", num_trials=4, seed=0, horizon=5)
        obs, memory = env.reset(), agent.reset(4, np.random.default_rng(0))
        for _ in range(5):
            p, _ = agent.action_probs(obs, memory)
            assert p.shape == (4, k)
            np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)
            actions, memory = agent.act(obs, memory)
            obs, *_ = env.step(actions)
        assert agent.features(memory).shape == (4, 2 * 2 * k * agent.cfg.hidden_size)


def test_state_persists_within_a_trial_and_is_fresh_between_trials():
    agent = perturbed(metarl_bench.make_family(ENV))
    seq = history(2, 5)
    p, memory = probs_along(agent, seq)
    p_mid, _ = agent.action_probs(seq[-1], memory)
    p_fresh, _ = agent.action_probs(seq[-1], agent.reset(3))
    assert np.abs(p_mid - p_fresh).max() > 1e-4
    p_again, _ = probs_along(agent, seq)  # a reset gives exactly the first trial's start
    np.testing.assert_array_equal(p_again, p)


@pytest.mark.parametrize("num_layers", [1, 2])
def test_es_evaluation_builds_no_autograd_graph(monkeypatch, num_layers):
    family = metarl_bench.make_family(ENV, horizon=5)
    net = VSMLNet(vsml.VSMLConfig(num_layers=num_layers), num_inputs=1)
    theta = (net.theta0 + 0.1 * torch.randn(4, net.num_params)).requires_grad_(True)
    seen = []
    step = VSMLNet.step

    def spy(self, *args):
        logits, state = step(self, *args)
        seen.append((logits.requires_grad, logits.grad_fn, state["c"][0].grad_fn))
        return logits, state

    monkeypatch.setattr(VSMLNet, "step", spy)
    rng = np.random.default_rng(0)
    returns = play(net, theta, family, family.sample_tasks(rng, 3), rng)
    assert returns.shape == (4, 3) and not returns.requires_grad
    assert seen and all(s == (False, None, None) for s in seen)


def test_members_of_a_population_meet_the_same_tasks_and_noise():
    family = metarl_bench.make_family(ENV, horizon=20)
    net = VSMLNet(vsml.VSMLConfig(), num_inputs=1)
    theta = net.theta0 + 0.3 * torch.randn(3, net.num_params, generator=torch.Generator().manual_seed(1))
    rng = np.random.default_rng(0)
    returns = play(net, torch.cat([theta, theta]), family, family.sample_tasks(rng, 5), rng)
    torch.testing.assert_close(returns[:3], returns[3:])  # identical parameters, identical returns


def test_centered_ranks():
    w = centered_ranks(torch.tensor([3.0, -1.0, 10.0, 0.5]))
    torch.testing.assert_close(w, torch.tensor([1 / 6, -0.5, 0.5, -1 / 6]))


def reference_adam(theta, grads, lrs, beta1=0.9, beta2=0.999, eps=1e-8):
    """The ES update the shipped checkpoints were trained with: eps added to sqrt(v) before bias correction."""
    m, v, out = torch.zeros_like(theta), torch.zeros_like(theta), []
    for t, (g, lr) in enumerate(zip(grads, lrs, strict=True), 1):
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        theta = theta + lr * math.sqrt(1 - beta2**t) / (1 - beta1**t) * m / (v.sqrt() + eps)
        out.append(theta)
    return torch.stack(out)


def torch_adam(theta, grads, lrs, eps):
    param = torch.nn.Parameter(theta.clone())
    opt = torch.optim.Adam([param], lr=lrs[0], eps=eps, maximize=True)
    out = []
    for g, lr in zip(grads, lrs, strict=True):
        opt.param_groups[0]["lr"] = lr
        param.grad = g.clone()
        opt.step()
        out.append(param.detach().clone())
    return torch.stack(out)


def test_es_adam_is_the_shipped_update_and_torch_adam_differs_by_its_eps():
    # 20 ES gradients (antithetic pairs, centered ranks) of a quadratic fitness, at VSML's size and default sigma.
    net = VSMLNet(vsml.VSMLConfig(), num_inputs=1)
    gen = torch.Generator().manual_seed(0)
    target = torch.randn(net.num_params, generator=gen)
    theta, grads = net.theta0, []
    for _ in range(20):
        noise, thetas = antithetic(theta, 0.04, 32, gen)
        grads.append(es_gradient(-(thetas - target).square().sum(dim=1), noise, 0.04))
        theta = theta + 0.02 * grads[-1]
    lrs = [annealed_lr(0.02, 0.2, g, 20) for g in range(20)]
    want = reference_adam(net.theta0, grads, lrs)
    adam, theta, ours = Adam(net.num_params, lrs[0]), net.theta0, []
    for g, lr in zip(grads, lrs, strict=True):
        adam.lr = lr
        theta = adam.ascent(theta, g)
        ours.append(theta)
    torch.testing.assert_close(torch.stack(ours), want, rtol=0, atol=0)
    # torch.optim.Adam adds eps after bias-correcting sqrt(v): ~1e-4 off in the first step (measured 1.4e-4),
    # 1000x float rounding, which is all that is left without eps (measured 1.2e-7).
    assert (torch_adam(net.theta0, grads, lrs, eps=1e-8) - want)[0].abs().max() > 1e-5
    no_eps = reference_adam(net.theta0, grads, lrs, eps=0.0)
    torch.testing.assert_close(torch_adam(net.theta0, grads, lrs, eps=0.0), no_eps, rtol=1e-6, atol=1e-6)


@pytest.fixture(scope="module")
def fixed_family():
    # One task: arm 1 pays 0.9, arm 0 pays 0.1 (the agent is arm-symmetric, so it must find out).
    metarl_bench.register("vsml-test-fixed", BernoulliBandit, k=2, horizon=50, probs=[0.1, 0.9], replace=True)
    yield metarl_bench.make_family("vsml-test-fixed")
    metarl_bench.unregister("vsml-test-fixed")


def test_a_short_seeded_es_run_raises_fitness(fixed_family):
    agent = VSMLAgent(fixed_family, **SMALL)
    rng = np.random.default_rng(5)
    tasks = fixed_family.sample_tasks(rng, 200)
    before = float(play(agent.net, agent.theta[None], fixed_family, tasks, np.random.default_rng(5)).mean())
    per_gen = 16 * 8 * 50
    fit = {"seed": 0, "train_env": "vsml-test-fixed", "progress": False, "eval_tasks": 10}
    stats = agent.fit(fixed_family, budget=30 * per_gen + 7, **fit)
    assert stats["generations"] == 30 and stats["train_steps"] == 30 * per_gen  # never more than the budget
    after = float(play(agent.net, agent.theta[None], fixed_family, tasks, np.random.default_rng(5)).mean())
    assert after > before + 5, (before, after)  # random play gets 25 of the oracle's 45
    # The same seed gives the same parameters.
    again = VSMLAgent(fixed_family, **SMALL)
    again.fit(fixed_family, budget=30 * per_gen, **fit)
    torch.testing.assert_close(again.theta, agent.theta)


def test_a_resumed_es_run_continues_its_generations_schedule_adam_and_curve(fixed_family, tmp_path):
    per_gen = 16 * 8 * 50
    fit = {"seed": 0, "train_env": "vsml-test-fixed", "progress": False, "eval_tasks": 10}
    cfg = {**SMALL, "checkpoint_every": 2}
    first = VSMLAgent(fixed_family, **cfg)
    first.fit(fixed_family, budget=2 * per_gen, save_path=tmp_path / "partial.zip", **fit)  # "stopped" after 2
    resumed = VSMLAgent(fixed_family, **cfg)
    resumed.load_weights(tmp_path / "partial.zip")
    assert resumed.generations == 2 and resumed.adam is not None and resumed.adam.t == 2
    stats = resumed.fit(fixed_family, budget=5 * per_gen, resume=True, **fit)
    assert stats["generations"] == 5 and resumed.train_steps == 5 * per_gen and resumed.adam.t == 5
    assert [p["generation"] for p in resumed.curve][:2] == [1, 2] and resumed.curve[-1]["generation"] == 5
    fresh = VSMLAgent(fixed_family, **cfg)
    fresh.fit(fixed_family, budget=3 * per_gen, **fit)  # without resume: the budget counts from 0 again
    assert fresh.generations == 3


@pytest.fixture
def saved(tmp_path):
    agent = perturbed(metarl_bench.make_family(ENV), seed=3)
    agent.trained_on, agent.train_steps, agent.metrics = ENV, 1234, {"train_return": 60.0}
    return agent, agent.save(tmp_path / "agent.zip")


def test_save_load_round_trip(saved):
    agent, path = saved
    assert path.stat().st_size < 100_000  # a few thousand floats and a small record
    loaded = VSMLAgent.load(path, metarl_bench.make_family("bernoulli-k5-h100"), expect_env=ENV)
    assert loaded.train_steps == 1234 and loaded.metrics == {"train_return": 60.0}
    assert loaded.config == agent.config
    torch.testing.assert_close(loaded.theta, agent.theta)
    same = VSMLAgent.load(path, agent.family)
    seq = history(2, 6)
    np.testing.assert_array_equal(probs_along(same, seq)[0], probs_along(agent, seq)[0])


def test_bad_checkpoints_are_refused_and_change_nothing(saved, tmp_path):
    agent, path = saved
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    other_agent = tmp_path / "thompson.json"
    other_agent.write_text(json.dumps({"agent": "thompson", "config": {}}))
    rl2 = tmp_path / "rl2.zip"
    with zipfile.ZipFile(rl2, "w") as zf:
        zf.writestr("record.json", json.dumps({"agent": "rl2", "config": {}}))
    old_format = tmp_path / "old.pt"
    torch.save({"agent": "vsml", "format": 1, "theta": agent.theta}, old_format)  # format 1: a torch dict
    for bad, message in [
        (garbage, "is not a vsml checkpoint"),
        (other_agent, "is not a vsml checkpoint"),
        (rl2, "checkpoint of agent 'rl2', not 'vsml'"),
        (tmp_path / "missing.pt", "no such checkpoint file"),
        (old_format, "is not a vsml checkpoint: its zip holds no 'record.json'"),
    ]:
        with pytest.raises(ValueError, match=message):
            VSMLAgent.load(bad, agent.family)
    fresh = VSMLAgent(agent.family)
    before = fresh.theta.clone()
    with pytest.raises(ValueError, match="trained on 'bernoulli-k2-h100', not on 'bernoulli-k5-h100'"):
        fresh.load_weights(path, expect_env="bernoulli-k5-h100")

    class ThreeObs(BernoulliBandit):
        obs_shape = (3,)

    with pytest.raises(ValueError, match="observations of 1 entries"):
        VSMLAgent(ThreeObs()).load_weights(path)
    torch.testing.assert_close(fresh.theta, before)


def test_prepare_loads_the_checkpoint_or_says_how_to_train(saved, tmp_path, monkeypatch):
    agent, path = saved
    monkeypatch.setattr(vsml, "CHECKPOINT_ROOT", tmp_path / "none")
    fresh = VSMLAgent(agent.family)
    with pytest.raises(ValueError, match="no shipped vsml checkpoint .* --retrain"):
        fresh.prepare(agent.family, ENV)
    monkeypatch.setattr(vsml, "CHECKPOINT_ROOT", tmp_path)
    (tmp_path / "vsml").mkdir()
    (tmp_path / "vsml" / f"{ENV}.zip").write_bytes(path.read_bytes())
    stats = fresh.prepare(agent.family, ENV)
    assert stats["train_steps"] == 1234 and stats["checkpoint"] == f"{ENV}.zip"
    torch.testing.assert_close(fresh.theta, agent.theta)


def test_shipped_checkpoint_loads_for_any_number_of_arms():
    agent = VSMLAgent(metarl_bench.make_family("bernoulli-k10-h100"))
    path = agent.checkpoint_path(ENV)
    if not path.exists():
        pytest.skip("no shipped checkpoint")
    agent.prepare(metarl_bench.make_family(ENV), ENV)
    assert agent.trained_on == ENV and agent.train_steps > 0 and "train_score" in agent.metrics
    assert path.stat().st_size < 100_000


def test_bad_config_is_refused():
    family = metarl_bench.make_family(ENV)
    with pytest.raises(ValueError, match="unknown vsml config"):
        VSMLAgent(family, hiden_size=3)
    with pytest.raises(ValueError, match="population must be an even number"):
        VSMLAgent(family, population=7)


def test_bernoulli_distributions_without_checkpoint_default_to_the_shipped_two_armed_one():
    from metarl_bench.baselines.vsml.agent import DEFAULT_TRAIN_ENV, VSMLAgent

    k5 = VSMLAgent(metarl_bench.make_family("bernoulli-k5-h100"))
    assert k5.default_train_env("bernoulli-k5-h100") == DEFAULT_TRAIN_ENV
    assert k5.default_train_env("bernoulli-k5-h100", retrain=True) == "bernoulli-k5-h100"
    gaussian = VSMLAgent(metarl_bench.make_family("gaussian-k5-h100"))  # another reward model: no silent transfer
    assert gaussian.default_train_env("gaussian-k5-h100") == "gaussian-k5-h100"
