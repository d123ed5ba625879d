"""The simulation analysis: synthetic agents that must pass and fail, policy heads, replay, bad input, the CLI."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

import metarl_bench
from metarl_bench.core.agent import Agent, Obs, fresh_rng, last_transition
from metarl_bench.core.family import Arrays
from metarl_bench.core.learner import train_or_load
from metarl_bench.core.registry import _REG
from metarl_bench.core.trial import TrialEnv
from metarl_bench.envs.bandits.family import BernoulliBandit
from metarl_bench.evaluation.evaluate import EvalSettings
from metarl_bench.probes import bayes_policy as BP
from metarl_bench.probes import heads, maps, order, simulation_rows
from metarl_bench.probes.controls import (
    EXACT_POSTERIOR,
    HISTORY_BUFFER,
    ExactPosteriorAgent,
    HistoryBufferAgent,
    flat_posterior,
)
from metarl_bench.probes.record import ProbeError
from metarl_bench.probes.simulation import AGENT, simulate
from metarl_bench.probes.traces import trace
from metarl_bench.records import provenance
from metarl_bench.reporting.report_belief import belief_simulation_section
from metarl_bench.running import probe as P

SMALL = "test-sim-k2-h20"
NO_REFERENCE = "test-sim-noref"
FAST = EvalSettings(n_tasks=60, seeds=(0,))
EXACT_TOL = 1e-6  # the exact-posterior agent's dissimilarities: 0 up to rounding
FAIL_AT = 0.2  # the history buffer's belief -> memory nMSE and order ratio are above this (measured ~0.3-0.5)


class CountsAgent(Agent):
    """Plays uniformly at random; its memory is the family's posterior, exactly: a belief state that acts badly."""

    name = "test-sim-counts"

    def reset(self, num_trials: int, rng: np.random.Generator | None = None, tasks: Arrays | None = None) -> Any:
        return {"rng": np.random.default_rng(rng), "belief": self.family.prior(num_trials)}

    def action_probs(self, obs: Obs, memory: Any) -> tuple[np.ndarray, Any]:
        return np.full((len(obs["prev_action"]), self.num_actions), 1.0 / self.num_actions), memory

    def act(self, obs: Obs, memory: Any) -> tuple[np.ndarray, Any]:
        action, reward, has_prev = last_transition(obs)
        belief = memory["belief"]
        if has_prev.all():
            belief = self.family.update_belief(belief, action, reward)
        rng = fresh_rng(memory["rng"])
        return rng.integers(0, self.num_actions, size=len(action)), {"rng": rng, "belief": belief}

    def features(self, memory: Any) -> np.ndarray:
        return flat_posterior(self.family, memory["belief"])


class RecencyAgent(CountsAgent):
    """Memory: rewards per arm with older ones decayed: it keeps the counts' information but depends on order."""

    name = "test-sim-recency"

    def reset(self, num_trials: int, rng: np.random.Generator | None = None, tasks: Arrays | None = None) -> Any:
        return {**super().reset(num_trials, rng, tasks), "trace": np.zeros((num_trials, 2 * self.num_actions))}

    def act(self, obs: Obs, memory: Any) -> tuple[np.ndarray, Any]:
        actions, new = super().act(obs, memory)
        k = self.num_actions
        x = np.concatenate([obs["prev_action"] * obs["prev_reward"], obs["prev_action"]], axis=1)
        return actions, {**new, "trace": 0.8 * memory["trace"] + x[:, : 2 * k]}

    def features(self, memory: Any) -> np.ndarray:
        return memory["trace"]


class NoReferenceBandit(BernoulliBandit):
    """A bandit with a belief model but no Bayes reference."""

    def bayes_reference(self):
        return None


@pytest.fixture(scope="module", autouse=True)
def registered():
    metarl_bench.register(SMALL, BernoulliBandit, replace=True, k=2, horizon=20)
    metarl_bench.register(NO_REFERENCE, NoReferenceBandit, replace=True, k=2, horizon=20)
    for cls in (CountsAgent, RecencyAgent):
        metarl_bench.register_agent(cls.name, cls, replace=True)
    yield
    for name in (SMALL, NO_REFERENCE):
        metarl_bench.unregister(name)
    for cls in (CountsAgent, RecencyAgent):
        _REG.agents.pop(cls.name, None)


@pytest.fixture(scope="module")
def counts_report():
    agent = metarl_bench.make_agent(CountsAgent.name, metarl_bench.make_family(SMALL))
    return simulate(agent, SMALL, FAST)


def _values(report, subject: str, skip: tuple[str, ...] = ()) -> dict[tuple[str, str, str, str], float]:
    return {
        (m.measure, m.direction, m.histories, m.map): m.value for m in report.measures[subject] if m.measure not in skip
    }


def test_exact_posterior_agent_scores_zero_on_every_dissimilarity_and_is_exactly_order_invariant(counts_report):
    values = _values(counts_report, EXACT_POSTERIOR, skip=("order_other_distance",))  # that one is the scale
    assert len(values) == 4 + 8 + 2  # behaviour both ways on two kinds of histories, maps, order
    assert all(abs(v) < EXACT_TOL for v in values.values()), values
    r = counts_report
    assert r.value(EXACT_POSTERIOR, "order_ratio") == 0.0 and r.value(EXACT_POSTERIOR, "order_perm_distance") == 0.0
    assert counts_report.value(EXACT_POSTERIOR, "order_other_distance") > 0.5  # other posteriors do move it


def test_history_buffer_agent_fails_belief_to_agent_and_order_invariance(counts_report):
    r = counts_report
    for kind in maps.MAP_KINDS:
        assert r.value(HISTORY_BUFFER, "state_nmse", "belief->subject", map=kind) > FAIL_AT
        assert r.value(HISTORY_BUFFER, "output_kl", "belief->subject", map=kind) > 0.3  # and it acts differently
        assert r.value(EXACT_POSTERIOR, "state_nmse", "belief->subject", map=kind) < EXACT_TOL
    assert r.value(HISTORY_BUFFER, "order_ratio") > FAIL_AT
    assert r.value(HISTORY_BUFFER, "order_perm_distance") > FAIL_AT
    # ... while it acts as Bayes
    assert all(abs(v) < EXACT_TOL for k, v in _values(r, HISTORY_BUFFER).items() if k[0] == "behaviour_kl")


def test_a_belief_memory_that_acts_badly_fails_behaviour_only(counts_report):
    r = counts_report
    assert r.value(AGENT, "behaviour_kl", "bayes||subject", "subject") > 0.5  # uniform play is far from Bayes
    for direction in ("subject->belief", "belief->subject"):
        assert r.value(AGENT, "state_nmse", direction, map="ridge") < 1e-3
    assert r.value(AGENT, "order_ratio") == 0.0
    notes = {m.note for m in r.measures[AGENT] if m.measure == "output_kl" and m.direction == "belief->subject"}
    assert all("no policy_from_features" in n for n in notes)  # no policy head: left out, with the reason


def test_order_invariance_catches_an_order_dependent_memory():
    agent = metarl_bench.make_agent(RecencyAgent.name, metarl_bench.make_family(SMALL))
    rep = simulate(agent, SMALL, FAST, order="on")
    assert rep.value(AGENT, "order_ratio") > FAIL_AT and rep.value(EXACT_POSTERIOR, "order_ratio") == 0.0
    low, high = next(m.ci for m in rep.measures[AGENT] if m.measure == "order_ratio")
    assert low <= rep.value(AGENT, "order_ratio") <= high


def test_forced_replay_reproduces_the_recorded_memory():
    family = metarl_bench.make_family(SMALL)
    agent = metarl_bench.make_agent(RecencyAgent.name, family)
    tr = trace(SMALL, family, FAST, (AGENT, agent), {}, ExactPosteriorAgent(family).bayes, {AGENT})
    T = family.trial_length
    got = order.replay(agent, family, tr.inner_obs[:, 0], tr.actions[:, : T - 1], tr.rewards[:, : T - 1])
    assert np.allclose(got, tr.features[AGENT], atol=1e-6)


def test_soft_bayes_and_its_kl():
    p, q = BP.soft_bayes(np.array([0, 1]), 2), BP.soft_bayes(np.array([0, 0]), 2)
    assert np.allclose(p.sum(axis=1), 1.0) and p[0, 0] == pytest.approx(1 - BP.BAYES_EPS / 2)
    kl = BP.kl_rows(p, q)
    eps = BP.BAYES_EPS
    assert kl[0] == 0.0 and kl[1] == pytest.approx((1 - eps) * np.log(1 + 2 * (1 - eps) / eps))


def test_bayes_lookup_is_exact_at_valid_beliefs_and_projects_others_to_the_nearest():
    posterior = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [5.0, 5.0]])
    steps, obs = np.array([0, 1, 1, 1]), np.zeros((4, 1))
    lookup = BP.BayesLookup(posterior, steps, obs, np.array([0, 1, 0, 1]))
    assert list(lookup.query(posterior, steps, obs)) == [0, 1, 0, 1]
    queries = np.array([[0.9, 0.2], [0.1, 0.8], [0.9, 0.2]])  # near the step-1 beliefs; the last one at step 0
    assert list(lookup.query(queries, np.array([1, 1, 0]), np.zeros((3, 1)))) == [1, 0, 0]
    assert list(lookup.query(queries[:1], np.array([7]), np.zeros((1, 1)))) == [1]  # unseen step: nearest anywhere


def test_mlp_map_is_seeded_and_finds_a_nonlinear_map(rng):
    x = rng.standard_normal((3000, 4))
    y = np.tanh(2 * x[:, :1]) * x[:, 1:2]
    groups = np.repeat(np.arange(30), 100)
    a, b = maps.fit_mlp(x, y, groups, seed=3), maps.fit_mlp(x, y, groups, seed=3)
    assert np.array_equal(a(x), b(x))
    nmse = lambda f: float(((f(x) - y) ** 2).sum() / ((y - y.mean()) ** 2).sum())  # noqa: E731
    assert nmse(a) < 0.3 < nmse(maps.fit_ridge(x, y, groups, seed=0))


@pytest.mark.parametrize("name", ["rl2", "vsml"])
def test_policy_heads_of_the_shipped_agents_reproduce_action_probs(name):
    env = "bernoulli-k2-h100"
    family = metarl_bench.make_family(env)
    agent = metarl_bench.make_agent(name, family)
    train_or_load(agent, env, P.CommonOptions((name,), (env,), FAST).train)
    n = 16
    trial = TrialEnv(family, num_trials=n, seed=0)
    obs, memory = trial.reset(), agent.reset(n, rng=np.random.default_rng(0))
    features, probs = [], []
    for _ in range(25):
        probs.append(agent.action_probs(obs, memory)[0])
        actions, memory = agent.act(obs, memory)
        features.append(agent.features(memory))
        obs = trial.step(actions)[0]
    head, note = heads.checked_head(agent, np.concatenate(features), np.concatenate(probs))
    assert head is not None, note
    assert np.abs(head(np.concatenate(features)) - np.concatenate(probs)).max() < 1e-5


def test_a_head_that_does_not_reproduce_the_policy_is_refused():
    family = metarl_bench.make_family(SMALL)
    agent = metarl_bench.make_agent(CountsAgent.name, family)
    agent.policy_from_features = lambda x: np.tile([0.9, 0.1], (len(x), 1))
    head, note = heads.checked_head(agent, np.zeros((5, 4)), np.full((5, 2), 0.5))
    assert head is None and "differs from its action_probs by 0.4" in note


def test_synthetic_heads_need_the_bayes_policy_bound():
    agent = HistoryBufferAgent(metarl_bench.make_family(SMALL))
    with pytest.raises(ProbeError, match="needs bind"):
        agent.policy_from_features(np.zeros((1, agent.slots * agent.width)))


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--agent", "random", "--env", SMALL], "agent 'random' exposes no features()"),
        (["--agent", "bayes", "--env", SMALL], "agent 'bayes' exposes no action_probs"),
        (["--agent", CountsAgent.name, "--env", NO_REFERENCE], f"distribution {NO_REFERENCE!r} declares no Bayes"),
        (["--agent", CountsAgent.name, "--env", "gridnavi-5x5", "--order", "on"], "'gridnavi-5x5' is no bandit"),
        (["--agent", CountsAgent.name, "--env", SMALL, "--order", "nope"], "invalid choice"),
    ],
)
def test_bad_input_names_what_was_wrong_and_what_is_allowed(argv, message, capsys):
    try:
        status = P.main(["--simulation", *argv, "--eval-tasks", "20", "--no-save"])
    except SystemExit as exc:  # argparse's own refusals exit
        status = exc.code
    assert status == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    if "action_probs" in message:
        assert "agents with features() and action_probs:" in err and "rl2" in err
    if "Bayes" in message:
        assert "distributions with a belief model and one:" in err and SMALL in err
    if "bandit" in message:
        assert "distributions it runs on:" in err and SMALL in err and "gridnavi-5x5," not in err


def test_report_section_shows_every_subject_and_says_what_is_left_out(counts_report):
    rows = pd.DataFrame(simulation_rows.report_rows(counts_report, FAST, {"run_id": "r1", "command": "c"}))
    html = belief_simulation_section(rows)
    assert html.startswith('<section id="belief-simulation">') and html.endswith("</section>")
    for subject in (AGENT, EXACT_POSTERIOR, HISTORY_BUFFER):
        assert f">{subject}</th>" in html
    assert "n/a" in html and "no policy_from_features" in html  # the left-out figure, with its reason as a tip
    assert belief_simulation_section(rows.iloc[:0]) == ""


def test_order_flag_without_simulation_is_refused(capsys):
    assert P.main(["--agent", CountsAgent.name, "--env", SMALL, "--order", "on", "--no-save"]) == 2
    assert "belong to --simulation" in capsys.readouterr().err


def test_cli_appends_validated_rows_with_the_documented_columns(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(provenance, "git_commit", lambda: "test-commit")  # no git call from a test
    argv = ["--simulation", "--agent", CountsAgent.name, "--env", SMALL, "--eval-tasks", "40",
            "--results", str(tmp_path)]  # fmt: skip
    assert P.main(argv) == 0
    out = capsys.readouterr().out
    assert "exact-posterior" in out and "KL(Bayes||S), own histories" in out
    df = simulation_rows.read_simulation(tmp_path / simulation_rows.SIMULATION_FILE)
    assert list(df.columns) == simulation_rows.SIMULATION_COLUMNS
    for column in simulation_rows.SIMULATION_COLUMNS:  # the schema is documented where the module says it is
        assert column in simulation_rows.__doc__, column
    assert set(df.subject) == {AGENT, EXACT_POSTERIOR, HISTORY_BUFFER}  # a non-learner has no trained controls
    assert (df.n_tasks == 40).all() and (df.commit == "test-commit").all() and df.run_id.nunique() == 1
    assert df.command[0].startswith("python -m metarl_bench.probe --simulation")
    left_out = df[df.value.isna()]
    assert len(left_out) and (left_out.note.str.len() > 0).all()  # every empty figure says why
    kept = df[df.value.notna()]
    assert (kept.ci_low <= kept.value + 1e-9).all() and (kept.value <= kept.ci_high + 1e-9).all()
    assert P.main(argv) == 0  # a second run appends
    assert len(pd.read_csv(tmp_path / simulation_rows.SIMULATION_FILE)) == 2 * len(df)


def test_the_other_trained_control_is_the_checkpoint_of_another_distribution():
    env = "bernoulli-k2-h100"
    options = P.CommonOptions(("rl2",), (env,), FAST)
    agent, note, other = P.other_trained_control("rl2", env, options, P.ProbeOptions(simulation=True))
    assert other == "bernoulli-dependent-k2-h100" and agent.trained_on == other and agent.family.params["k"] == 2
    assert "trained on bernoulli-dependent-k2-h100" in note
    none, why, _ = P.other_trained_control("rl2", env, options, P.ProbeOptions(other_train_env="none"))
    assert none is None and why.startswith("none:")


def test_synthetic_agents_act_as_bayes_and_never_change_the_memory_they_are_given():
    family = metarl_bench.make_family(SMALL)
    for cls in (ExactPosteriorAgent, HistoryBufferAgent):
        agent = cls(family)
        trial = TrialEnv(family, num_trials=8, seed=1)
        obs, memory = trial.reset(), agent.reset(8)
        for _ in range(5):
            before = agent.features(memory).copy()
            actions, new = agent.act(obs, memory)
            assert np.array_equal(agent.features(memory), before)
            obs, memory = trial.step(actions)[0], new
        assert agent.features(memory).shape[1] == (8 if cls is ExactPosteriorAgent else family.trial_length * 5)
