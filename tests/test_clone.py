"""The gradient bandit, learning-algorithm cloning into VSML, and the introspection fit."""

import numpy as np
import pytest
import torch

import metarl_bench  # noqa: F401  (registers the built-ins)
from metarl_bench.baselines.gradient_bandit import GradientBanditAgent
from metarl_bench.baselines.vsml.agent import VSMLAgent
from metarl_bench.baselines.vsml.clone import CloneConfig, VSMLCloneAgent, clone, fidelity
from metarl_bench.core.agent import CheckpointError, last_transition
from metarl_bench.core.registry import make_agent, make_family
from studies.clone_study import gradient_fit, trajectories

torch.set_num_threads(1)


def _obs(k: int, action: int | None, reward: float) -> dict[str, np.ndarray]:
    one_hot = np.zeros((1, k), np.float32)
    if action is not None:
        one_hot[0, action] = 1.0
    return {"obs": np.zeros((1, 1), np.float32), "prev_action": one_hot,
            "prev_reward": np.array([[reward]], np.float32),
            "new_episode": np.array([[float(action is None)]], np.float32)}  # fmt: skip


def test_gradient_bandit_follows_sutton_barto_by_hand():
    family = make_family("bernoulli-k5-h100")
    agent = GradientBanditAgent(family, step_size=0.5, baseline="mean")
    memory = agent.reset(1, rng=np.random.default_rng(0))
    probs, memory = agent.action_probs(_obs(5, None, 0.0), memory)
    np.testing.assert_allclose(probs, np.full((1, 5), 0.2))
    # pulled arm 2, reward 1: baseline (mean incl. this reward) = 1, so no change yet
    probs, memory = agent.action_probs(_obs(5, 2, 1.0), memory)
    np.testing.assert_allclose(memory["prefs"], 0.0)
    # pulled arm 0, reward 0: baseline 0.5, advantage -0.5 under pi = uniform
    probs, memory = agent.action_probs(_obs(5, 0, 0.0), memory)
    expected = 0.5 * -0.5 * (np.eye(5)[0] - 0.2)
    np.testing.assert_allclose(memory["prefs"][0], expected)
    np.testing.assert_allclose(probs[0], np.exp(expected) / np.exp(expected).sum())


def test_gradient_bandit_refuses_bad_config():
    family = make_family("bernoulli-k2-h100")
    with pytest.raises(ValueError, match="step_size"):
        GradientBanditAgent(family, step_size=float("nan"))
    with pytest.raises(ValueError, match="allowed"):
        GradientBanditAgent(family, baseline="median")


def test_sweep_picks_the_best_training_configuration_deterministically(tmp_path):
    family = make_family("bernoulli-k2-h100", horizon=20)
    a, b = GradientBanditAgent(family), GradientBanditAgent(family)
    a.fit(family, 20 * 50, seed=3, train_env="x")
    b.fit(family, 20 * 50, seed=3, train_env="x")
    assert a.config == b.config and a.sweep == b.sweep
    best = max(a.sweep, key=lambda r: r["mean_return"])
    assert a.config == {"step_size": best["step_size"], "baseline": best["baseline"]}
    path = a.save(tmp_path / "g.zip")
    assert GradientBanditAgent.load(path, family, expect_env="x").config == a.config
    with pytest.raises(CheckpointError, match="trained on 'x'"):
        GradientBanditAgent.load(path, family, expect_env="y")


class Sticky:
    """An easy teacher: repeat the previous arm with probability 0.8 (uniform on the first step)."""

    def reset(self, n, rng=None, tasks=None):
        return None

    def action_probs(self, obs, memory):
        a, _, has = last_transition(obs)
        k = obs["prev_action"].shape[1]
        p = np.full((len(a), k), 0.2 / (k - 1))
        p[np.arange(len(a)), a] = 0.8
        return np.where(has[:, None], p, 1.0 / k), memory


def test_clone_of_an_easy_teacher_matches_it():
    family = make_family("bernoulli-k2-h100", horizon=10)
    student = VSMLCloneAgent(family)
    cfg = CloneConfig(iterations=40, trials_per_batch=16, learning_rate=0.03, lr_final=1.0)
    losses = clone(student, Sticky(), family, cfg, np.random.default_rng(0))
    assert np.mean(losses[-5:]) < 0.1 * np.mean(losses[:5])  # the loss decreases
    result = fidelity(student, Sticky(), family, family.sample_tasks(np.random.default_rng(1), 200), 1, 2)
    assert result["kl_per_step"] < 2e-3
    assert result["greedy_agreement"] > 0.99


def test_cloning_the_gradient_bandit_decreases_the_loss_with_truncation():
    family = make_family("bernoulli-k2-h100", horizon=20)
    teacher = GradientBanditAgent(family, step_size=1.6)
    student = VSMLCloneAgent(family)
    tasks = family.sample_tasks(np.random.default_rng(1), 200)
    before = fidelity(student, teacher, family, tasks, 1, 2, driver="teacher")["kl_per_step"]
    cfg = CloneConfig(iterations=30, trials_per_batch=16, learning_rate=0.02, lr_final=1.0, truncate=7,
                      student_share=0.0)  # fmt: skip
    clone(student, teacher, family, cfg, np.random.default_rng(0))
    assert fidelity(student, teacher, family, tasks, 1, 2, driver="teacher")["kl_per_step"] < 0.7 * before


def test_evaluation_builds_no_graph_and_the_checkpoint_round_trips(tmp_path):
    family = make_family("bernoulli-k2-h100", horizon=10)
    student = VSMLCloneAgent(family, clone={"iterations": 2, "trials_per_batch": 4})
    clone(student, Sticky(), family, student.clone_cfg, np.random.default_rng(0))
    assert not student.theta.requires_grad
    memory = student.reset(3, rng=np.random.default_rng(0))
    logits, memory = student.logits({k: np.repeat(v, 3, 0) for k, v in _obs(2, None, 0.0).items()}, memory)
    leaves = [*memory["state"]["h"], *memory["state"]["c"], *memory["params"].values()]
    assert all(x.grad_fn is None and not x.requires_grad for x in leaves)
    student.trained_on = "tiny"
    path = student.save(tmp_path / "clone.zip")
    loaded = VSMLCloneAgent.load(path, family, expect_env="tiny")
    assert torch.equal(loaded.theta, student.theta)
    assert loaded.config == student.config and loaded.clone_cfg.iterations == 2
    with pytest.raises(CheckpointError, match="not 'vsml'"):
        VSMLAgent.load(path, family)
    with pytest.raises(ValueError, match="allowed keys"):
        VSMLCloneAgent(family, clone={"iterationz": 3})


def test_introspection_fit_is_exact_for_the_teacher_and_low_for_noise():
    family = make_family("bernoulli-k5-h100", horizon=30)
    tasks = family.sample_tasks(np.random.default_rng(0), 200)
    teacher = GradientBanditAgent(family, step_size=0.7, baseline="mean")
    fit = gradient_fit(trajectories(teacher, family, tasks, 1, 2), "mean")
    assert fit["r2"] == pytest.approx(1.0, abs=1e-9)
    assert np.isnan(fit["slopes"][0])  # the first reward is its own baseline: no update
    np.testing.assert_allclose(fit["slopes"][1:], 0.7, atol=1e-9)

    class Noisy(GradientBanditAgent):  # logits that wander at random, unrelated to rewards
        def logits(self, obs, memory):
            prefs, memory = super().logits(obs, memory)
            walk = memory.get("walk", np.zeros_like(prefs)) + memory["rng"].normal(size=prefs.shape)
            return walk, {**memory, "walk": walk}

    fit = gradient_fit(trajectories(Noisy(family), family, tasks, 1, 2), "mean")
    assert fit["r2"] < 0.05


def test_clone_es_needs_the_clone_checkpoint(tmp_path, monkeypatch):
    from metarl_bench.baselines.vsml import agent as vsml
    from metarl_bench.core.agent import UnsupportedFamilyError

    monkeypatch.setattr(vsml, "CHECKPOINT_ROOT", tmp_path)
    family = make_family("bernoulli-k2-h100", horizon=10)
    agent = make_agent("vsml-clone-es", family, population=4, tasks_per_generation=2)
    with pytest.raises(UnsupportedFamilyError, match="vsml-clone checkpoint"):
        agent.fit(family, 80, seed=0, train_env="tiny", progress=False)
    source = VSMLCloneAgent(family)
    source.theta = source.theta + 0.1
    source.trained_on = "tiny"
    source.save(source.checkpoint_path("tiny"))
    agent.fit(family, 80, seed=0, train_env="tiny", progress=False, eval_tasks=2)
    assert agent.generations == 1 and agent.metrics["started_from"] == "tiny.zip"
    assert not torch.equal(agent.theta, VSMLAgent(family).theta)
