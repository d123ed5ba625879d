"""The quickstart leaves a checkout clean: a user's runs go to a folder of their own, which git
ignores, and the shipped results/ change only when a command names them (issue #24)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from metarl_bench.reporting import leaderboard
from metarl_bench.running.options import USER_RESULTS

ROOT = Path(__file__).resolve().parent.parent


def git(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)


pytestmark = pytest.mark.skipif(
    shutil.which("git") is None or git("rev-parse", "--git-dir").returncode != 0, reason="needs a git checkout"
)


def test_a_run_with_the_default_results_folder_changes_nothing_git_tracks(tmp_path):
    before = git("status", "--porcelain", "--untracked-files=all").stdout
    argv = [sys.executable, "-m", "metarl_bench.run", "--agent", "random,thompson", "--env", "bernoulli-k2-h100",
            "--eval-tasks", "20", "--seeds", "0"]  # fmt: skip
    done = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    rows = leaderboard.read(tmp_path / USER_RESULTS / leaderboard.LEADERBOARD_FILE)
    assert sorted(rows.agent) == ["random", "thompson"]  # the rows went to ./metarl-results
    assert (tmp_path / USER_RESULTS / "curves").is_dir()
    assert git("status", "--porcelain", "--untracked-files=all").stdout == before


def test_the_default_results_folder_is_ignored_inside_a_checkout():
    """Run from the checkout's root (as the quickstart is), ./metarl-results lies inside it: git ignores it."""
    for path in (f"{USER_RESULTS}/leaderboard.csv", f"{USER_RESULTS}/curves/bernoulli-k2-h100.csv"):
        assert git("check-ignore", "-q", path).returncode == 0, path
    assert git("check-ignore", "-q", "results/leaderboard.csv").returncode == 1  # the shipped ones are tracked
