"""Random-action steps per second of the batched Bernoulli bandit, against the alternatives.

Compares, in one run on one core:
  * metarl-bench's batched TrialEnv at batch sizes 1 .. 16384 (one numpy call per step);
  * the same through ``gymnasium.make_vec(..., vectorization_mode="vector_entry_point")``
    (infos with the tasks and episode returns included);
  * the torch twin (``TorchTrialEnv``) on the CPU, which is the path a GPU runs;
  * gymnax's ``BernoulliBandit-misc`` under ``jax.jit(jax.vmap(env.step))``, called once
    per step from Python (its documented use), and fused over a trial with ``lax.scan``;
    skipped with a note when jax/gymnax are not installed (they are not dependencies);
  * a plain numpy batch without common random numbers (``rng.random(n) < p``) that builds
    the same observation dictionary: the floor a batched step without CRN could reach;
  * a plain gymnasium single-env loop and ``SyncVectorEnv`` (16 copies).
Actions are drawn up front so that every contestant is timed on stepping alone; every
figure is the best of ``--repeats`` timings of about ``--seconds`` each.

    python benchmarks/env_throughput.py [--env bernoulli-k2-h100] [--seconds 1.0] [--quick]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable
from importlib import metadata

import gymnasium as gym
import numpy as np

import metarl_bench
from metarl_bench.records.provenance import cpu_device

BATCH_SIZES = (1, 16, 256, 1024, 4096, 16384)
LARGE = (4096, 16384)  # the sizes compared with gymnax
T = 100  # steps per timed block (one trial of bernoulli-k2-h100)
REPEATS = 3


def _timed(step_block: Callable[[], object], steps_per_call: int, seconds: float, repeats: int = REPEATS) -> float:
    """Best steps per second over ``repeats`` timings of repeated ``step_block()`` calls."""
    step_block()  # warm-up
    best = 0.0
    for _ in range(repeats):
        calls, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds / repeats:
            step_block()
            calls += 1
        best = max(best, calls * steps_per_call / (time.perf_counter() - start))
    return best


def _actions(batch: int, num_actions: int, steps: int = T) -> np.ndarray:
    return np.random.default_rng(0).integers(0, num_actions, size=(steps, batch))


def batched(env_name: str, batch: int, seconds: float) -> float:
    env = metarl_bench.make(env_name, num_trials=batch, seed=0)
    T = env.trial_length
    actions = _actions(batch, env.num_actions, T)

    def trial():
        env.reset()
        for t in range(T):
            env.step(actions[t])

    return _timed(trial, T * batch, seconds)


def make_vec(env_name: str, batch: int, seconds: float) -> float:
    env = gym.make_vec(f"metarl_bench/{env_name}", num_envs=batch, vectorization_mode="vector_entry_point")
    env.reset(seed=0)
    actions = _actions(batch, env.single_action_space.n)

    def block():  # autoreset included: the step after a trial's last starts the next trial
        for t in range(T):
            env.step(actions[t])

    return _timed(block, T * batch, seconds)


def torch_cpu(env_name: str, batch: int, seconds: float) -> float | None:
    try:
        import torch

        from metarl_bench.accel.torch_trial import TorchTrialEnv, torch_twin
    except ImportError:
        return None
    family = metarl_bench.make_family(env_name)
    if torch_twin(family) is None:  # a family (or a version of metarl-bench) without the torch path
        return None
    torch.set_num_threads(1)
    env = TorchTrialEnv(family, batch, seed=0, check_actions=False)
    actions = torch.as_tensor(_actions(batch, env.num_actions, env.trial_length))

    def trial():
        env.reset()
        for a in actions:
            env.step(a)

    return _timed(trial, env.trial_length * batch, seconds)


def plain_numpy(batch: int, seconds: float, k: int = 2) -> float:
    """The 30-line batch a user might write: no CRN, the same Dict observation, episode returns."""
    rng = np.random.default_rng(0)
    actions = _actions(batch, k)
    rows = np.arange(batch)

    def trial():
        p = rng.random((batch, k))
        returns = np.zeros(batch)
        for t in range(T):
            a = actions[t]
            r = (rng.random(batch) < p[rows, a]).astype(np.float64)
            returns += r
            one_hot = np.zeros((batch, k), np.float32)
            one_hot[rows, a] = 1.0
            _ = {
                "obs": np.zeros((batch, 1), np.float32),
                "prev_action": one_hot,
                "prev_reward": r.astype(np.float32).reshape(batch, 1),
                "new_episode": np.zeros((batch, 1), np.float32),
            }

    return _timed(trial, T * batch, seconds)


def gymnax_rates(batch: int, seconds: float) -> tuple[float, float] | None:
    """(per-step jit+vmap loop, lax.scan over a trial) steps/s of gymnax's BernoulliBandit, or None."""
    try:
        import gymnax
        import jax
        import jax.numpy as jnp
    except ImportError:
        return None
    env, params = gymnax.make("BernoulliBandit-misc")
    key = jax.random.key(0)
    _, state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(key, batch), params)

    @jax.jit
    def step(key, state, actions):  # a fresh key per trial per step, as a gymnax loop does
        key, sub = jax.random.split(key)
        obs, state, reward, done, _, _ = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
            jax.random.split(sub, batch), state, actions, params
        )
        return key, state, obs, reward, done

    actions = [jnp.asarray(a) for a in _actions(batch, 2)]
    carry = [key, state]

    def loop():
        k, s = carry
        for a in actions:
            k, s, obs, r, d = step(k, s, a)
        jax.block_until_ready(r)
        carry[:] = [k, s]

    @jax.jit
    def trial(key, state, actions):
        def body(c, a):
            k, s, obs, r, d = step(*c, a)
            return (k, s), r

        return jax.lax.scan(body, (key, state), actions)

    stacked = jnp.stack(actions)

    def scanned():
        (k, s), r = trial(*carry, stacked)
        jax.block_until_ready(r)
        carry[:] = [k, s]

    return _timed(loop, T * batch, seconds), _timed(scanned, T * batch, seconds)


def versions() -> str:
    out = [f"python {platform.python_version()}"]
    for name in ("numpy", "gymnasium", "torch", "jax", "jaxlib", "gymnax"):
        try:
            out.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            out.append(f"{name} not installed")
    return "; ".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--env", default="bernoulli-k2-h100")
    parser.add_argument("--seconds", type=float, default=1.0, help="time per measurement (best of 3 slices)")
    parser.add_argument("--quick", action="store_true", help="only the large batches and the gymnax comparison")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core, as the target says
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"# {args.env}, random actions, one core; {cpu_device()}; load average {load:.2f}; {versions()}")
    rows: list[tuple[str, int, float | None]] = []
    if not args.quick:
        rows.append(("gymnasium.make single env", 1, single_gym(args.env, args.seconds)))
        rows.append(("gymnasium SyncVectorEnv", 16, sync_vector(args.env, 16, args.seconds)))
    sizes = LARGE if args.quick else BATCH_SIZES
    rows += [("metarl-bench batched TrialEnv", b, batched(args.env, b, args.seconds)) for b in sizes]
    gymnax_by_size: dict[int, float] = {}
    for b in LARGE:
        rows.append(("metarl-bench make_vec vector_entry_point", b, make_vec(args.env, b, args.seconds)))
        rows.append(("metarl-bench TorchTrialEnv on cpu", b, torch_cpu(args.env, b, args.seconds)))
        rows.append(("plain numpy batch, no CRN", b, plain_numpy(b, args.seconds)))
    # jax last: once started, its runtime threads share this one core with whatever runs
    # next (measured here: make_vec at 16384 fell from 130M to 83M steps/s after gymnax)
    for b in LARGE:
        rates = gymnax_rates(b, args.seconds)
        if rates is None:
            rows.append(("gymnax not installed (pip install gymnax)", b, None))
            continue
        gymnax_by_size[b] = rates[0]
        rows.append(("gymnax BernoulliBandit jit(vmap) per step", b, rates[0]))
        rows.append(("gymnax BernoulliBandit lax.scan over a trial", b, rates[1]))
    print(f"{'implementation':46s} {'batch':>6s} {'steps/s':>14s} {'vs gymnax per step':>19s}")
    for name, batch, sps in rows:
        if sps is None:
            print(f"{name:46s} {batch:6d} {'-':>14s}")
            continue
        ratio = f"{sps / gymnax_by_size[batch]:18.1f}x" if batch in gymnax_by_size else ""
        print(f"{name:46s} {batch:6d} {sps:14,.0f} {ratio}")
    print(f"# load average at the end {os.getloadavg()[0]:.2f}" if hasattr(os, "getloadavg") else "")


def single_gym(env_name: str, seconds: float) -> float:
    env = gym.make(f"metarl_bench/{env_name}")
    env.reset(seed=0)
    T = env.unwrapped.family.trial_length
    actions = np.random.default_rng(0).integers(0, env.action_space.n, size=T)

    def trial():
        env.reset()
        for t in range(T):
            env.step(actions[t])

    return _timed(trial, T, seconds)


def sync_vector(env_name: str, num_envs: int, seconds: float) -> float:
    env = gym.make_vec(f"metarl_bench/{env_name}", num_envs=num_envs, vectorization_mode="sync")
    env.reset(seed=0)
    actions = _actions(num_envs, env.single_action_space.n)

    def block():
        for t in range(T):
            env.step(actions[t])

    return _timed(block, T * num_envs, seconds)


if __name__ == "__main__":
    main()
