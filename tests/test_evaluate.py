import json

import numpy as np
import pandas as pd
import pytest

import metarl_bench
from metarl_bench.core.agent import Agent
from metarl_bench.envs.bandits.family import BernoulliBandit
from metarl_bench.evaluation.evaluate import EvalSettings, adaptation_point, evaluate, held_out_tasks
from metarl_bench.running.run import main as run_main

SMALL = "test-eval-k2-h20"
FAST = EvalSettings(n_tasks=400, seeds=(0, 1))


@pytest.fixture(scope="module", autouse=True)
def small_family():
    metarl_bench.register(SMALL, BernoulliBandit, replace=True, k=2, horizon=20)
    yield
    metarl_bench.unregister(SMALL)


def agent(name: str, env: str = SMALL, **config) -> Agent:
    return metarl_bench.make_agent(name, metarl_bench.make_family(env), **config)


def test_random_scores_zero_and_bayes_scores_one_hundred_within_the_ci():
    rnd = evaluate(agent("random"), SMALL, FAST).metrics
    assert rnd["score_ci_low"] <= 0.0 <= rnd["score_ci_high"]
    bayes = evaluate(agent("bayes"), SMALL, FAST).metrics
    assert bayes["bayes_method"] == "exact"
    # Same tasks and the same noise as the reference run: the paired score is exactly 100.
    assert bayes["score"] == pytest.approx(100.0)
    assert bayes["score_ci_low"] <= 100.0 <= bayes["score_ci_high"]


def test_bayes_agents_measured_return_matches_its_exact_value():
    m = evaluate(agent("bayes"), SMALL, EvalSettings(n_tasks=2000, seeds=(0, 1, 2))).metrics
    assert m["return_ci_low"] <= m["bayes_return"] <= m["return_ci_high"]
    assert abs(m["bayes_gap"]) < 0.5


def test_oracle_has_no_regret_and_scores_above_one_hundred():
    m = evaluate(agent("oracle"), SMALL, FAST).metrics
    assert m["regret_ci_low"] <= 0.0 <= m["regret_ci_high"]
    assert m["score_ci_low"] > 100.0


def test_the_ci_is_within_two_points_at_default_settings():
    m = evaluate(agent("thompson", "bernoulli-k2-h100"), "bernoulli-k2-h100").metrics
    assert m["n_tasks"] == 1000 and m["seeds"] == "0;1;2"
    assert m["score_ci_high"] - m["score_ci_low"] <= 4.0, m
    assert 50 < m["score"] < 100


def test_evaluation_is_deterministic_and_tasks_are_shared():
    a = evaluate(agent("thompson"), SMALL, FAST).metrics
    b = evaluate(agent("thompson"), SMALL, FAST).metrics
    assert {k: v for k, v in a.items() if k != "eval_wall_s"} == {k: v for k, v in b.items() if k != "eval_wall_s"}
    fam = metarl_bench.make_family(SMALL)
    t1, t2 = held_out_tasks(SMALL, fam, FAST), held_out_tasks(SMALL, fam, FAST)
    np.testing.assert_array_equal(t1["p"], t2["p"])


class SpyAgent(Agent):
    name = "spy"
    seen: list = []

    def reset(self, num_trials, rng=None, tasks=None):
        SpyAgent.seen.append(tasks)
        return None

    def act(self, obs, memory):
        return np.zeros(len(obs["obs"]), np.int64), memory


def test_only_privileged_agents_are_told_the_task():
    SpyAgent.seen = []
    evaluate(SpyAgent(metarl_bench.make_family(SMALL)), SMALL, FAST)
    assert SpyAgent.seen == [None, None]


def test_an_agent_built_for_another_family_is_refused():
    with pytest.raises(ValueError, match="not for the registered"):
        evaluate(agent("thompson", "bernoulli-k2-h100"), SMALL, FAST)


def test_bad_settings():
    with pytest.raises(ValueError, match="n_tasks"):
        EvalSettings(n_tasks=1)
    with pytest.raises(ValueError, match="seeds"):
        EvalSettings(seeds=())


def test_adaptation_point():
    curve = np.array([0.0, 0.2, 0.5, 0.85, 0.9, 0.95])
    assert adaptation_point(curve, np.zeros(6), np.ones(6), window=1) == 4.0
    assert np.isnan(adaptation_point(curve * 0.5, np.zeros(6), np.ones(6), window=1))


def test_cli_writes_rows_and_curves(tmp_path, capsys):
    code = run_main(["--agent", "greedy,thompson", "--env", SMALL, "--eval-tasks", "200", "--seeds", "0",
                     "--results", str(tmp_path)])  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert "thompson" in out and "greedy" in out
    df = pd.read_csv(tmp_path / "leaderboard.csv")
    assert list(df.agent) == ["greedy", "thompson"] and (df.n_tasks == 200).all()
    assert json.loads(df.env_spec[0])["kwargs"]["horizon"] == 20
    assert df.command[0].startswith("python") and df.version[0] == metarl_bench.__version__
    assert (tmp_path / "curves" / f"{SMALL}__thompson.csv").exists()
    assert (tmp_path / "curves" / f"{SMALL}.png").exists()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--agent", "nope"], "valid agents"),
        (["--env", "nope"], "valid envs"),
        (["--seeds", "a,b"], "comma list of integers"),
        (["--eval-tasks", "0"], "--eval-tasks: expected an integer >= 2, got 0"),
        (["--eval-tasks", "1"], "--eval-tasks: expected an integer >= 2, got 1"),
    ],
)
def test_cli_bad_input_exits_two(argv, message, capsys):
    with pytest.raises(SystemExit) as info:
        exit_code = run_main(argv + ["--no-save"])
        raise SystemExit(exit_code)
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_eval_tasks_help_states_the_minimum_the_check_enforces():
    from metarl_bench.running.run import build_parser

    assert "at least 2" in build_parser().format_help()


def test_cli_list(capsys):
    assert run_main(["--list"]) == 0
    out = capsys.readouterr().out
    assert "bandits:" in out and "thompson" in out and "bayes" in out
