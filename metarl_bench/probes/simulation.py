"""Simulation analysis: is the memory a belief state, or only a record of history?

A linear probe finds the posterior in any memory that keeps the history (an untrained LSTM
decodes it nearly as well as a trained one).  Following Mikulik et al. (2020, "Meta-trained
agents implement Bayes-optimal agents"), this analysis asks for simulation in both
directions, in behaviour and in state, and compares the agent with four controls
(``subjects``): the untrained network of the same architecture, the same agent trained on
another distribution, and two synthetic agents that act as the Bayes reference and hold
either exactly the Bayes state or the raw history (``metarl_bench.probes.controls``).

**Behaviour.**  ``behaviour_kl``: KL(Bayes || subject) and KL(subject || Bayes) per step,
averaged over all steps of all trials, on the subject's own histories and on the Bayes
reference's (``histories`` = ``subject`` or ``bayes``; the other one shadows).  The Bayes
policy trembles (``bayes_policy.BAYES_EPS``) so that both directions are finite.

**State.**  On the subject's memory recorded on the *agent's* histories (every subject
shadows the agent), maps are fitted on the rows of half of the tasks and scored on the
other half (the linear probe's split): ``subject->belief`` maps the memory to the
posterior (every belief feature scaled to unit total variance, as the probe's target
``all``); ``belief->subject`` maps the Bayes state (that posterior, the inner observation
and the step as a share of the trial: what the Bayes policy acts on) to the memory.  Each
is a small MLP and the linear probe's ridge (``metarl_bench.probes.maps``), both on the
same rows (at most ``maps.MAP_MAX_ROWS`` of them, drawn from the fit tasks).
``state_nmse`` is the held-out MSE over the target's variance (0: the map is exact).

**Output.**  ``output_kl`` asks whether the mapped state still acts right.
``subject->belief``: KL between the Bayes policy at the true posterior and at the mapped
one (projected on the nearest valid belief, ``bayes_policy.BayesLookup``); so it is the
share of steps where the mapped belief changes the Bayes action, times a constant.  It is
left out where the reference is not a function of the posterior, observation and step
(a lower-bound policy that plans once per episode).  ``belief->subject``: KL between the
subject's policy at its real memory and its policy head applied to the mapped memory
(``metarl_bench.probes.heads``); left out for a subject without a head.

**Order** (bandits): ``metarl_bench.probes.order``.

Every figure has a 95% percentile bootstrap CI over tasks (the project's one bootstrap):
behaviour over all tasks, maps and order over the test tasks.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from metarl_bench.core.agent import Agent
from metarl_bench.core.family import TaskFamily
from metarl_bench.core.seeding import stream
from metarl_bench.evaluation.evaluate import EvalSettings
from metarl_bench.evaluation.stats import bootstrap_ci
from metarl_bench.probes.analysis import PROBE_SPLIT, _per_unit, ratio_of_sums, split_tasks, trials_of
from metarl_bench.probes.bayes_policy import BayesLookup, kl_rows, soft_bayes
from metarl_bench.probes.controls import (
    EXACT_POSTERIOR,
    HISTORY_BUFFER,
    BayesAtBelief,
    ExactPosteriorAgent,
    HistoryBufferAgent,
    bayes_state,
)
from metarl_bench.probes.heads import checked_head
from metarl_bench.probes.maps import MAP_KINDS, score_map
from metarl_bench.probes.order import is_bandit, order_invariance, plan_order
from metarl_bench.probes.record import bayes_shadow
from metarl_bench.probes.simulation_input import check_simulatable
from metarl_bench.probes.traces import trace

SIMULATION_SEED = 11  # seeding purpose of the maps and reorderings (PROBE_SPLIT, 10, is the split's)
AGENT = "agent"  # the subject that is the probed agent itself
HEAD_CHECK_ROWS = 4096  # recorded steps on which a policy head must reproduce action_probs


@dataclass
class Measure:
    """One figure of one subject."""

    measure: str  # behaviour_kl, state_nmse, output_kl, order_ratio, order_perm_distance, order_other_distance
    direction: str  # "bayes||subject", "subject||bayes", "subject->belief", "belief->subject", or ""
    histories: str  # whose histories: "subject", "bayes" or "agent"
    map: str  # "mlp", "ridge" or ""
    value: float
    ci: tuple[float, float]
    note: str = ""


@dataclass
class SimulationReport:
    """Everything one simulation run produced."""

    agent: str
    env: str
    bayes_method: str
    subject_notes: dict[str, str]
    measures: dict[str, list[Measure]]
    memory_dims: dict[str, int]
    belief_dim: int
    n_tasks: int
    n_trials: int
    fit_tasks: np.ndarray
    test_tasks: np.ndarray
    steps: int
    order_note: str
    info: dict[str, Any] = field(default_factory=dict)

    def value(self, subject: str, measure: str, direction: str = "", histories: str = "", map: str = "") -> float:
        """The value of the one measure that matches (a convenience for tests and tables)."""
        found = [
            m
            for m in self.measures[subject]
            if m.measure == measure
            and (not direction or m.direction == direction)
            and (not histories or m.histories == histories)
            and (not map or m.map == map)
        ]
        if len(found) != 1:
            raise KeyError(f"{len(found)} measures match {subject}/{measure}/{direction}/{histories}/{map}")
        return found[0].value


def _per_step_figure(values: np.ndarray, units: np.ndarray, seed: int) -> tuple[float, tuple[float, float]]:
    """Mean of ``values`` [trial, step] over every step, CI over the trials' units (tasks)."""
    uniq, inv = np.unique(units, return_inverse=True)
    sums = _per_unit(values.sum(axis=1), inv, len(uniq))
    steps = _per_unit(np.full(len(values), float(values.shape[1])), inv, len(uniq))
    return float(values.mean()), bootstrap_ci(ratio_of_sums, sums, steps, seed=seed)


def _scales(family: TaskFamily, posterior: np.ndarray) -> np.ndarray:
    """Per column: the total standard deviation of its belief feature (so every feature counts equally)."""
    scale = np.ones(posterior.shape[-1])
    flat = posterior.reshape(-1, posterior.shape[-1])
    start = 0
    for value in family.belief_features(family.prior(1)).values():
        width = int(np.asarray(value).size)
        sd = float(np.sqrt(flat[:, start : start + width].var(axis=0).sum()))
        scale[start : start + width] = sd if sd > 1e-12 else 1.0  # a constant feature stays as it is
        start += width
    return scale


class _Simulation:
    """One run's state: the traces, the split, the lookup; each method adds one kind of measure."""

    def __init__(
        self, agent: Agent, env: str, settings: EvalSettings, subjects: dict[str, Agent], split_seed: int, bayes: Agent
    ):
        self.agent, self.env, self.family, self.settings = agent, env, agent.family, settings
        self.bayes = bayes  # the reference's policy, shared by every trace (its planner caches serve all)
        self.subjects, self.split_seed = subjects, split_seed
        self.k = self.family.num_actions
        self.seeds = stream(SIMULATION_SEED, env, split_seed, 0)  # the maps' seeds
        self.order_rng = stream(SIMULATION_SEED, env, split_seed, 1)  # the reorderings and partners
        self.measures: dict[str, list[Measure]] = {name: [] for name in subjects}

    def record(self, fit_tasks: np.ndarray) -> None:
        others = {n: a for n, a in self.subjects.items() if n != AGENT}
        fam, env, settings = self.family, self.env, self.settings
        self.on_agent = trace(env, fam, settings, (AGENT, self.agent), others, self.bayes, set(self.subjects))
        self.on_bayes = trace(env, fam, settings, ("bayes", self.bayes), dict(self.subjects), None)
        self.own = {AGENT: self.on_agent}
        for name, subject in others.items():
            self.own[name] = trace(env, fam, settings, (name, subject), {}, self.bayes)
        n_trials = len(self.on_agent.actions)
        self.fit = trials_of(fit_tasks, settings.n_tasks, n_trials)
        self.test = np.setdiff1d(np.arange(n_trials), self.fit)
        self.tasks = self.on_agent.task_of_trial
        self.scale = _scales(fam, self.on_agent.posterior[self.fit])

    def build_lookup(self) -> None:
        """The Bayes policy at any belief, from every belief recorded (agent's and Bayes histories)."""
        rows = [(tr.posterior, tr.inner_obs, tr.bayes_actions) for tr in (self.on_agent, self.on_bayes)]
        T = self.family.trial_length
        steps = np.concatenate([np.tile(np.arange(T), len(p)) for p, _, _ in rows])
        flat = lambda a: a.reshape(-1, a.shape[-1]) if a.ndim == 3 else a.reshape(-1)  # noqa: E731
        post = np.concatenate([flat(p) for p, _, _ in rows]) / self.scale
        obs = np.concatenate([flat(o) for _, o, _ in rows])
        actions = np.concatenate([flat(a) for _, _, a in rows])
        self.lookup = BayesLookup(post, steps, obs, actions)
        # The reference is a function of (posterior, observation, step) exactly when the lookup returns its actions
        agree = float((self.lookup.query(post, steps, obs) == actions).mean())
        self.lookup_note = (
            ""
            if agree == 1.0
            else (
                f"left out: the Bayes reference ({bayes_shadow(self.family)[1]}) is not a function of the posterior, "
                f"observation and step (the nearest valid belief repeats its action on {agree:.1%} of steps)"
            )
        )
        bayes_at = BayesAtBelief(self.lookup, self.scale, self.k)
        for subject in self.subjects.values():
            if isinstance(subject, (ExactPosteriorAgent, HistoryBufferAgent)):
                subject.bind(bayes_at)

    def behaviour(self) -> None:
        seed = self.split_seed
        for name in self.subjects:
            for histories, tr in (("subject", self.own[name]), ("bayes", self.on_bayes)):
                bayes, mine = soft_bayes(tr.bayes_actions.reshape(-1), self.k), tr.probs[name].reshape(-1, self.k)
                for direction, kl in (("bayes||subject", kl_rows(bayes, mine)),
                                       ("subject||bayes", kl_rows(mine, bayes))):  # fmt: skip
                    value, ci = _per_step_figure(kl.reshape(tr.actions.shape), tr.task_of_trial, seed)
                    self.measures[name].append(Measure("behaviour_kl", direction, histories, "", value, ci))

    def _bayes_actions(self, posterior_std: np.ndarray) -> np.ndarray:
        """Lookup at [trial, step, m] standardised posteriors of the test trials, at their true step and observation."""
        n, T = len(self.test), self.family.trial_length
        steps = np.tile(np.arange(T), n)
        obs = self.on_agent.inner_obs[self.test].reshape(n * T, -1)
        return self.lookup.query(posterior_std.reshape(n * T, -1), steps, obs).reshape(n, T)

    def _kl_figure(self, p: np.ndarray, q: np.ndarray) -> tuple[float, tuple[float, float]]:
        n, T = len(self.test), self.family.trial_length
        kl = kl_rows(p.reshape(n * T, -1), q.reshape(n * T, -1)).reshape(n, T)
        return _per_step_figure(kl, self.tasks[self.test], self.split_seed)

    def maps(self) -> None:
        tr, T = self.on_agent, self.family.trial_length
        belief = tr.posterior / self.scale
        context = bayes_state(
            belief.reshape(-1, belief.shape[-1]),
            tr.inner_obs.reshape(len(tr.actions) * T, -1),
            np.tile(np.arange(T), len(tr.actions)),
            T,
        ).reshape(len(tr.actions), T, -1)
        true_actions = self._bayes_actions(belief[self.test]) if not self.lookup_note else None
        for name, subject in self.subjects.items():
            x = tr.features[name]
            head, head_note = self._head(subject, name)
            samples = [int(v) for v in self.seeds.integers(2**62, size=2)]  # rows each direction's maps see
            for kind in MAP_KINDS:
                seed = int(self.seeds.integers(2**62))
                to_belief = score_map(
                    kind, x, belief, self.fit, self.test, self.tasks, seed, self.split_seed, samples[0]
                )
                self._add(name, "state_nmse", "subject->belief", kind, to_belief.nmse, to_belief.ci)
                if true_actions is None:
                    self._add(name, "output_kl", "subject->belief", kind, np.nan, (np.nan, np.nan), self.lookup_note)
                else:
                    mapped = self._bayes_actions(to_belief.prediction)
                    value, ci = self._kl_figure(soft_bayes(true_actions.reshape(-1), self.k),
                                                soft_bayes(mapped.reshape(-1), self.k))  # fmt: skip
                    self._add(name, "output_kl", "subject->belief", kind, value, ci)
                seed = int(self.seeds.integers(2**62))
                to_memory = score_map(
                    kind, context, x, self.fit, self.test, self.tasks, seed, self.split_seed, samples[1]
                )
                self._add(name, "state_nmse", "belief->subject", kind, to_memory.nmse, to_memory.ci)
                if head is None:
                    self._add(name, "output_kl", "belief->subject", kind, np.nan, (np.nan, np.nan), head_note)
                else:
                    real = head(x[self.test].reshape(-1, x.shape[-1]))
                    mapped = head(to_memory.prediction.reshape(-1, x.shape[-1]))
                    value, ci = self._kl_figure(real, mapped)
                    self._add(name, "output_kl", "belief->subject", kind, value, ci)

    def _head(self, subject: Agent, name: str) -> tuple[Any, str]:
        """The subject's policy head, checked against its recorded action_probs on a sample of steps."""
        x = self.on_agent.features[name].reshape(-1, self.on_agent.features[name].shape[-1])
        p = self.on_agent.probs[name].reshape(-1, self.k)
        rows = np.random.default_rng(0).choice(len(x), min(len(x), HEAD_CHECK_ROWS), replace=False)
        head, note = checked_head(subject, x[rows], p[rows])
        return head, (f"left out: {note}" if note else "")

    def _add(self, name: str, measure: str, direction: str, kind: str, value: float, ci: Any, note: str = "") -> None:
        self.measures[name].append(Measure(measure, direction, "agent", kind, float(value), tuple(ci), note))

    def order(self) -> None:
        tr = self.on_agent
        inner, actions, rewards = tr.inner_obs[self.test, 0], tr.actions[self.test], tr.rewards[self.test]
        plan = plan_order(self.family, inner, actions, rewards, self.order_rng)
        units = self.tasks[self.test]
        for name, subject in self.subjects.items():
            res = order_invariance(subject, self.family, plan, inner, actions, rewards, units, self.split_seed)
            for measure, fig in (("order_ratio", res.ratio), ("order_perm_distance", res.perm_distance),
                                 ("order_other_distance", res.other_distance)):  # fmt: skip
                self._add(name, measure, "", "", fig.value, fig.ci)


def simulate(
    agent: Agent,
    env: str,
    settings: EvalSettings,
    controls: dict[str, tuple[Agent | None, str]] | None = None,
    fit_frac: float = 0.5,
    split_seed: int = 0,
    order: str = "auto",
) -> SimulationReport:
    """The simulation analysis of ``agent`` on ``env`` against ``controls`` (name -> (agent or None, note)) and the
    two synthetic agents.  ``split_seed`` fixes the split (the linear probe's), the maps' seeds, the reorderings
    and the bootstrap; ``order`` is "auto" (bandits only), "on" (refused elsewhere) or "off"."""
    start = time.perf_counter()
    check_simulatable(agent, env, order)
    family = agent.family
    fit_tasks, test_tasks = split_tasks(settings.n_tasks, fit_frac, stream(PROBE_SPLIT, env, split_seed))
    notes = {AGENT: f"{agent.name} as given"}
    subjects: dict[str, Agent] = {AGENT: agent}
    for name, (control, note) in (controls or {}).items():
        notes[name] = note
        if control is not None:
            subjects[name] = control
    bayes = bayes_shadow(family)[0]  # one instance: the planners' caches serve every shadow
    subjects[EXACT_POSTERIOR] = ExactPosteriorAgent(family, bayes)
    subjects[HISTORY_BUFFER] = HistoryBufferAgent(family, bayes)
    notes[EXACT_POSTERIOR] = "acts as the Bayes reference; memory: posterior, observation, step"
    notes[HISTORY_BUFFER] = "acts as the Bayes reference; memory: every observation so far, zero-padded"
    sim = _Simulation(agent, env, settings, subjects, split_seed, bayes)
    sim.record(fit_tasks)
    sim.build_lookup()
    sim.behaviour()
    sim.maps()
    run_order = order == "on" or (order == "auto" and is_bandit(family))
    if run_order:
        sim.order()
    order_note = ""
    if not run_order:
        order_note = "order: off" if order == "off" else f"order: bandits only, not {family.describe()}"
    return SimulationReport(
        agent=agent.name,
        env=env,
        bayes_method=bayes_shadow(family)[1],
        subject_notes={n: notes[n] for n in subjects} | {n: v for n, v in notes.items() if n not in subjects},
        measures=sim.measures,
        memory_dims={n: int(sim.on_agent.features[n].shape[-1]) for n in subjects},
        belief_dim=int(sim.on_agent.posterior.shape[-1]),
        n_tasks=settings.n_tasks,
        n_trials=len(sim.on_agent.actions),
        fit_tasks=fit_tasks,
        test_tasks=test_tasks,
        steps=family.trial_length,
        order_note=order_note,
        info={"wall_s": time.perf_counter() - start},
    )
