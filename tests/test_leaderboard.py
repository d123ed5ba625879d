import multiprocessing as mp
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from metarl_bench.reporting import leaderboard
from metarl_bench.reporting.leaderboard import COLUMNS, LeaderboardError, append_rows, read
from metarl_bench.running import tables


def make_row(agent: str = "a", env: str = "e", score: float = 1.0, train_env: str = "") -> dict:
    """A row that fits the schema: required fields filled, numbers where numbers go."""
    row = {c: "" for c in COLUMNS}
    row.update({c: 0.0 for c in leaderboard.SCHEMA.numeric})
    row.update(agent=agent, env=env, score=score, n_tasks=10, seeds="0;1", bayes_method="exact", env_spec="{}",
               version="0", command="test", timestamp="2026-01-01T00:00:00+00:00", run_id="r", train_env=train_env,
               train_seed=0 if train_env else "", run_config="{}")
    return row


def _writer(path: str, worker: int, n: int) -> None:
    for i in range(n):
        append_rows(path, [make_row(agent=f"w{worker}", env=f"r{i}", score=float(i))])


def test_eight_processes_appending_fifty_rows_each_lose_none(tmp_path):
    path = str(tmp_path / "leaderboard.csv")
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, w, 50)) for w in range(8)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
        assert p.exitcode == 0
    df = read(path)
    assert len(df) == 400
    assert sorted(df.groupby("agent").size().tolist()) == [50] * 8
    assert set(zip(df.agent, df.env, strict=True)) == {(f"w{w}", f"r{i}") for w in range(8) for i in range(50)}


KILLED_WRITER = """
import sys
from metarl_bench.records.row import JSON, KINDS
from metarl_bench.reporting.leaderboard import COLUMNS, SCHEMA, append_rows
text = {c: '{"x": "%s"}' % ("x" * 200) if KINDS[c][0] == JSON else "x" * 200 for c in COLUMNS}
row = {c: 1 if c in SCHEMA.numeric else text[c] for c in COLUMNS}
i = 0
while True:
    append_rows(sys.argv[1], [dict(row, agent=str(i))] * 50)
    i += 1
"""


def test_a_writer_killed_mid_append_leaves_a_valid_csv(tmp_path):
    path = tmp_path / "leaderboard.csv"
    for delay in (0.05, 0.3, 0.6):
        proc = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(path)])
        deadline = time.monotonic() + 60
        while not path.exists() and time.monotonic() < deadline:  # the writer has started appending
            time.sleep(0.01)
        time.sleep(delay)
        assert proc.poll() is None, "the writer stopped by itself"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        df = read(path)  # parses, has the schema
        assert len(df) % 50 == 0 and len(df) > 0
        assert (df.groupby("agent").size() == 50 * (df.agent.value_counts() // 50)).all()
    before = len(read(path))
    append_rows(path, [make_row()])
    assert len(read(path)) == before + 1


def test_rows_must_fit_the_schema(tmp_path):
    path = tmp_path / "leaderboard.csv"
    with pytest.raises(LeaderboardError, match="unknown.*bogus"):
        append_rows(path, [{**make_row(), "bogus": 1}])
    with pytest.raises(LeaderboardError, match="missing.*score"):
        append_rows(path, [{k: v for k, v in make_row().items() if k != "score"}])
    assert not path.exists()


def test_a_corrupt_file_is_never_overwritten(tmp_path):
    path = tmp_path / "leaderboard.csv"
    path.write_text("this,is\nnot,a leaderboard\n")
    with pytest.raises(LeaderboardError, match="lacks leaderboard columns"):
        append_rows(path, [make_row()])
    assert path.read_text() == "this,is\nnot,a leaderboard\n"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(LeaderboardError, match="not UTF-8"):
        read(path)


def test_best_per_env_and_the_command(tmp_path, capsys):
    path = tmp_path / "leaderboard.csv"
    append_rows(path, [make_row("x", "bernoulli-k2-h100", 50.0), make_row("y", "bernoulli-k2-h100", 90.0)])
    append_rows(path, [make_row("x", "bernoulli-k5-h100", 70.0), make_row("y", "bernoulli-k5-h100", 60.0)])
    best = leaderboard.best_per_env(read(path))
    assert dict(zip(best.env, best.agent, strict=True)) == {"bernoulli-k2-h100": "y", "bernoulli-k5-h100": "x"}
    append_rows(path, [make_row("oracle", "bernoulli-k2-h100", 111.0), make_row("bayes", "bernoulli-k2-h100", 100.0)])
    best = leaderboard.best_per_env(read(path))  # the references are yardsticks, not contestants
    assert dict(zip(best.env, best.agent, strict=True)) == {"bernoulli-k2-h100": "y", "bernoulli-k5-h100": "x"}
    best = leaderboard.best_per_env(read(path), include_references=True)
    assert best.set_index("env").agent["bernoulli-k2-h100"] == "oracle"
    assert tables.leaderboard_main(["--results", str(tmp_path), "--best", "--env", "bernoulli-k5-h100"]) == 0
    out = capsys.readouterr().out
    assert "bernoulli-k5-h100" in out and "bernoulli-k2-h100" not in out
    assert tables.leaderboard_main(["--results", str(tmp_path), "--env", "nope"]) == 2
    assert "valid envs" in capsys.readouterr().err


def test_round_trip_keeps_types(tmp_path):
    path = tmp_path / "leaderboard.csv"
    append_rows(path, [make_row(score=12.5)])
    df = pd.read_csv(path)
    assert list(df.columns) == COLUMNS and df.score.iloc[0] == 12.5


def _board(tmp_path, n: int = 3) -> tuple:
    path = tmp_path / "leaderboard.csv"
    append_rows(path, [make_row("x", "bernoulli-k2-h100", float(i)) for i in range(n)])
    return path, path.read_bytes()


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda b: b[: b.rindex(b"+00:00,") + 3], "ends inside a row"),  # cut inside an unquoted field
        (lambda b: b + b"garbage line\n", "1 fields where the header has"),  # an appended line
        (lambda b: b + b"x,bernoulli-k2-h100" + b"," * (len(COLUMNS) - 2) + b"\n", "required field"),
        (lambda b: b.replace(b",exact,", b",exact,,", 1), "fields where the header has"),  # a shifted row
        (lambda b: b.replace(b"0;1,10,", b"0;1,ten,", 1), "'n_tasks' must be a finite number"),
        (lambda b: b + b"\xff\xfe\n", "not UTF-8"),
    ],
    ids=["cut", "garbage-line", "empty-required", "extra-field", "non-numeric", "non-utf8"],
)
def test_a_damaged_file_is_refused_by_name_and_left_byte_identical(tmp_path, damage, message):
    path, good = _board(tmp_path)
    bad = damage(good)
    path.write_bytes(bad)
    with pytest.raises(LeaderboardError, match=message):
        read(path)
    with pytest.raises(LeaderboardError, match="line"):
        append_rows(path, [make_row()])
    assert path.read_bytes() == bad


def test_the_reader_command_refuses_a_damaged_file_with_exit_2(tmp_path, capsys):
    path, good = _board(tmp_path)
    path.write_bytes(good + b"garbage line\n")
    assert tables.leaderboard_main(["--results", str(tmp_path), "--best"]) == 2
    err = capsys.readouterr().err
    assert "line 5" in err and len(err.strip().splitlines()) == 1
    assert path.read_bytes() == good + b"garbage line\n"


def test_an_append_keeps_the_files_mode_and_a_new_file_gets_the_umask(tmp_path):
    path = tmp_path / "leaderboard.csv"
    old = os.umask(0o022)
    try:
        append_rows(path, [make_row()])
        assert os.stat(path).st_mode & 0o777 == 0o644
        os.chmod(path, 0o664)
        append_rows(path, [make_row()])
        assert os.stat(path).st_mode & 0o777 == 0o664
    finally:
        os.umask(old)


def test_the_reader_shows_the_newest_row_per_agent_train_env_env_by_default(tmp_path, capsys):
    path = tmp_path / "leaderboard.csv"
    append_rows(path, [make_row("x", "bernoulli-k2-h100", 10.25), make_row("x", "bernoulli-k2-h100", 20.25)])
    append_rows(path, [make_row("x", "bernoulli-k2-h100", 30.25, train_env="bernoulli-k5-h100")])
    newest = leaderboard.newest(read(path))
    assert sorted(newest.score) == [20.25, 30.25]  # one row per (agent, train_env, env), the last written
    assert tables.leaderboard_main(["--results", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "train_env" in out and "20.25" in out and "10.25" not in out
    assert tables.leaderboard_main(["--results", str(tmp_path), "--all"]) == 0
    assert "10.25" in capsys.readouterr().out


def test_the_reader_refuses_a_missing_results_folder(tmp_path, capsys):
    assert tables.leaderboard_main(["--results", str(tmp_path / "nowhere")]) == 2
    assert "not a folder" in capsys.readouterr().err


def _seeded_board(tmp_path) -> None:
    """rl2 trained with three seeds on one distribution, beside two agents, in no score order."""
    rows = [make_row("thompson", "bernoulli-k2-h100", 93.0), make_row("ucb1", "bernoulli-k2-h100", 74.0)]
    for seed, score in ((0, 94.5), (1, 91.5), (2, 95.5)):
        rows.append(make_row("rl2", "bernoulli-k2-h100", score, train_env="bernoulli-k2-h100") | {"train_seed": seed})
    rows.append(make_row("thompson", "bernoulli-k5-h100", 88.0))
    rows.append(make_row("ucb1", "bernoulli-k5-h100", 56.0) | {"score": ""})  # no score: listed last
    rows.append(make_row("bayes", "bernoulli-k5-h100", 100.0))
    append_rows(tmp_path / "leaderboard.csv", rows)


def _table(out: str) -> pd.DataFrame:
    lines = out.strip().splitlines()
    return pd.DataFrame([line.split() for line in lines[1:]], columns=lines[0].split())


def test_the_reader_prints_the_training_seed_of_each_row(tmp_path, capsys):
    _seeded_board(tmp_path)
    assert tables.leaderboard_main(["--results", str(tmp_path), "--env", "bernoulli-k2-h100", "--agent", "rl2"]) == 0
    shown = _table(capsys.readouterr().out)
    assert sorted(shown["train_seed"]) == ["0", "1", "2"]  # three rows, told apart


def test_the_reader_sorts_by_score_within_each_distribution(tmp_path, capsys):
    _seeded_board(tmp_path)
    assert tables.leaderboard_main(["--results", str(tmp_path), "--env", "bernoulli-k5-h100,bernoulli-k2-h100"]) == 0
    out = capsys.readouterr().out
    # rows without a train_env (or score) leave blanks, so read only the agent and the env order
    agents = [line.split()[0] for line in out.strip().splitlines()[1:]]
    assert agents == ["bayes", "thompson", "ucb1", "rl2", "rl2", "thompson", "rl2", "ucb1"]
    assert out.index("95.50") < out.index("94.50") < out.index("93.00") < out.index("91.50")
    assert tables.leaderboard_main(["--results", str(tmp_path), "--best"]) == 0
    assert [line.split()[0] for line in capsys.readouterr().out.strip().splitlines()[1:]] == ["rl2", "thompson"]


USER_FAMILY = """
import metarl_bench
from metarl_bench.envs.bandits.family import BernoulliBandit
metarl_bench.register("reader-user-bandit", BernoulliBandit, k=3, horizon=5)
"""


def test_the_reader_imports_a_users_module_to_read_its_familys_rows(tmp_path, capsys, monkeypatch):
    from metarl_bench.core.registry import list_families, unregister

    (tmp_path / "reader_user_family.py").write_text(USER_FAMILY)
    monkeypatch.syspath_prepend(str(tmp_path))
    append_rows(tmp_path / "leaderboard.csv", [make_row("thompson", "reader-user-bandit", 42.5)])
    args = ["--results", str(tmp_path), "--env", "reader-user-bandit"]
    assert tables.leaderboard_main(args) == 2  # not registered without its module
    assert "unknown env 'reader-user-bandit'" in capsys.readouterr().err
    try:
        assert tables.leaderboard_main([*args, "--import", "reader_user_family"]) == 0
        assert "42.50" in capsys.readouterr().out
    finally:
        if "reader-user-bandit" in list_families():
            unregister("reader-user-bandit")
        sys.modules.pop("reader_user_family", None)
    assert tables.leaderboard_main([*args, "--import", "no_such_module_here"]) == 2
    assert "--import no_such_module_here" in capsys.readouterr().err


def test_the_reader_refuses_an_unknown_agent_naming_the_valid_ones(tmp_path, capsys):
    _seeded_board(tmp_path)
    assert tables.leaderboard_main(["--results", str(tmp_path), "--agent", "nosuch"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "unknown agent 'nosuch'; valid agents:" in err and "thompson" in err and "rl2" in err
    append_rows(tmp_path / "leaderboard.csv", [make_row("my-own-agent", "bernoulli-k2-h100", 50.0)])
    assert tables.leaderboard_main(["--results", str(tmp_path), "--agent", "my-own-agent"]) == 0  # rows in the file
    assert "my-own-agent" in capsys.readouterr().out
