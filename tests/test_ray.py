"""The Ray backend: same rows as local, retries of killed workers, resume, concurrent sweeps, sharded ES."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ray = pytest.importorskip("ray")

import metarl_bench  # noqa: E402
from metarl_bench.core.agent import Agent  # noqa: E402
from metarl_bench.core.registry import _REG  # noqa: E402
from metarl_bench.envs.bandits.family import BernoulliBandit  # noqa: E402
from metarl_bench.records import migrate  # noqa: E402
from metarl_bench.reporting import leaderboard  # noqa: E402
from metarl_bench.running import sweep  # noqa: E402
from metarl_bench.running.run import main as run_main  # noqa: E402

SMALL = "test-ray-k2-h20"  # registered here only: the workers learn it from the shipped registrations
TINY = ["--env", SMALL, "--eval-tasks", "50", "--seeds", "0"]
PROVENANCE = ["eval_wall_s", "train_wall_s", "timestamp", "run_id"]  # differ between any two runs


@pytest.fixture(scope="module", autouse=True)
def ray_cluster():
    metarl_bench.register(SMALL, BernoulliBandit, replace=True, k=2, horizon=20)
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()
    metarl_bench.unregister(SMALL)


def board(folder: Path) -> pd.DataFrame:
    return leaderboard.read(folder / leaderboard.LEADERBOARD_FILE)


def metrics(folder: Path) -> pd.DataFrame:
    return board(folder).drop(columns=PROVENANCE).sort_values(["agent", "env"]).reset_index(drop=True)


def test_a_sweep_on_ray_gives_the_rows_of_the_local_backend(tmp_path):
    agents = ["--agent", "random,greedy,thompson"]
    assert run_main([*agents, *TINY, "--results", str(tmp_path / "local")]) == 0
    assert run_main([*agents, *TINY, "--results", str(tmp_path / "ray"), "--backend", "ray"]) == 0
    local, remote = metrics(tmp_path / "local"), metrics(tmp_path / "ray")
    assert sorted(remote.agent) == ["greedy", "random", "thompson"]
    pd.testing.assert_frame_equal(remote, local)
    assert (tmp_path / "ray" / "curves" / f"{SMALL}__thompson.csv").exists()


def crash_once_agent(marker: Path, driver_pid: int) -> type[Agent]:
    """An agent whose first act() in a worker process kills that process (the marker remembers it)."""

    class CrashOnce(Agent):  # made in a function, so Ray ships the class by value
        name = "crash-once"

        def reset(self, num_trials, rng=None, tasks=None):
            return None

        def act(self, obs, memory):
            if os.getpid() != driver_pid and not marker.exists():  # never kills the test process itself
                marker.touch()
                os._exit(1)
            return np.zeros(len(obs["obs"]), np.int64), memory

    return CrashOnce


@pytest.fixture
def crash_once(tmp_path):
    marker = tmp_path / "crashed"
    metarl_bench.register_agent("crash-once", crash_once_agent(marker, os.getpid()), replace=True)
    yield marker
    _REG.agents.pop("crash-once", None)


def test_a_killed_worker_is_retried_and_its_run_lands_once(tmp_path, crash_once):
    argv = ["--agent", "crash-once,random", *TINY, "--backend", "ray", "--max-retries", "1", "--results", str(tmp_path)]
    assert run_main(argv) == 0
    assert crash_once.exists()  # the first attempt did die
    assert sorted(board(tmp_path).agent) == ["crash-once", "random"]


def test_a_run_out_of_retries_is_reported_and_the_sweep_finishes(tmp_path, crash_once, capsys):
    argv = ["--agent", "crash-once,random", *TINY, "--backend", "ray", "--max-retries", "0", "--results", str(tmp_path)]
    assert run_main(argv) == 1
    err = capsys.readouterr().err
    assert "1 run(s) failed" in err and f"crash-once on {SMALL}" in err and "tried 1 times" in err
    assert list(board(tmp_path).agent) == ["random"]  # the other run landed; nothing of the failed one


def test_resume_runs_only_the_missing_runs(tmp_path, capsys):
    base = [*TINY, "--results", str(tmp_path), "--backend", "ray"]
    assert run_main(["--agent", "random,greedy", *base]) == 0
    first = board(tmp_path)
    assert run_main(["--agent", "random,greedy,thompson", *base, "--resume"]) == 0
    assert "2 of 3 runs already" in capsys.readouterr().out
    df = board(tmp_path)
    assert sorted(df.agent) == ["greedy", "random", "thompson"]
    assert list(df.run_id[:2]) == list(first.run_id)  # the done runs were not redone
    assert run_main(["--agent", "random,greedy,thompson", *base, "--resume"]) == 0  # nothing left to do
    assert len(board(tmp_path)) == 3
    # another configuration (here: the seeds) is another run
    assert run_main(["--agent", "random", *base, "--seeds", "1", "--resume"]) == 0
    assert sorted(board(tmp_path).seeds.astype(str)) == ["0", "0", "0", "1"]


def test_a_leaderboard_of_an_older_schema_is_refused_whole_then_migrated_once(tmp_path, capsys):
    assert run_main(["--agent", "random", *TINY, "--results", str(tmp_path)]) == 0
    path = tmp_path / leaderboard.LEADERBOARD_FILE
    board(tmp_path).drop(columns="checkpoint_sha256").to_csv(path, index=False)  # the schema before the hash
    before = path.read_bytes()
    assert run_main(["--agent", "random,greedy", *TINY, "--results", str(tmp_path), "--resume"]) == 2
    err = capsys.readouterr().err
    assert "lacks leaderboard columns ['checkpoint_sha256']" in err and "metarl_bench.records.migrate" in err
    assert path.read_bytes() == before  # refused, not rewritten
    assert migrate.main([str(path)]) == 0
    assert run_main(["--agent", "random,greedy", *TINY, "--results", str(tmp_path), "--resume"]) == 0
    assert "1 of 2 runs already" in capsys.readouterr().out
    assert list(pd.read_csv(path).columns) == leaderboard.COLUMNS


def test_resume_refuses_a_corrupt_leaderboard(tmp_path, capsys):
    path = tmp_path / leaderboard.LEADERBOARD_FILE
    path.write_text("this,is\nnot,a leaderboard\n")
    assert run_main(["--agent", "random", *TINY, "--results", str(tmp_path), "--resume", "--backend", "ray"]) == 2
    assert "lacks leaderboard columns" in capsys.readouterr().err
    assert path.read_text() == "this,is\nnot,a leaderboard\n"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--backend", "spark"], "invalid choice"),
        (["--backend", "ray", "--address", "not an address"], "bad Ray address"),
        (["--address", "auto"], "ray backend only"),
        (["--backend", "ray", "--max-retries", "-1"], ">= 0"),
    ],
)
def test_bad_backend_input_exits_two(argv, message, capsys):
    with pytest.raises(SystemExit) as info:
        raise SystemExit(run_main(["--agent", "random", *TINY, "--no-save", *argv]))
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_an_unreachable_cluster_fails_fast(monkeypatch):
    monkeypatch.setattr(ray, "is_initialized", lambda: False)  # as in a fresh process
    with pytest.raises(sweep.BackendError, match="no Ray cluster reachable"):
        sweep.make_backend("ray", "127.0.0.1:1")


def test_the_ray_backend_without_ray_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError
    with pytest.raises(sweep.BackendError, match=r"pip install -e '\.\[ray\]'"):
        sweep.make_backend("ray")


def test_concurrent_sweeps_writing_one_leaderboard_lose_nothing(tmp_path, ray_cluster):
    common = ["--env", "bernoulli-k2-h100,bernoulli-k5-h100", "--eval-tasks", "50", "--seeds", "0",
              "--results", str(tmp_path)]  # fmt: skip
    sweeps = [
        ["--agent", "random,greedy,thompson", "--backend", "ray", "--address", ray_cluster],
        ["--agent", "ucb1,epsilon-greedy,oracle"],  # the local backend, at the same time
    ]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "metarl_bench.run", *s, *common],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for s in sweeps
    ]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    df = board(tmp_path)
    assert len(df) == 12
    assert df.groupby(["agent", "env"]).size().eq(1).all() and df.agent.nunique() == 6


def test_vsml_sharded_es_equals_the_local_run():
    torch = pytest.importorskip("torch")
    from metarl_bench.baselines.vsml.agent import VSMLAgent, play

    assert os.getpid() not in sweep.ray_starmap(lambda: os.getpid(), [(), ()])  # shards run in workers
    family = metarl_bench.make_family(SMALL)
    config = {"population": 6, "tasks_per_generation": 4, "hidden_size": 4, "message_size": 2, "sigma": 0.5}
    local, sharded = VSMLAgent(family, **config), VSMLAgent(family, **config)

    # one population, three uneven shards: the same returns, and the generator ends in the same state
    theta = local.theta + 0.5 * torch.randn(6, local.net.num_params, generator=torch.Generator().manual_seed(0))
    rng_a, rng_b = np.random.default_rng(7), np.random.default_rng(7)
    tasks = family.sample_tasks(np.random.default_rng(8), 4)
    want = play(local.net, theta, family, tasks, rng_a)
    got = play(local.net, theta, family, tasks, rng_b, shard_map=sweep.ray_starmap, shards=4)
    torch.testing.assert_close(got, want, rtol=0, atol=0)
    assert rng_a.random() == rng_b.random()
    assert want.std() > 0  # members differ: a mix-up of shards would show

    # two ES generations
    budget = 2 * 6 * 4 * family.trial_length
    local.fit(family, budget, seed=1, progress=False, eval_tasks=8)
    sharded.fit(family, budget, seed=1, progress=False, eval_tasks=8, shard_map=sweep.ray_starmap, shards=2)
    assert sharded.generations == local.generations == 2
    assert not torch.equal(local.theta, local.net.theta0)
    torch.testing.assert_close(sharded.theta, local.theta)
    assert sharded.metrics["train_return"] == local.metrics["train_return"]


def test_resume_matches_the_training_options_of_learning_agents(tmp_path, capsys):
    pytest.importorskip("torch")
    base = ["--agent", "vsml", "--env", "bernoulli-k2-h100", "--eval-tasks", "50", "--seeds", "0",
            "--results", str(tmp_path)]  # fmt: skip
    assert run_main(base) == 0  # the shipped checkpoint
    assert run_main([*base, "--resume"]) == 0
    assert "1 of 1 runs already" in capsys.readouterr().out
    one_generation = ["--train-steps", str(64 * 64 * 100)]  # population x tasks x pulls: seconds
    assert run_main([*base, "--resume", "--train-seed", "1", *one_generation]) == 0
    assert "0 of 1 runs already" in capsys.readouterr().out
    config = [json.loads(c) for c in board(tmp_path).run_config]
    assert [c["train_seed"] for c in config] == [0, 1] and config[0]["train_env"] == "bernoulli-k2-h100"
