"""The torch path plays the same trials as the numpy reference, bit for bit.

Same tasks, same noise keys, same actions: ``TorchTrialEnv`` must give the observations,
rewards, flags and episode returns of ``TrialEnv`` exactly, for every built-in family;
the int64 noise must equal numpy's uint64 noise on keys with the top bit set too.
"""

import numpy as np
import pytest
import torch

import metarl_bench
from metarl_bench.accel import torch_noise
from metarl_bench.accel.torch_trial import TorchTrialEnv, torch_twin
from metarl_bench.baselines.vsml.agent import VSMLAgent, draw_shared, play, play_members
from metarl_bench.core import noise
from metarl_bench.envs.bandits import family as bandits
from metarl_bench.envs.bandits import torch_twin as bandit_twin
from metarl_bench.envs.bandits.family import BernoulliBandit
from metarl_bench.envs.gridworlds import family as gridworlds

torch.set_num_threads(1)
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
CASES = [(name, {}) for name, *_ in bandits.VARIANTS + gridworlds.VARIANTS]
CASES += [(name, {"obs": "onehot"}) for name in ("gridnavi-5x5", "darkroom-9x9", "heart-trap-5x5")]
CASES += [("bernoulli-k2-h100", {"k": 3, "horizon": 7, "probs": [0.0, 1.0, 0.5]})]  # p at both ends


def edge_keys(rng: np.random.Generator, n: int) -> np.ndarray:
    keys = rng.integers(0, 2**64 - 1, size=n, dtype=np.uint64, endpoint=True)
    keys[:8] = [0, 1, 2**63 - 1, 2**63, 2**63 + 1, 2**64 - 2, 2**64 - 1, 0x9E3779B97F4A7C15]
    return keys


@pytest.mark.parametrize("device", DEVICES)
def test_int64_noise_equals_uint64_noise(device):
    rng = np.random.default_rng(0)
    n = 200_000
    keys = edge_keys(rng, n)
    arms = rng.integers(0, 64, n)
    counts = np.where(rng.random(n) < 0.5, rng.integers(0, 1000, n), rng.integers(0, 2**62, n))
    assert (keys >= 2**63).mean() > 0.4  # half the keys have the top bit set
    args = (torch_noise.keys_to_torch(keys, device), torch.as_tensor(arms, device=device))
    got = torch_noise.counter_bits(*args, torch.as_tensor(counts, device=device)).cpu().numpy()
    np.testing.assert_array_equal(got, noise.counter_bits(keys, arms, counts).view(np.int64))
    u = torch_noise.counter_uniform(*args, torch.as_tensor(counts, device=device)).cpu().numpy()
    np.testing.assert_array_equal(u, noise.counter_uniform(keys, arms, counts))


def test_logical_shift_clears_the_sign_copies():
    z = torch.tensor([-1, -(2**63), 2**63 - 1, 5], dtype=torch.int64)
    expect = (z.numpy().view(np.uint64) >> np.uint64(11)).view(np.int64)
    np.testing.assert_array_equal(torch_noise.logical_shift_right(z, 11).numpy(), expect)


def test_thresholds_on_the_device_equal_the_host_ones():
    rng = np.random.default_rng(1)
    u = noise.bits_to_uniform(rng.integers(0, 2**53, 2000).astype(np.uint64))
    special = [0.0, 1.0, -0.5, 1.5, np.nan, np.inf, -np.inf, 5e-324, 2**-54, 2**-53, 1 - 2**-53]
    p = np.concatenate([u, np.nextafter(u, 0), np.nextafter(u, 2), special, rng.random(500)])
    on_device = bandit_twin.uniform_thresholds(torch.as_tensor(p)).numpy()
    np.testing.assert_array_equal(on_device, noise.uniform_thresholds(p).astype(np.int64))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(("name", "params"), CASES, ids=[n + "".join(f"/{v}" for v in p.values()) for n, p in CASES])
def test_torch_path_gives_identical_observations_and_rewards(name, params, device):
    fam = metarl_bench.make_family(name, **params)
    n = 31
    ref = metarl_bench.TrialEnv(fam, n, seed=4)
    dev = TorchTrialEnv(fam, n, seed=4, device=device)
    rng = np.random.default_rng(0)
    seen: dict[str, tuple[list, list]] = {}

    def record(key, a, b):
        seen.setdefault(key, ([], []))
        seen[key][0].append(a)
        seen[key][1].append(b.cpu().numpy())

    for _ in range(2):  # two trials: the second starts from a used generator
        obs_a, obs_b = ref.reset(), dev.reset()
        while True:
            assert obs_a.keys() == obs_b.keys()
            for key in obs_a:
                record(key, obs_a[key], obs_b[key])
            if ref.done:
                break
            actions = rng.integers(0, fam.num_actions, n)
            obs_a, r_a, done_a, info_a = ref.step(actions)
            obs_b, r_b, done_b, info_b = dev.step(torch.as_tensor(actions, device=device))
            record("rewards", r_a, r_b)
            assert (done_a, info_a) == (done_b, info_b)
        record("episode_returns", ref.episode_returns, dev.episode_returns)
    for key, (expect, got) in seen.items():  # bit for bit, dtype included
        assert [g.dtype for g in got] == [e.dtype for e in expect], key
        np.testing.assert_array_equal(np.stack(got), np.stack(expect), err_msg=key)
    assert len(seen["rewards"][0]) == 2 * fam.trial_length


def test_gaussian_table_rows_are_shared_by_trials_with_one_key():
    fam = metarl_bench.make_family("gaussian-k5-h100", horizon=10)
    ref = metarl_bench.TrialEnv(fam, 3, seed=0)
    ref.reset()
    tiled = {k: np.concatenate([v] * 4) for k, v in ref.state.items()}
    env = TorchTrialEnv(fam, 12, seed=0)
    env.reset(tasks={k: np.concatenate([v] * 4) for k, v in ref.tasks.items()}, state=tiled)
    assert env.state["table"].shape == (3, 5, 10)
    actions = np.random.default_rng(0).integers(0, 5, (10, 3))
    for a in actions:
        _, r_ref, _, _ = ref.step(a)
        _, r, _, _ = env.step(torch.as_tensor(np.tile(a, 4)))
        np.testing.assert_array_equal(r.numpy(), np.tile(r_ref, 4))


def test_a_table_too_large_is_refused_with_the_way_out(monkeypatch):
    monkeypatch.setattr(bandit_twin, "MAX_TABLE_BYTES", 1000)
    with pytest.raises(ValueError, match="play fewer trials at once or use TrialEnv"):
        TorchTrialEnv(metarl_bench.make_family("gaussian-k5-h100"), 4, seed=0).reset()


class RenamedStep(BernoulliBandit):
    """A user subclass that overrides the step (here: the same dynamics, but the twin cannot know)."""

    def step(self, tasks, state, actions):
        return super().step(tasks, state, actions)


def test_families_that_change_a_stepping_method_get_no_twin():
    assert torch_twin(BernoulliBandit(k=3)) is not None
    assert torch_twin(RenamedStep(k=3)) is None
    with pytest.raises(ValueError, match="no torch twin"):
        TorchTrialEnv(RenamedStep(k=3), 2)


@pytest.mark.parametrize("name", ["bernoulli-k5-h10", "gaussian-k5-h100", "heart-trap-5x5"])
@pytest.mark.parametrize("deterministic", [False, True])
def test_vsml_returns_do_not_depend_on_where_the_trials_are_stepped(name, deterministic):
    family = metarl_bench.make_family(name, horizon=10)
    agent = VSMLAgent(family)
    theta = agent.theta + 0.3 * torch.randn(6, len(agent.theta), generator=torch.Generator().manual_seed(0))
    tasks = family.sample_tasks(np.random.default_rng(0), 5)
    out = {}
    for backend in ("numpy", "torch"):
        rng = np.random.default_rng(1)
        out[backend] = play(agent.net, theta, family, tasks, rng, deterministic, env_backend=backend)
        out[backend + " rng"] = rng.random()  # both leave the generator at the same place
    assert out["numpy"].shape == (6, 5) and out["numpy"].std() > 0  # the members differ
    torch.testing.assert_close(out["torch"], out["numpy"], rtol=0, atol=0)
    assert out["torch rng"] == out["numpy rng"]


def test_vsml_plays_a_family_without_twin_in_numpy():
    family = RenamedStep(k=3, horizon=10)
    agent = VSMLAgent(family)
    tasks = family.sample_tasks(np.random.default_rng(0), 4)
    auto = play(agent.net, agent.theta[None], family, tasks, np.random.default_rng(1), device="cpu")
    base = play(agent.net, agent.theta[None], BernoulliBandit(k=3, horizon=10), tasks, np.random.default_rng(1))
    torch.testing.assert_close(auto, base, rtol=0, atol=0)
    with pytest.raises(ValueError, match="no torch twin"):
        play(agent.net, agent.theta[None], family, tasks, np.random.default_rng(1), env_backend="torch")


def test_population_members_share_noise_on_the_device():
    fam = metarl_bench.make_family("bernoulli-k2-h100", horizon=20)
    agent = VSMLAgent(fam)
    tasks = fam.sample_tasks(np.random.default_rng(0), 4)
    shared = draw_shared(fam, tasks, 3, np.random.default_rng(2))
    same = agent.theta[None].expand(3, -1)
    returns = play_members(agent.net, same, fam, tasks, shared, env_backend="torch")
    assert (returns == returns[0]).all()


def test_bad_actions_are_refused_on_the_device():
    env = TorchTrialEnv(metarl_bench.make_family("bernoulli-k2-h100"), 3, seed=0)
    env.reset()
    bad_actions = [
        (torch.tensor([0, 1]), "shape"),
        (torch.tensor([0.0, 1.0, 0.0]), "integer dtype"),
        (torch.tensor([0, 2, 1]), "out of range"),
        (torch.tensor([0, -1, 1]), "out of range"),
    ]
    for bad, message in bad_actions:
        with pytest.raises(ValueError, match=message):
            env.step(bad)
    env.step(np.array([0, 1, 1]))  # numpy actions are taken too
    with pytest.raises(RuntimeError, match="reset"):
        TorchTrialEnv(metarl_bench.make_family("bernoulli-k2-h100"), 3).step(torch.tensor([0, 1, 1]))
