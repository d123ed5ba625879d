"""Suite aggregates: stratified bootstrap, IQM, incomplete agents, training-seed spread,
per-task data reproduced from the leaderboard's own runs, and the command's bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import trim_mean

from metarl_bench.reporting import aggregate, aggregate_files, aggregate_sets, aggregate_stats, leaderboard
from metarl_bench.reporting.leaderboard import COLUMNS, SCHEMA
from metarl_bench.reporting.task_scores import TaskScores
from metarl_bench.running import tables


def make_row(agent: str, env: str, score: float = 50.0, train_env: str = "", train_seed: object = "",
             run_id: str | None = None, **extra) -> dict:  # fmt: skip
    row = {c: "" for c in COLUMNS}
    row.update({c: 0.0 for c in SCHEMA.numeric}, run_config="{}")
    row.update(agent=agent, env=env, score=score, n_tasks=4, seeds="0", bayes_method="exact", env_spec="{}",
               version="0", command="test", timestamp="2026-01-01T00:00:00+00:00", train_env=train_env,
               train_seed=train_seed, run_id=run_id or f"{agent}-{env}-{train_env}-{train_seed}")  # fmt: skip
    row.update(extra)
    return row


class StubStore:
    """Per-task scores by run_id: returns are the scores (random 0, Bayes 100)."""

    def __init__(self, scores: dict[str, list[float]]):
        self.scores = scores

    def get(self, row, log=print) -> TaskScores:
        s = np.asarray(self.scores[row["run_id"]], float)
        return TaskScores("ok", "", s, np.zeros_like(s), np.full_like(s, 100.0))


def test_stratified_bootstrap_resamples_within_distributions():
    # one distribution all 0, the other all 100: resampling within each keeps the mean at 50 exactly;
    # pooling the tasks across distributions would not
    gap = np.ones(10)
    est = aggregate_stats.stratified_bootstrap([(np.zeros(10), gap), (np.ones(10), gap)], np.array([0.0, 50.0, 100.0]))
    assert est.mean == 50.0 and est.mean_ci == (50.0, 50.0)
    assert est.iqm == 50.0 and est.iqm_ci == (50.0, 50.0)
    assert est.profile.tolist() == [1.0, 0.5, 0.5]
    assert est.profile_ci[0].tolist() == est.profile_ci[1].tolist() == [1.0, 0.5, 0.5]


def test_iqm_is_the_pooled_interquartile_mean_and_the_bootstrap_is_seeded():
    rng = np.random.default_rng(3)
    scores = [rng.normal(80, 30, 40), rng.normal(60, 10, 40), rng.normal(100, 5, 40)]
    pooled = np.sort(np.concatenate(scores))
    assert aggregate_stats.iqm(scores) == pytest.approx(pooled[30:90].mean())
    assert aggregate_stats.iqm(scores) == pytest.approx(trim_mean(pooled, 0.25))
    taus = aggregate_stats.tau_grid([s.mean() for s in scores])
    tasks = [(s / 100.0, np.ones_like(s)) for s in scores]  # gap 1: task scores are 100 gain
    a, b = aggregate_stats.stratified_bootstrap(tasks, taus), aggregate_stats.stratified_bootstrap(tasks, taus)
    assert (a.iqm_ci, a.mean_ci) == (b.iqm_ci, b.mean_ci)
    assert a.mean == pytest.approx(np.mean([s.mean() for s in scores]))
    assert a.iqm_ci[0] < a.iqm < a.iqm_ci[1] and a.mean_ci[0] < a.mean < a.mean_ci[1]
    other = aggregate_stats.stratified_bootstrap(tasks, taus, seed=1)
    assert other.iqm_ci != a.iqm_ci


def test_task_scores_average_to_the_leaderboards_score_and_share_its_paired_ci():
    from metarl_bench.evaluation.score import paired_score as _score
    from metarl_bench.evaluation.stats import bootstrap_ci

    rng = np.random.default_rng(0)
    rand = rng.uniform(40, 60, 300)
    bayes = rand + rng.uniform(5, 40, 300)  # easy and hard tasks: the agent's gain tracks the task's gap
    ret = rand + 0.9 * (bayes - rand) + rng.normal(0, 1, 300)
    data = TaskScores("ok", "", ret, rand, bayes)
    assert data.scores().mean() == pytest.approx(float(_score(ret, rand, bayes)))
    # one distribution: the aggregate mean's CI is the leaderboard's paired score CI (another
    # generator, so equal up to bootstrap noise), not the far wider one of fixed references
    est = aggregate_stats.stratified_bootstrap([data.paired()], np.array([0.0]))
    low, high = bootstrap_ci(_score, ret, rand, bayes)
    assert est.mean_ci == pytest.approx((low, high), abs=0.15 * (high - low))
    fixed = np.percentile([data.scores()[rng.integers(0, 300, 300)].mean() for _ in range(500)], [2.5, 97.5])
    assert fixed[1] - fixed[0] > 2 * (high - low)


def _rows(*rows: dict) -> pd.DataFrame:
    return aggregate_sets.current_rows(pd.DataFrame(list(rows), columns=COLUMNS))


def test_incomplete_agents_are_named_and_never_averaged_over_fewer():
    envs = ["e1", "e2", "e3"]
    rows = _rows(*(make_row("full", e) for e in envs), make_row("part", "e1"), make_row("part", "e3"))
    store = StubStore({f"full-{e}--": [10.0, 20.0, 30.0, 40.0] for e in envs}
                      | {"part-e1--": [90.0] * 4, "part-e3--": [90.0] * 4})  # fmt: skip
    out, profiles = aggregate.aggregate_set("s", envs, rows, store, log=lambda _: None)
    by = {r["agent"]: r for r in out}
    assert by["part"]["status"] == "incomplete" and by["part"]["missing"] == "e2"
    assert by["part"]["iqm"] == "" and by["part"]["mean"] == ""
    assert by["full"]["status"] == "ok" and by["full"]["mean"] == pytest.approx(25.0)
    assert {p["agent"] for p in profiles} == {"full"}


def test_a_distribution_without_rows_makes_everyone_incomplete_but_one_without_scores_is_excluded():
    rows = _rows(make_row("a", "e1"), make_row("a", "e3", score=float("nan"), score_note="no score"))
    store = StubStore({"a-e1--": [1.0, 2.0, 3.0, 4.0]})
    out, _ = aggregate.aggregate_set("s", ["e1", "e2", "e3"], rows, store, log=lambda _: None)
    assert out[0]["status"] == "incomplete" and out[0]["missing"] == "e2"
    assert out[0]["excluded"] == "e3" and out[0]["distributions"] == "e1;e2"


def test_training_seeds_get_their_own_rows_and_a_spread_row():
    envs = ["e1", "e2"]
    rows = _rows(*(make_row("learner", e, train_env=e, train_seed=s) for e in envs for s in (0, 1, 2)),
                 make_row("learner", "e1", train_env="e1", train_seed=3))  # seed 3: only one distribution
    store = StubStore({f"learner-{e}-{e}-{s}": [10.0 * (s + 1)] * 4 for e in envs for s in (0, 1, 2)})
    out, _ = aggregate.aggregate_set("s", envs, rows, store, log=lambda _: None)
    evals = {r["train_seed"]: r for r in out if r["kind"] == aggregate_files.EVALUATION}
    assert [evals[s]["mean"] for s in "012"] == pytest.approx([10.0, 20.0, 30.0])
    assert evals["3"]["status"] == "incomplete" and evals["3"]["missing"] == "e2"
    spread = [r for r in out if r["kind"] == aggregate_files.TRAINING_SEEDS]
    assert len(spread) == 1
    s = spread[0]
    assert (s["train_seeds"], s["n_train_seeds"]) == ("0;1;2", 3)
    assert (s["mean_seed_min"], s["mean_seed_max"], s["mean"]) == pytest.approx((10.0, 30.0, 20.0))
    assert "training seeds" in s["interval"] and "stratified bootstrap" in evals["0"]["interval"]
    text = aggregate.format_table(pd.DataFrame(out, columns=aggregate_files.AGGREGATE_COLUMNS))
    line = next(x for x in text.splitlines() if "training-seeds" in x)
    assert "mean 10.0..30.0" in line and "[" not in line  # the spread row has no evaluation CI


def test_training_seed_is_read_as_text_and_empty_for_agents_that_do_not_learn():
    df = pd.DataFrame([
        make_row("learner", "e", train_env="e", train_seed=1.0),
        make_row("learner", "e", train_env="e", train_seed=0),
        make_row("thompson", "e"),
    ], columns=COLUMNS)  # fmt: skip
    assert aggregate_sets.train_seeds(df).tolist() == ["1", "0", ""]


def test_sets_are_suites_distributions_or_plus_joined():
    sets = dict(aggregate.parse_sets("bandits,bernoulli-k2-h100+bernoulli-dependent-k2-h100,bernoulli-k5-h100"))
    assert sets["bernoulli-k2-h100+bernoulli-dependent-k2-h100"] == ["bernoulli-k2-h100", "bernoulli-dependent-k2-h100"]
    assert "bernoulli-k5-h100" in sets["bandits"] and sets["bernoulli-k5-h100"] == ["bernoulli-k5-h100"]
    with pytest.raises(aggregate.AggregateError, match="no-such"):
        aggregate.parse_sets("bandits,no-such+bernoulli-k2-h100")


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    """A real (small) run, then the aggregate command on it."""
    from metarl_bench.running import run

    folder = tmp_path_factory.mktemp("agg")
    assert run.main(["--agent", "thompson,bayes,ucb1", "--env", "bernoulli-k2-h100", "--eval-tasks", "30",
                     "--seeds", "0,1", "--results", str(folder)]) == 0  # fmt: skip
    assert tables.leaderboard_main(["--aggregate", "--env", "bernoulli-k2-h100", "--results", str(folder)]) == 0
    return folder


def test_aggregate_command_reproduces_the_rows_and_is_deterministic(measured, capsys):
    board = leaderboard.read(measured / "leaderboard.csv").set_index("agent")
    agg = aggregate_files.read_aggregates(measured / "aggregates.csv").set_index("agent")
    assert set(agg.index) == {"thompson", "bayes", "ucb1"} and (agg["status"] == "ok").all()
    for agent in agg.index:  # one distribution: the mean of task scores is the row's score, its CI the row's
        assert agg.loc[agent, "mean"] == pytest.approx(board.loc[agent, "score"], abs=1e-3)
        low, high = board.loc[agent, "score_ci_low"], board.loc[agent, "score_ci_high"]
        got = (agg.loc[agent, "mean_ci_low"], agg.loc[agent, "mean_ci_high"])
        assert got == pytest.approx((low, high), abs=0.2 * (high - low) + 1e-6)
    assert agg.loc["bayes", "role"] == "reference" and agg.loc["thompson", "role"] == "agent"
    index = pd.read_csv(measured / "tasks" / "index.csv")
    assert (index["status"] == "ok").all() and len(index) == 3
    assert (measured / "profiles" / "bernoulli-k2-h100.png").stat().st_size > 1000
    before = {p: p.read_bytes() for p in (measured / "aggregates.csv", measured / "profiles.csv")}
    capsys.readouterr()
    assert tables.leaderboard_main(["--aggregate", "--env", "bernoulli-k2-h100", "--results", str(measured)]) == 0
    assert "measuring" not in capsys.readouterr().out  # stored per-task data reused
    assert {p: p.read_bytes() for p in before} == before


def test_a_row_its_agent_does_not_reproduce_is_reported(measured, tmp_path, capsys):
    import shutil

    folder = tmp_path / "r"
    shutil.copytree(measured, folder)
    df = pd.read_csv(folder / "leaderboard.csv", dtype=str, keep_default_na=False)  # every other field as written
    i = int(np.flatnonzero(df["agent"] == "thompson")[0])
    df.loc[i, "return"] = str(float(df.loc[i, "return"]) + 1.0)  # the row no longer says what its agent does
    df.to_csv(folder / "leaderboard.csv", index=False)
    assert tables.leaderboard_main(["--aggregate", "--env", "bernoulli-k2-h100", "--results", str(folder)]) == 1
    agg = aggregate_files.read_aggregates(folder / "aggregates.csv").set_index("agent")
    assert agg.loc["thompson", "status"] == "unreproduced" and "not the row's" in agg.loc["thompson", "note"]
    assert agg.loc["ucb1", "status"] == "ok"
    assert "unreproduced: thompson" in capsys.readouterr().err


@pytest.mark.parametrize("case", ["no-folder", "no-leaderboard", "unknown-suite", "damaged-aggregates",
                                  "damaged-leaderboard"])  # fmt: skip
def test_bad_input_is_one_line_and_exit_2(case, tmp_path, capsys):
    folder = tmp_path / "res"
    folder.mkdir()
    env = "bandits"
    if case == "no-folder":
        folder = tmp_path / "absent"
    elif case != "no-leaderboard":
        leaderboard.append_rows(folder / "leaderboard.csv", [make_row("a", "bernoulli-k2-h100")])
    if case == "unknown-suite":
        env = "no-such-suite"
    if case == "damaged-aggregates":
        (folder / "aggregates.csv").write_text("suite,agent\nbandits\n")
    if case == "damaged-leaderboard":
        with open(folder / "leaderboard.csv", "a") as f:
            f.write("cut,short")
    assert tables.leaderboard_main(["--aggregate", "--env", env, "--results", str(folder)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("python -m metarl_bench.leaderboard: error:")
