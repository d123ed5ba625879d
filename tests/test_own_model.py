"""Score your own model (issue #24): a plain sb3-contrib zip, a checkpoint of ours anywhere, a
torch module; the page docs/own-model.md runs as written, and bad files are refused in one line."""

from __future__ import annotations

import json
import re
import shlex
import shutil
from pathlib import Path

import pytest

from metarl_bench.core.learner import file_sha256
from metarl_bench.reporting import leaderboard
from metarl_bench.running import sweep
from metarl_bench.running.run import main as run_main

PAGE = Path(__file__).resolve().parent.parent / "docs" / "own-model.md"
SHIPPED = Path(__file__).resolve().parent.parent / "baselines" / "checkpoints" / "rl2"
BLOCK = re.compile(r"```(python|bash)\n(.*?)```", re.S)


@pytest.fixture(scope="module")
def page_run(tmp_path_factory):
    """Runs the page's blocks in order in one folder: python blocks in one namespace, bash
    blocks (commands of the suite) through its entry point."""
    folder = tmp_path_factory.mktemp("own-model")
    namespace: dict = {}
    codes = []
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(folder)
        for kind, code in BLOCK.findall(PAGE.read_text()):
            if kind == "python":
                exec(compile(code, str(PAGE), "exec"), namespace)
            else:
                argv = shlex.split(code.strip())
                assert argv[:3] == ["python", "-m", "metarl_bench.run"], argv
                codes.append(run_main(argv[3:]))
    return folder, namespace, codes


def test_the_page_runs_as_written(page_run):
    folder, namespace, codes = page_run
    assert (folder / "my_recurrent_ppo.zip").is_file() and codes == [0]
    assert abs(namespace["result"].metrics["score"]) < 60  # an untrained GRU plays about as random play


def test_a_plain_sb3_zip_is_scored_and_its_row_says_where_it_came_from(page_run, tmp_path):
    folder, _, _ = page_run
    zip_path = folder / "my_recurrent_ppo.zip"
    argv = ["--agent", "rl2", "--env", "bernoulli-k2-h100", "--checkpoint", str(zip_path), "--eval-tasks", "20",
            "--seeds", "0", "--results", str(tmp_path)]  # fmt: skip
    assert run_main(argv) == 0
    (row,) = leaderboard.read(tmp_path / leaderboard.LEADERBOARD_FILE).to_dict("records")
    assert row["checkpoint"] == str(zip_path) and row["checkpoint_sha256"] == file_sha256(zip_path)
    assert json.loads(row["agent_config"])["checkpoint_format"] == "sb3-contrib RecurrentPPO zip"
    assert json.loads(row["run_config"])["checkpoint"] == str(zip_path)


@pytest.fixture
def no_work(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a run started although the input was bad")

    monkeypatch.setattr(sweep, "run_sweep", refuse)


def test_a_zip_of_other_spaces_is_refused_in_one_line(page_run, capsys, no_work):
    folder, _, _ = page_run
    assert run_main(["--agent", "rl2", "--env", "bernoulli-k5-h100", "--checkpoint",
                     str(folder / "my_recurrent_ppo.zip"), "--no-save"]) == 2  # fmt: skip
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "was trained for observations" in line and "Discrete(5)" in line


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--checkpoint", "nowhere.zip"], "--checkpoint nowhere.zip: no such file"),
        (["--checkpoint", __file__], "not a zip"),
        (["--checkpoint", str(SHIPPED / "bernoulli-k2-h100.zip"), "--retrain"], "drop --retrain"),
        (["--checkpoint", str(SHIPPED / "bernoulli-k5-h100.zip")], "cannot change its action space"),
    ],
)
def test_bad_checkpoint_files_are_refused_before_any_work(extra, message, capsys, no_work):
    assert run_main(["--agent", "rl2", "--env", "bernoulli-k2-h100", *extra, "--no-save"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert message in line, line


def test_checkpoint_wants_one_learning_agent(capsys, no_work):
    shipped = str(SHIPPED / "bernoulli-k2-h100.zip")
    assert run_main(["--agent", "rl2,vsml", "--env", "bernoulli-k2-h100", "--checkpoint", shipped, "--no-save"]) == 2
    assert "plays one agent's file" in capsys.readouterr().err
    assert run_main(["--agent", "thompson", "--env", "bernoulli-k2-h100", "--checkpoint", shipped, "--no-save"]) == 2
    assert "does not learn" in capsys.readouterr().err


def test_a_checkpoint_of_ours_anywhere_plays_with_its_own_record(tmp_path):
    moved = tmp_path / "elsewhere.zip"
    shutil.copy(SHIPPED / "bernoulli-k2-h100__seed1.zip", moved)
    argv = ["--agent", "rl2", "--env", "bernoulli-k2-h100", "--checkpoint", str(moved), "--eval-tasks", "20",
            "--seeds", "0", "--results", str(tmp_path / "results")]  # fmt: skip
    assert run_main(argv) == 0
    (row,) = leaderboard.read(tmp_path / "results" / leaderboard.LEADERBOARD_FILE).to_dict("records")
    assert (row["train_env"], int(row["train_seed"]), row["checkpoint"]) == ("bernoulli-k2-h100", 1, str(moved))
