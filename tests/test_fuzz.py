"""Property-based bad input: generated bad flag values and damaged CSV files.

Every case must end with exit status 2, one line on stderr, and every file byte-identical.
Derandomised, so CI sees the same cases every run; a few seconds in all.
"""

from __future__ import annotations

import io
import string
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import metarl_bench
from metarl_bench.reporting import leaderboard
from metarl_bench.running import tables
from metarl_bench.running.options import check_device
from metarl_bench.running.run import main as run_main

FUZZ = settings(
    max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
VALID = ["--agent", "random", "--env", "bernoulli-k2-h100", "--eval-tasks", "10", "--seeds", "0"]
NAMES = st.text(alphabet=string.ascii_letters + string.digits + "-_.,:/ ", min_size=0, max_size=20)


def _is_registered_list(text: str, valid: set[str]) -> bool:
    parts = [p.strip() for p in text.split(",") if p.strip()]
    return bool(parts) and all(p in valid for p in parts)


def _rejects(check, text: str) -> bool:
    """Whether ``check(text)`` raises ValueError (int, the device check)."""
    try:
        check(text)
    except ValueError:
        return True
    return False


AGENTS = set(metarl_bench.list_agents())
ENVS = {*metarl_bench.list_families(), *metarl_bench.list_suites()}
BAD_VALUES = {
    "--seeds": st.one_of(NAMES.filter(lambda t: any(not p.strip().isdigit() for p in t.split(",") if p.strip())),
                         st.integers(max_value=-1).map(str), st.integers(0, 9).map(lambda i: f"{i},{i}")),
    "--eval-tasks": st.one_of(st.integers(max_value=1).map(str), NAMES.filter(lambda t: _rejects(int, t))),
    "--train-steps": st.one_of(st.integers(max_value=0).map(str), NAMES.filter(lambda t: _rejects(int, t))),
    "--threads": st.one_of(st.integers(max_value=0).map(str), NAMES.filter(lambda t: _rejects(int, t))),
    "--train-seed": st.one_of(st.integers(max_value=-1).map(str), NAMES.filter(lambda t: _rejects(int, t))),
    "--device": NAMES.filter(lambda t: _rejects(check_device, t)),
    "--agent": NAMES.filter(lambda t: t.strip() != "all" and not _is_registered_list(t, AGENTS)),
    "--env": NAMES.filter(lambda t: not _is_registered_list(t, ENVS)),
    "--train-env": NAMES.filter(lambda t: t != "" and t not in metarl_bench.list_families()),
    "--backend": NAMES.filter(lambda t: t not in ("local", "ray")),
}  # fmt: skip


@pytest.fixture(scope="module")
def board(tmp_path_factory) -> Path:
    """A results folder with a valid three-row leaderboard made by the suite itself."""
    folder = tmp_path_factory.mktemp("results")
    assert run_main([*VALID, "--agent", "random,greedy,thompson", "--results", str(folder)]) == 0
    return folder


def _exit_code(argv: list[str]) -> int:
    try:
        return run_main(argv)
    except SystemExit as exc:  # argparse's own refusals
        return int(exc.code)


@FUZZ
@given(data=st.data())
def test_bad_flag_values_exit_2_with_one_line_and_touch_nothing(board, capsys, data):
    flag = data.draw(st.sampled_from(sorted(BAD_VALUES)))
    value = data.draw(BAD_VALUES[flag])
    before = (board / "leaderboard.csv").read_bytes()
    capsys.readouterr()
    code = _exit_code([*VALID, "--results", str(board), f"{flag}={value}"])
    captured = capsys.readouterr()
    assert code == 2, (flag, value, captured.err)
    assert len(captured.err.strip().splitlines()) == 1, captured.err
    assert (board / "leaderboard.csv").read_bytes() == before


def _drop_column(data: bytes, column: str) -> bytes:
    df = pd.read_csv(io.BytesIO(data))
    out = io.StringIO()
    df.drop(columns=column).to_csv(out, index=False)
    return out.getvalue().encode()


def _damage(data: bytes, draw) -> bytes:
    kind = draw(st.sampled_from(["truncate", "insert-line", "drop-column", "non-utf8"]))
    if kind == "truncate":  # a cut anywhere but at the end of a row
        cut = draw(st.integers(1, len(data) - 1))
        assume(data[cut - 1 : cut] != b"\n")
        return data[:cut]
    if kind == "insert-line":
        lines = data.split(b"\n")
        at = draw(st.integers(1, len(lines) - 1))
        line = draw(st.text(alphabet=string.printable.replace("\n", "").replace("\r", ""), max_size=80))
        assume(line.count(",") != len(leaderboard.COLUMNS) - 1)
        return b"\n".join([*lines[:at], line.encode(), *lines[at:]])
    if kind == "drop-column":
        return _drop_column(data, draw(st.sampled_from(leaderboard.COLUMNS)))
    at = draw(st.integers(0, len(data)))
    return data[:at] + draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\x80abc", b"\xed\xa0\x80"])) + data[at:]


@FUZZ
@given(data=st.data())
def test_a_damaged_leaderboard_exits_2_with_one_line_and_stays_byte_identical(board, tmp_path_factory, capsys, data):
    damaged = _damage((board / "leaderboard.csv").read_bytes(), data.draw)
    folder = tmp_path_factory.mktemp("damaged")
    (folder / "leaderboard.csv").write_bytes(damaged)
    command = data.draw(st.sampled_from(["reader", "best", "run"]))
    capsys.readouterr()
    if command == "run":  # the run refuses the file before any work
        code = _exit_code([*VALID, "--results", str(folder)])
    else:
        code = tables.leaderboard_main(["--results", str(folder), *(["--best"] if command == "best" else [])])
    captured = capsys.readouterr()
    assert code == 2, captured.err
    assert len(captured.err.strip().splitlines()) == 1, captured.err
    assert (folder / "leaderboard.csv").read_bytes() == damaged
