"""The numbers the suite produces do not move when the step gets faster.

Digests of long random rollouts of every built-in family, through the native batch and
through gymnasium's vector entry point (observations, rewards, flags, infos), recorded
with the step code before its speed-up (commit 3e01ab9).  Floats are rounded to 9
decimals before hashing, so a libm that rounds the Gaussian quantile's last bit
differently on another platform does not fail the test, while any change of dynamics,
noise or observation assembly does.
"""

import csv
import hashlib
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import metarl_bench

# Recorded at commit 3e01ab9 (numpy step before the speed-up): case, batch digest, vector digest.
with open(Path(__file__).parent / "data" / "step_digests.csv", newline="") as _file:
    EXPECTED = {row["case"]: (row["batch_digest"], row["vector_digest"]) for row in csv.DictReader(_file)}

# The cases are the keys of EXPECTED: a family name, then "/param=value" for each parameter.
CASES = [(name, dict(p.split("=") for p in params)) for name, *params in (key.split("/") for key in EXPECTED)]


def _update(m, *arrays) -> None:
    for a in arrays:
        a = np.asarray(a)
        if a.dtype.kind == "f":
            a = np.round(a.astype(np.float64), 9) + 0.0  # + 0.0: -0.0 and 0.0 hash alike
        m.update(f"{a.dtype}{a.shape}".encode())
        m.update(np.ascontiguousarray(a).tobytes())


def batch_digest(name: str, params: dict) -> str:
    """Three trials of 23 batched random-action trials."""
    env = metarl_bench.make(name, num_trials=23, seed=5, **params)
    rng = np.random.default_rng(11)
    m = hashlib.sha256()
    for _ in range(3):
        obs = env.reset()
        _update(m, *(obs[k] for k in sorted(obs)))
        while not env.done:
            obs, rewards, _, info = env.step(rng.integers(0, env.num_actions, size=23))
            _update(m, rewards, *(obs[k] for k in sorted(obs)), [info["episode_done"], info["inner_episode"]])
        _update(m, env.episode_returns, *(env.tasks[k] for k in sorted(env.tasks)))
    return m.hexdigest()[:16]


def vector_digest(name: str, params: dict) -> str:
    """Two trials and a bit of gymnasium's vector env (autoreset included), infos too."""
    vec = gym.make_vec(f"metarl_bench/{name}", num_envs=9, vectorization_mode="vector_entry_point", **params)
    rng = np.random.default_rng(12)
    obs, info = vec.reset(seed=3)
    m = hashlib.sha256()
    for _ in range(2 * vec.unwrapped.family.trial_length + 3):
        obs, rewards, terminated, truncated, info = vec.step(rng.integers(0, vec.single_action_space.n, size=9))
        task = info["task"]
        _update(m, rewards, terminated, truncated, *(obs[k] for k in sorted(obs)), info["episode_returns"])
        _update(m, *(task[k] for k in sorted(task)))
    return m.hexdigest()[:16]


def case_id(name: str, params: dict) -> str:
    return name + "".join(f"/{k}={v}" for k, v in params.items())


@pytest.mark.parametrize(("name", "params"), CASES, ids=[case_id(*c) for c in CASES])
def test_rollouts_are_unchanged(name, params):
    assert (batch_digest(name, params), vector_digest(name, params)) == EXPECTED[case_id(name, params)]
