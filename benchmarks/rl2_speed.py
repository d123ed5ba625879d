"""RL² training speed: the code before issue #25, the code now, and plain sb3-contrib, side by side.

On each distribution (``bernoulli-k10-h100``, ``bernoulli-k50-h500``, ``tabular-mdp-s10-a5-n10``),
in one run on one machine:

- before: the ``rl2`` agent at commit ``6354ff8`` (sb3-contrib's own ``RecurrentPPO`` policy,
  which steps the LSTM one time step at a time in training), played from a git worktree of
  that commit in a subprocess (its modules are checked to come from there);
- now: the ``rl2`` agent of this checkout (``WholeSequenceLstmPolicy``: one LSTM call per
  sequence where episodes start only at a sequence's first step; ``LockstepRecurrentPPO``);
- plain: what a user would write without metarl-bench: ``RecurrentPPO("MultiInputLstmPolicy",
  DummyVecEnv([gym.make(id)] * n))`` with sb3-contrib's default hyper-parameters.

Frames per second = env steps consumed by ``learn`` / wall time (rollouts and updates
together), after a warm-up; ``--threads`` torch threads (default 1).  CUDA rows are added
where a GPU is available (the before and plain rows stay on the CPU).  With ``--csv FILE``
the rows are appended there too, with the machine and commit.

    python benchmarks/rl2_speed.py [--steps 200000] [--before-steps 100000] [--plain-steps 10000]
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import gymnasium as gym
import torch
from sb3_contrib import RecurrentPPO
from stable_baselines3.common.vec_env import DummyVecEnv

import metarl_bench
from metarl_bench.baselines.rl2.agent import RL2Agent
from metarl_bench.records.provenance import cpu_name, git_commit

ENVS = ("bernoulli-k10-h100", "bernoulli-k50-h500", "tabular-mdp-s10-a5-n10")
BEFORE = "6354ff8"  # the last commit before issue #25's whole-sequence policy
ROOT = Path(__file__).resolve().parent.parent

# Runs in the subprocess: the old tree's modules, never this checkout's (an editable install of
# this checkout maps metarl_bench.envs/.baselines here; that finder is dropped, the old folders
# mapped, and the old tree's entry points stand in for this install's).
BEFORE_SCRIPT = r"""
import importlib.machinery, importlib.util, json, sys, time
tree, env, steps, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in type(f).__name__.lower()
                    and "editable" not in getattr(f, "__module__", "").lower()]
class OldTree:
    folders = {"metarl_bench": tree + "/metarl_bench", "metarl_bench.envs": tree + "/envs",
               "metarl_bench.baselines": tree + "/baselines"}
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name in cls.folders:
            return importlib.util.spec_from_file_location(
                name, cls.folders[name] + "/__init__.py", submodule_search_locations=[cls.folders[name]])
        return None
sys.meta_path.insert(0, OldTree)
import importlib.metadata, tomllib, types  # the old tree's entry points, not this install's
old = tomllib.loads(open(tree + "/pyproject.toml").read())["project"]["entry-points"]
ours, original = types.SimpleNamespace(name="metarl-bench"), importlib.metadata.entry_points
def entry_points(**kwargs):
    group = kwargs.get("group")
    if group not in old:  # gymnasium's plugins and the rest: as installed
        return original(**kwargs)
    return [types.SimpleNamespace(name=n, value=v, group=group, dist=ours,
                                  load=lambda v=v: importlib.import_module(v)) for n, v in old[group].items()]
importlib.metadata.entry_points = entry_points
import torch
torch.set_num_threads(threads)
import metarl_bench
from metarl_bench.baselines.rl2 import RL2Agent
import metarl_bench.baselines.rl2 as rl2
assert rl2.__file__.startswith(tree), rl2.__file__
family = metarl_bench.make_family(env)
RL2Agent(family).fit(family, 10_000, seed=1, progress=False)  # warm-up
agent = RL2Agent(family)
start = time.perf_counter()
agent.fit(family, steps, seed=0, progress=False)
print(json.dumps({"fps": agent.train_steps / (time.perf_counter() - start), "module": rl2.__file__}))
"""


def now_fps(env: str, steps: int, device: str) -> float:
    family = metarl_bench.make_family(env)
    RL2Agent(family).fit(family, 10_000, seed=1, progress=False, device=device)  # warm-up (imports, kernels)
    agent = RL2Agent(family)
    start = time.perf_counter()
    agent.fit(family, steps, seed=0, progress=False, device=device)
    return agent.train_steps / (time.perf_counter() - start)


def before_fps(tree: Path, env: str, steps: int, threads: int) -> float:
    done = subprocess.run(
        [sys.executable, "-c", BEFORE_SCRIPT, str(tree), env, str(steps), str(threads)],
        cwd=tree, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"the code at {BEFORE} failed on {env}: {done.stderr.strip().splitlines()[-1:]}")
    return float(json.loads(done.stdout.strip().splitlines()[-1])["fps"])


def plain_fps(env: str, steps: int, n_envs: int, device: str) -> float:
    venv = DummyVecEnv([lambda: gym.make(f"metarl_bench/{env}") for _ in range(n_envs)])
    model = RecurrentPPO("MultiInputLstmPolicy", venv, seed=0, device=device, verbose=0)
    model.learn(total_timesteps=model.n_steps * n_envs)  # warm-up: one rollout and update
    done = model.num_timesteps
    start = time.perf_counter()
    model.learn(total_timesteps=steps, reset_num_timesteps=False)
    return (model.num_timesteps - done) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=200_000, help="env steps timed for the code now")
    parser.add_argument("--before-steps", type=int, default=100_000, help=f"env steps timed for the code at {BEFORE}")
    parser.add_argument("--plain-steps", type=int, default=10_000, help="env steps timed for plain sb3-contrib")
    parser.add_argument("--plain-envs", type=int, default=8, help="single envs in the plain DummyVecEnv")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--envs", default=",".join(ENVS), help="comma list of distributions")
    parser.add_argument("--csv", type=Path, help="append the rows to this CSV file too")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    commit = git_commit()  # once: the rows of one run share it
    header = f"# {cpu_name()}, torch {torch.__version__}, {args.threads} CPU thread(s), commit {commit}"
    print(header)
    print(f"{'env':<24}{'device':<8}{'setup':<44}{'fps':>9}{'vs before':>11}")
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        tree = Path(scratch) / "before"
        subprocess.run(["git", "worktree", "add", "--detach", "-q", str(tree), BEFORE], cwd=ROOT, check=True)
        try:
            for env in args.envs.split(","):
                before = before_fps(tree, env, args.before_steps, args.threads)
                measured = [("cpu", f"before ({BEFORE}, sb3-contrib's stepwise LSTM)", before)]
                measured.append(("cpu", "plain RecurrentPPO defaults, DummyVecEnv x8", plain_fps(
                    env, args.plain_steps, args.plain_envs, "cpu")))  # fmt: skip
                for device in ["cpu"] + (["cuda"] if torch.cuda.is_available() else []):
                    measured.append((device, "now (whole-sequence LSTM passes)", now_fps(env, args.steps, device)))
                for device, setup, fps in measured:
                    print(f"{env:<24}{device:<8}{setup:<44}{fps:>9.0f}{fps / before:>10.1f}x", flush=True)
                    rows.append({"env": env, "device": device, "setup": setup, "fps": round(fps),
                                 "vs_before": round(fps / before, 2), "threads": args.threads, "machine": cpu_name(),
                                 "commit": commit, "command": " ".join(["python", *sys.argv])})  # fmt: skip
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, check=False)
    if args.csv is not None:
        new = not args.csv.exists()
        with args.csv.open("a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            if new:
                writer.writeheader()
            writer.writerows(rows)


if __name__ == "__main__":
    main()
