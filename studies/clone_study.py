"""Does VSML learn backprop, and can ES improve it?  The three measurements of the study.

    python -m studies.clone_study fidelity   # vsml-clone against its teacher
    python -m studies.clone_study curve      # ES from the clone vs ES from scratch
    python -m studies.clone_study introspect # how gradient-like is each learner

``fidelity``: on held-out tasks (the evaluation streams of each distribution), the shipped
``vsml-clone`` plays its own trials while its teacher, the gradient bandit tuned for the
training distribution, is shown the same history; mean KL(teacher || clone) per step and
agreement of greedy actions.  Writes ``results/clone_fidelity.csv``.

``curve``: ES on the RL objective for the same generations and ES seeds, from the shipped
clone and from scratch; every ``--every`` generations the mean parameters are scored on
validation tasks drawn from the *training* distribution's own validation stream (never the
held-out tasks).  Writes ``results/curves/clone_es_curve.csv`` and ``.png``;
``--save-checkpoint`` stores the ES-from-clone agent of seed 0 as the shipped
``vsml-clone-es`` checkpoint (the same parameters ``run --agent vsml-clone-es --retrain``
would train, with the same budget and seed).

``introspect``: for each learner, on held-out trials of its own play, a per-step linear fit
(no intercept) of its change of logits, centred over arms, on the gradient-bandit update
direction given the same history, (R - baseline)(1[a = A] - pi_a) with pi the learner's
own policy.  R² pooled over steps; the slope is the learner's effective step size.  The
tuned gradient bandit itself scores R² = 1 by construction (a check).  Writes
``results/introspection.csv`` and ``results/introspection.png``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from metarl_bench.baselines.gradient_bandit import GradientBanditAgent, play_returns, preference_step, softmax
from metarl_bench.baselines.vsml.agent import VSMLAgent, _references, _score
from metarl_bench.baselines.vsml.clone import VSMLCloneESAgent, fidelity, tuned_teacher
from metarl_bench.baselines.vsml.rollout import play
from metarl_bench.core.family import TaskFamily
from metarl_bench.core.registry import get_spec, make_agent, make_family
from metarl_bench.core.seeding import TRAIN, eval_agent_rng, eval_noise_rng, stream
from metarl_bench.core.training import TrainOptions
from metarl_bench.core.trial import TrialEnv
from metarl_bench.evaluation.evaluate import EvalSettings, held_out_tasks
from metarl_bench.records.provenance import provenance
from metarl_bench.running.options import CommandParser

TRAIN_ENV = "bernoulli-k2-h100"
LEARNERS = ("gradient-bandit", "vsml-clone", "vsml-clone-es", "vsml")


def _seed_of(rng: np.random.Generator) -> int:
    return int(rng.integers(2**63))


# ============================================================================ fidelity
def fidelity_table(train_env: str, envs: Sequence[str], settings: EvalSettings, train_seed: int = 0) -> pd.DataFrame:
    """One row per (env, evaluation seed): KL per step and greedy agreement of vsml-clone vs its teacher."""
    rows = []
    for env in envs:
        family = make_family(env)
        student = make_agent("vsml-clone", family)
        student.prepare(make_family(train_env), train_env, TrainOptions(train_seed=train_seed))
        teacher = tuned_teacher(make_family(train_env), train_env, train_seed)
        teacher = GradientBanditAgent(family, **teacher.config)  # the tuned teacher, on this env's arms
        tasks = held_out_tasks(env, family, settings)
        for seed in settings.seeds:
            noise, agent = _seed_of(eval_noise_rng(env, seed)), _seed_of(eval_agent_rng(env, seed))
            rows.append({"env": env, "train_env": train_env, "train_seed": train_seed, "seed": seed,
                         "n_tasks": settings.n_tasks, "teacher_config": str(teacher.config),
                         **fidelity(student, teacher, family, tasks, noise, agent)})  # fmt: skip
    return pd.DataFrame(rows)


# ============================================================================ ES curves
def validation_score(agent: VSMLAgent, family: TaskFamily, name: str, seed: int, n_tasks: int) -> float:
    """Score of the mean parameters on ``n_tasks`` validation tasks of the training distribution."""
    rng = stream(TRAIN, f"{name}/validation", seed)
    tasks = family.sample_tasks(rng, n_tasks)
    ret = float(play(agent.net, agent.theta[None], family, tasks, rng).mean())
    return _score(ret, _references(family))


def es_curve(
    start: str, train_env: str, generations: int, seed: int, every: int, n_tasks: int
) -> tuple[pd.DataFrame, VSMLAgent]:
    """Score every ``every`` generations of ES from ``start`` ('clone' or 'scratch')."""
    family = make_family(train_env)
    agent: VSMLAgent = VSMLCloneESAgent(family) if start == "clone" else VSMLAgent(family)
    cfg = agent.cfg
    budget = generations * cfg.population * cfg.tasks_per_generation * family.trial_length
    points: list[dict[str, Any]] = []
    t0 = time.perf_counter()

    def record(a: VSMLAgent, stats: dict[str, Any]) -> None:
        g = stats["generation"]
        if g % every == 0 or g == generations:
            points.append({"start": start, "seed": seed, "generation": g, "wall_s": time.perf_counter() - t0,
                           "score": validation_score(a, family, train_env, seed, n_tasks)})  # fmt: skip

    first = agent  # generation 0: the clone itself, or the untrained parameters
    if start == "clone":
        first = make_agent("vsml-clone", family)
        first.prepare(family, train_env, TrainOptions(train_seed=seed))
    points.append({"start": start, "seed": seed, "generation": 0, "wall_s": 0.0,
                   "score": validation_score(first, family, train_env, seed, n_tasks)})  # fmt: skip
    agent.fit(family, budget, seed, train_env=train_env, callback=record)
    return pd.DataFrame(points), agent


def first_generation_at(curve: pd.DataFrame, level: float) -> float:
    """The first recorded generation whose validation score is >= ``level`` (NaN if never)."""
    hit = curve[curve["score"] >= level]
    return float(hit["generation"].min()) if len(hit) else float("nan")


def plot_curves(curves: pd.DataFrame, path: Path, teacher_score: float | None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    styles = {"clone": ("#0072B2", "ES from vsml-clone"), "scratch": ("#E69F00", "ES from scratch")}
    for (start, seed), curve in curves.groupby(["start", "seed"]):
        colour, label = styles[start]
        ax.plot(curve["generation"], curve["score"], color=colour, label=f"{label} (seed {seed})",
                ls="-" if seed == curves["seed"].min() else "--")  # fmt: skip
    if teacher_score is not None:
        ax.axhline(teacher_score, color="#7F7F7F", ls=(0, (4, 1.5, 1, 1.5)), label="gradient bandit (teacher)")
    ax.axhline(100, color="#000000", ls=(0, (5, 2)), lw=1.2, label="Bayes-optimal")
    ax.set_xlabel("ES generation (64 members x 64 tasks)")
    ax.set_ylabel("score on validation tasks")
    ax.set_ylim(bottom=max(-10, float(np.nanmin(curves["score"])) - 5), top=105)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title(f"{TRAIN_ENV}: ES on the RL objective")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# ============================================================================ introspection
@torch.no_grad()
def trajectories(agent: Any, family: Any, tasks: dict, env_seed: int, agent_seed: int) -> dict[str, np.ndarray]:
    """Logits (T+1, N, k), actions and rewards (T, N) of ``agent`` playing ``tasks`` its own way."""
    n = len(next(iter(tasks.values())))
    env = TrialEnv(family, num_trials=n)
    obs = env.reset(seed=np.random.default_rng(env_seed), tasks=tasks)
    memory = agent.reset(n, rng=np.random.default_rng(agent_seed))
    logits, actions, rewards = [], [], []
    for _ in range(family.trial_length):
        step_logits, memory = agent.logits(obs, memory)
        a, memory = agent.act_on_logits(step_logits, memory)
        obs, r, _, _ = env.step(a)
        logits.append(np.asarray(step_logits, float))
        actions.append(a)
        rewards.append(r)
    # The logits after the last reward: one more look at the final observation.
    last, _ = agent.logits(obs, memory)
    logits.append(np.asarray(last, float))
    return {"logits": np.stack(logits), "actions": np.stack(actions), "rewards": np.stack(rewards)}


def gradient_fit(traj: dict[str, np.ndarray], baseline: str) -> dict[str, Any]:
    """Per-step no-intercept fit of the centred change of logits on the gradient-bandit direction."""
    logits, actions, rewards = traj["logits"], traj["actions"], traj["rewards"]
    T = len(actions)
    centred = logits - logits.mean(axis=-1, keepdims=True)
    delta = centred[1:] - centred[:-1]  # (T, N, k)
    counts = np.arange(1, T + 1)[:, None]
    base = np.cumsum(rewards, axis=0) / counts if baseline == "mean" else np.zeros_like(rewards)
    ss_res = ss_tot = 0.0
    slopes, r2_steps = [], []
    for t in range(T):
        g = preference_step(softmax(logits[t]), actions[t], rewards[t], base[t])
        d = delta[t]
        gg = float((g * g).sum())
        slope = float((d * g).sum()) / gg if gg > 0 else 0.0  # no direction (first step, R = baseline)
        res, tot = float(((d - slope * g) ** 2).sum()), float((d * d).sum())
        slope = slope if gg > 0 else np.nan
        ss_res, ss_tot = ss_res + res, ss_tot + tot
        slopes.append(slope)
        r2_steps.append(1.0 - res / tot if tot > 0 else np.nan)
    return {"r2": 1.0 - ss_res / ss_tot if ss_tot > 0 else float("nan"), "slopes": np.array(slopes),
            "r2_steps": np.array(r2_steps)}  # fmt: skip


def introspect(env: str, settings: EvalSettings, learners: Sequence[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(table, per-step curves) of the gradient fit for each learner on held-out tasks of ``env``."""
    family = make_family(env)
    tasks = held_out_tasks(env, family, settings)
    baseline = tuned_teacher(family, env).config["baseline"]
    table, steps = [], []
    for name in learners:
        agent = make_agent(name, family)
        agent.prepare(family, env)
        for seed in settings.seeds:
            traj = trajectories(agent, family, tasks, _seed_of(eval_noise_rng(env, seed)),
                                _seed_of(eval_agent_rng(env, seed)))  # fmt: skip
            fit = gradient_fit(traj, baseline)
            table.append({"learner": name, "env": env, "seed": seed, "n_tasks": settings.n_tasks, "r2": fit["r2"],
                          "median_step_r2": float(np.nanmedian(fit["r2_steps"])),
                          "mean_slope": float(np.nanmean(fit["slopes"])), "baseline": baseline,
                          "mean_return": float(traj["rewards"].sum(axis=0).mean())})  # fmt: skip
            steps += [{"learner": name, "seed": seed, "step": t, "r2": r, "slope": s}
                      for t, (r, s) in enumerate(zip(fit["r2_steps"], fit["slopes"], strict=True))]  # fmt: skip
    return pd.DataFrame(table), pd.DataFrame(steps)


def plot_introspection(steps: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = dict(zip(LEARNERS, ["#000000", "#0072B2", "#009E73", "#E69F00"], strict=True))
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for name, group in steps.groupby("learner", sort=False):
        curve = group.groupby("step")["r2"].mean()
        smooth = curve.rolling(5, min_periods=1, center=True).mean()
        ax.plot(smooth.index, smooth.values, color=colours.get(name, "#CC79A7"), label=name,
                ls=(0, (5, 2)) if name == "gradient-bandit" else "-")  # fmt: skip
    ax.set_xlabel("step of the trial")
    ax.set_ylabel("R² of Δlogit on the gradient-bandit update")
    ax.set_ylim(-0.05, 1.05)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(f"{TRAIN_ENV}: how gradient-like is each update")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# ============================================================================ CLI
def main(argv: Sequence[str] | None = None) -> int:
    parser = CommandParser(prog="python -m studies.clone_study", description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=["fidelity", "curve", "introspect"])
    parser.add_argument("--results", default="results", help="results folder (default: results)")
    parser.add_argument("--env", default="bernoulli-k2-h100,bernoulli-k5-h100,bernoulli-k10-h100,gaussian-k5-h100",
                        help="fidelity: distributions (comma list); introspect uses the first")  # fmt: skip
    parser.add_argument("--eval-tasks", type=int, default=1000)
    parser.add_argument("--seeds", default="0,1,2", help="evaluation seeds (fidelity, introspect); ES seeds (curve)")
    parser.add_argument("--generations", type=int, default=200, help="curve: ES generations per run")
    parser.add_argument("--every", type=int, default=10, help="curve: generations between validation scores")
    parser.add_argument("--start", choices=["both", "clone", "scratch"], default="both",
                        help="curve: which ES runs (both: from the clone and from scratch)")  # fmt: skip
    parser.add_argument("--curve-file", default="clone_es_curve",
                        help="curve: file stem under <results>/curves (append runs made separately)")  # fmt: skip
    parser.add_argument("--validation-tasks", type=int, default=2000)
    parser.add_argument("--save-checkpoint", action="store_true", help="curve: ship the ES-from-clone agent (seed 0)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    try:
        seeds = tuple(int(s) for s in args.seeds.split(","))
        envs = [e.strip() for e in args.env.split(",") if e.strip()]
        for env in envs:
            get_spec(env)
        if args.eval_tasks < 2 or args.generations < 1 or args.every < 1:
            raise ValueError("--eval-tasks must be >= 2, --generations and --every >= 1")
    except (ValueError, KeyError) as exc:
        return parser.fail(exc)
    torch.set_num_threads(args.threads)
    results = Path(args.results)
    prov = provenance(threads=args.threads)
    if args.what == "fidelity":
        settings = EvalSettings(n_tasks=args.eval_tasks, seeds=seeds)
        table = fidelity_table(TRAIN_ENV, envs, settings).assign(**prov)
        path = results / "clone_fidelity.csv"
        table.to_csv(path, index=False)
        print(table.groupby("env", sort=False)[["kl_per_step", "greedy_agreement", "student_return"]].mean())
    elif args.what == "curve":
        curves = []
        starts = ("clone", "scratch") if args.start == "both" else (args.start,)
        for seed in seeds:
            for start in starts:
                curve, agent = es_curve(start, TRAIN_ENV, args.generations, seed, args.every, args.validation_tasks)
                curves.append(curve)
                print(curve.tail(1).to_string(index=False))
                if args.save_checkpoint and start == "clone" and seed == seeds[0]:
                    print("saved", agent.save(agent.checkpoint_path(TRAIN_ENV, seed)))
        curves = pd.concat(curves).assign(**prov)
        (results / "curves").mkdir(parents=True, exist_ok=True)
        path = results / "curves" / f"{args.curve_file}.csv"
        if path.exists():  # keep the other (start, seed) runs already in the file
            old = pd.read_csv(path)
            done = set(zip(curves["start"], curves["seed"], strict=True))
            keep = [(a, b) not in done for a, b in zip(old["start"], old["seed"], strict=True)]
            curves = pd.concat([old[keep], curves], ignore_index=True)
        curves.to_csv(path, index=False)
        teacher = _teacher_validation_score(args.validation_tasks, seeds[0])
        plot_curves(curves, path.with_suffix(".png"), teacher)
        for (start, seed), c in curves.groupby(["start", "seed"]):
            print(f"{start} seed {seed}: first generation with score >= 90: {first_generation_at(c, 90)}; "
                  f"final {c['score'].iloc[-1]:.1f}")  # fmt: skip
    else:
        settings = EvalSettings(n_tasks=args.eval_tasks, seeds=seeds)
        table, steps = introspect(envs[0], settings, LEARNERS)
        table = table.assign(**prov)
        table.to_csv(results / "introspection.csv", index=False)
        plot_introspection(steps, results / "introspection.png")
        print(table.groupby("learner", sort=False)[["r2", "median_step_r2", "mean_slope", "mean_return"]].mean())
    return 0


def _teacher_validation_score(n_tasks: int, seed: int) -> float | None:
    """The tuned teacher's score on the curve's validation tasks, for the dashed line."""
    family = make_family(TRAIN_ENV)
    teacher = tuned_teacher(family, TRAIN_ENV)
    rng = stream(TRAIN, f"{TRAIN_ENV}/validation", seed)
    tasks = family.sample_tasks(rng, n_tasks)
    ret = float(play_returns(teacher, family, tasks, _seed_of(rng), _seed_of(rng)).mean())
    return _score(ret, _references(family))


__all__ = ["fidelity_table", "es_curve", "introspect", "gradient_fit", "main"]

if __name__ == "__main__":
    sys.exit(main())
