import multiprocessing as mp
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from metarl_bench import leaderboard
from metarl_bench.leaderboard import COLUMNS, LeaderboardError, append_rows, read


def make_row(agent: str = "a", env: str = "e", score: float = 1.0) -> dict:
    row = {c: "" for c in COLUMNS}
    row.update(agent=agent, env=env, score=score, n_tasks=10, seeds="0;1")
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
from metarl_bench.leaderboard import COLUMNS, append_rows
row = {c: "x" * 200 for c in COLUMNS}
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
    with pytest.raises(LeaderboardError, match="not a readable"):
        read(path)


def test_best_per_env_and_the_command(tmp_path, capsys):
    path = tmp_path / "leaderboard.csv"
    append_rows(path, [make_row("x", "bernoulli-k2-h100", 50.0), make_row("y", "bernoulli-k2-h100", 90.0)])
    append_rows(path, [make_row("x", "bernoulli-k5-h100", 70.0), make_row("y", "bernoulli-k5-h100", 60.0)])
    best = leaderboard.best_per_env(read(path))
    assert dict(zip(best.env, best.agent, strict=True)) == {"bernoulli-k2-h100": "y", "bernoulli-k5-h100": "x"}
    assert leaderboard.main(["--results", str(tmp_path), "--best", "--env", "bernoulli-k5-h100"]) == 0
    out = capsys.readouterr().out
    assert "bernoulli-k5-h100" in out and "bernoulli-k2-h100" not in out
    assert leaderboard.main(["--results", str(tmp_path), "--env", "nope"]) == 2
    assert "valid envs" in capsys.readouterr().err


def test_round_trip_keeps_types(tmp_path):
    path = tmp_path / "leaderboard.csv"
    append_rows(path, [make_row(score=12.5)])
    df = pd.read_csv(path)
    assert list(df.columns) == COLUMNS and df.score.iloc[0] == 12.5
