"""Bad input is refused before any work, with exit 2 and one line that says what is allowed;
failures are failures (never "skipped"); nothing is half-written or changed on refusal."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import torch

import metarl_bench
from metarl_bench.baselines.rl2.agent import RL2Agent
from metarl_bench.baselines.vsml.agent import VSMLAgent
from metarl_bench.core.agent import Agent
from metarl_bench.envs.bandits.family import BernoulliBandit
from metarl_bench.reporting import leaderboard
from metarl_bench.running import sweep
from metarl_bench.running.run import main as run_main

TINY = ["--env", "bernoulli-k2-h100", "--eval-tasks", "20", "--seeds", "0"]


@pytest.fixture
def no_work(monkeypatch):
    """Fail the test if a sweep starts: refusals must come before any run."""

    def refuse(*args, **kwargs):
        raise AssertionError("a run started although the input was bad")

    monkeypatch.setattr(sweep, "run_sweep", refuse)


def one_error_line(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line]
    assert len(lines) == 1, err
    return lines[0]


# ----------------------------------------------------------------------------- --results
def test_results_that_is_a_file_is_refused_before_any_work(tmp_path, capsys, no_work):
    target = tmp_path / "results"
    target.write_text("not a folder")
    assert run_main(["--agent", "random", *TINY, "--results", str(target)]) == 2
    assert "is a file, not a folder" in one_error_line(capsys.readouterr().err)
    assert run_main(["--agent", "random", *TINY, "--results", str(target / "sub")]) == 2
    assert "is a file, not a folder" in one_error_line(capsys.readouterr().err)
    assert target.read_text() == "not a folder"


def test_results_that_cannot_be_written_is_refused_before_any_work(tmp_path, capsys, no_work, monkeypatch):
    import metarl_bench.running.options as options

    def read_only(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(options.tempfile, "TemporaryFile", read_only)  # root writes anywhere: simulate it
    assert run_main(["--agent", "random", *TINY, "--results", str(tmp_path)]) == 2
    assert "is not writable (Permission denied" in one_error_line(capsys.readouterr().err)


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root may write into a read-only folder")
def test_a_read_only_results_folder_is_refused(tmp_path, capsys, no_work):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        assert run_main(["--agent", "random", *TINY, "--results", str(folder)]) == 2
        assert "not writable" in capsys.readouterr().err
    finally:
        folder.chmod(0o755)


# ----------------------------------------------------------------------------- --device
def test_an_unknown_device_is_refused_before_any_work(tmp_path, capsys, no_work):
    assert run_main(["--agent", "vsml", *TINY, "--device", "banana", "--results", str(tmp_path)]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "'banana' is not a torch device" in line and "auto" in line


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
@pytest.mark.parametrize("agent", ["rl2", "vsml"])
def test_cuda_without_cuda_is_refused_not_silently_replaced(tmp_path, capsys, no_work, agent):
    assert run_main(["--agent", agent, *TINY, "--device", "cuda", "--results", str(tmp_path)]) == 2
    assert "no CUDA device" in one_error_line(capsys.readouterr().err)


def test_device_auto_records_the_device_the_work_ran_on(tmp_path):
    assert run_main(["--agent", "vsml,rl2", *TINY, "--device", "auto", "--results", str(tmp_path)]) == 0
    rows = leaderboard.read(tmp_path / "leaderboard.csv")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert list(rows.device.str.split(":").str[0]) == [expected, expected]


# ----------------------------------------------------------------------------- scores
def test_a_one_armed_bandit_gets_no_score_but_a_note(tmp_path):
    metarl_bench.register("test-bernoulli-k1", BernoulliBandit, k=1, horizon=10, replace=True)
    try:
        assert run_main(["--agent", "random,bayes", "--env", "test-bernoulli-k1", "--eval-tasks", "50",
                         "--seeds", "0", "--results", str(tmp_path)]) == 0  # fmt: skip
    finally:
        metarl_bench.unregister("test-bernoulli-k1")
    rows = leaderboard.read(tmp_path / "leaderboard.csv")
    assert rows.score.isna().all() and rows.score_ci_low.isna().all() and rows.score_ci_high.isna().all()
    assert rows.score_note.str.contains("same return").all()
    assert rows["return"].notna().all()


# ----------------------------------------------------------------------------- registration
BUILTIN_NAME = """
import metarl_bench
from metarl_bench.baselines.classical import GreedyAgent
try:
    metarl_bench.register_agent("thompson", GreedyAgent)
except ValueError as exc:
    print("refused:", exc)
agents = metarl_bench.list_agents()
assert {"thompson", "oracle", "ucb1", "greedy"} <= set(agents), agents
assert metarl_bench.core.registry.get_agent_factory("thompson").__name__ == "ThompsonAgent"
metarl_bench.register_agent("thompson", GreedyAgent, replace=True)
assert metarl_bench.core.registry.get_agent_factory("thompson") is GreedyAgent
print("OK")
"""


def test_a_user_agent_under_a_builtin_name_is_refused_whatever_the_order(tmp_path):
    result = subprocess.run([sys.executable, "-c", BUILTIN_NAME], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "refused: agent 'thompson' is already registered; pass replace=True" in result.stdout
    assert "OK" in result.stdout and "could not load" not in result.stderr


# ----------------------------------------------------------------------------- failures
@pytest.mark.parametrize("agent_cls, name, expected", [(RL2Agent, "rl2", "is not an rl2 checkpoint"),
                                                        (VSMLAgent, "vsml", "is not a vsml checkpoint")])  # fmt: skip
def test_a_corrupt_checkpoint_is_refused_before_any_run(tmp_path, capsys, monkeypatch, agent_cls, name, expected):
    corrupt = tmp_path / "corrupt.bin"
    corrupt.write_bytes(b"PK\x03\x04 not really a checkpoint")
    monkeypatch.setattr(agent_cls, "checkpoint_path", lambda self, env, seed=0: corrupt)
    code = run_main(["--agent", f"{name},thompson", *TINY, "--results", str(tmp_path / "results")])
    assert code == 2
    line = one_error_line(capsys.readouterr().err)
    assert expected in line and str(corrupt) in line and "weights_only" not in line
    assert not (tmp_path / "results" / "leaderboard.csv").exists()


@pytest.mark.parametrize("agent_cls, name", [(RL2Agent, "rl2"), (VSMLAgent, "vsml")])
def test_damaged_weights_fail_their_run_in_one_line_and_the_sweep_goes_on(
    tmp_path, capsys, monkeypatch, agent_cls, name
):
    import zipfile

    shipped = agent_cls(metarl_bench.make_family("bernoulli-k2-h100")).checkpoint_path("bernoulli-k2-h100")
    damaged = tmp_path / "damaged.zip"  # its record is fine, so only loading the weights finds the fault
    with zipfile.ZipFile(shipped) as src, zipfile.ZipFile(damaged, "w") as dst:
        dst.writestr("record.json", src.read("record.json"))
        dst.writestr(agent_cls.weights_file, b"garbage")
    monkeypatch.setattr(agent_cls, "checkpoint_path", lambda self, env, seed=0: damaged)
    code = run_main(["--agent", f"{name},thompson", *TINY, "--results", str(tmp_path / "results")])
    err = capsys.readouterr().err
    assert code == 1 and "1 run(s) failed" in err and str(damaged) in err and "Traceback" not in err
    rows = leaderboard.read(tmp_path / "results" / "leaderboard.csv")
    assert list(rows.agent) == ["thompson"]  # the other run still made its row


class _BrokenAgent(Agent):
    name = "test-broken"

    def reset(self, num_trials, rng=None, tasks=None):
        return {}

    def act(self, obs, memory):
        raise ValueError("a bug inside act, not a declaration of unsupported families")


def test_a_value_error_inside_a_run_fails_it_and_only_a_declared_pair_is_skipped(tmp_path, capsys):
    metarl_bench.register_agent("test-broken", _BrokenAgent, replace=True)
    code = run_main(["--agent", "test-broken,thompson", *TINY, "--results", str(tmp_path)])
    captured = capsys.readouterr()
    assert code == 1 and "test-broken on bernoulli-k2-h100" in captured.err and "a bug inside act" in captured.err
    # greedy declares it does not play gridworlds: skipped, and the sweep succeeds
    code = run_main(["--agent", "greedy,random", "--env", "heart-trap-5x5", "--eval-tasks", "20", "--seeds", "0",
                     "--results", str(tmp_path)])  # fmt: skip
    assert code == 0 and "skipped" in capsys.readouterr().err.lower()


def test_run_says_where_its_rows_and_curves_went(tmp_path, capsys):
    assert run_main(["--agent", "random", *TINY, "--results", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"wrote 1 row(s) to {tmp_path / 'leaderboard.csv'}" in out and str(tmp_path / "curves") in out


@pytest.mark.parametrize(
    "stop, code, said", [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated (SIGTERM)")]
)
def test_a_stop_ends_with_one_line_its_exit_code_and_nothing_half_written(tmp_path, stop, code, said):
    results = tmp_path / "results"
    results.mkdir()
    argv = [sys.executable, "-m", "metarl_bench.run", "--agent", "thompson", "--env", "bernoulli-k10-h500",
            "--eval-tasks", "50000", "--seeds", "0,1,2", "--results", str(results)]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path)
    seen, deadline = b"", time.monotonic() + 180
    while b"run(s) on the local backend" not in seen and time.monotonic() < deadline:  # imports and checks done
        chunk = os.read(proc.stdout.fileno(), 4096)
        if not chunk:
            break
        seen += chunk
    assert proc.poll() is None, "the run ended before it could be stopped"
    time.sleep(1)
    proc.send_signal(stop)
    out, err = proc.communicate(timeout=120)
    err = err.decode()
    assert proc.returncode == code, (out, err)
    assert "Traceback" not in err and len([line for line in err.splitlines() if said in line]) == 1
    assert not (results / "leaderboard.csv").exists() or leaderboard.read(results / "leaderboard.csv").empty
    assert not [p for p in results.iterdir() if p.name.startswith(".tmp")]


def test_eval_tasks_minimum_agrees_between_help_and_check(capsys):
    with pytest.raises(SystemExit) as info:
        run_main(["--eval-tasks", "1", "--no-save"])
    assert info.value.code == 2
    assert "--eval-tasks: expected an integer >= 2, got 1" in one_error_line(capsys.readouterr().err)


# ----------------------------------------------------------------------------- issue #24: every fault named
@pytest.mark.parametrize(
    "argv, message",
    [
        (["--agent", "random", "--env", "bandits,"], "--env 'bandits,' has an empty item"),
        (["--agent", "random,,ucb1", "--env", "bandits"], "--agent 'random,,ucb1' has an empty item"),
        (["--agent", "random", "--env", "bernoulli-k2-h100,bernoulli-k2-h100"], "names ['bernoulli-k2-h100'] twice"),
        (["--agent", "random,random", "--env", "bandits"], "--agent 'random,random' names ['random'] twice"),
        (["--agent", "random", "--env", "bandits", "--seeds", str(10**23)], "is above the largest seed, 4294967295"),
        (["--agent", "rl2", "--env", "bandits", "--train-seed", str(10**23)], "--train-seed 100000000000000000000000"),
        (["--agent", "rl2", "--env", "bernoulli-k2-h100", "--train-steps", str(10**15)], "is above 1e+11 env steps"),
        (["--agent", "random", "--env", "bernoulli-k2-h100", "--eval-tasks", str(10**13)], "of memory, more than the"),
        (["--agent", "vsml", "--env", "bernoulli-k2-h100", "--train-steps", "200000"],
         "--train-steps 200000 is less than one ES generation (64 members x 64 tasks x 100 steps) of vsml"),
        (["--agent", "rl2", "--env", "bernoulli-k2-h100", "--train-steps", "100"], "give at least 12800"),
    ],
)
def test_each_fault_is_one_line_and_exit_2_before_any_work(argv, message, capsys, no_work):
    assert run_main([*argv, "--no-save"]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert message in line and "Traceback" not in line, line


def test_memory_is_estimated_from_the_arrays_a_run_holds():
    from metarl_bench.evaluation.evaluate import EvalSettings
    from metarl_bench.running import preflight

    settings = EvalSettings(n_tasks=1000, seeds=(0, 1, 2))
    per_task = preflight.bytes_per_task("bernoulli-k2-h100", settings)
    assert 8 * 100 * 3 <= per_task <= 100_000  # at least the rewards of every seed and step
    preflight.check_memory(["bernoulli-k2-h100"], settings, available=per_task * 1000)
    with pytest.raises(ValueError, match="at most about 999 tasks fit"):
        preflight.check_memory(["bernoulli-k2-h100"], settings, available=per_task * 1000 - 1)


@pytest.mark.parametrize(
    "source, message",
    [
        ("raise RuntimeError('boom\\nsecond line')\n", "module broken_plugin failed to import: RuntimeError: boom"),
        ("def f(:\n", "module broken_plugin failed to import: SyntaxError: invalid syntax"),
    ],
    ids=["raises", "syntax"],
)
def test_a_broken_import_is_named_in_one_line(source, message, tmp_path, monkeypatch, capsys, no_work):
    (tmp_path / "broken_plugin.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert run_main(["--import", "broken_plugin", "--agent", "random", *TINY, "--no-save"]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert message in line and "second line" not in line, line


def test_a_corrupt_shipped_checkpoint_is_refused_before_any_work_without_a_traceback(
    tmp_path, monkeypatch, capsys, no_work
):
    (tmp_path / "bernoulli-k2-h100.zip").write_bytes(b"PK\x03\x04 damaged")
    monkeypatch.setattr(RL2Agent, "checkpoint_dir", tmp_path)
    assert run_main(["--agent", "rl2", *TINY, "--no-save"]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "is not an rl2 checkpoint: not a zip file" in line and str(tmp_path) in line


def test_skipped_runs_are_one_line_unless_verbose(tmp_path, capsys):
    argv = ["--agent", "greedy,random", "--env", "heart-trap-5x5", "--eval-tasks", "20", "--seeds", "0", "--no-save"]
    assert run_main(argv) == 0
    err = capsys.readouterr().err
    assert err.count("skipped") == 1 and "skipped 1 run(s) whose agent does not play" in err and "--verbose" in err
    assert run_main([*argv, "--verbose"]) == 0
    err = capsys.readouterr().err
    assert "skipped greedy on heart-trap-5x5:" in err and "listed above" in err


def test_probe_names_a_missing_checkpoint_as_missing_before_any_work(capsys):
    from metarl_bench.running.probe import main as probe_main

    argv = ["--agent", "vsml", "--env", "bernoulli-k2-h100", "--checkpoint", "nowhere.zip", "--no-save"]
    assert probe_main(argv) == 2
    assert "--checkpoint nowhere.zip: no such file" in one_error_line(capsys.readouterr().err)


def test_the_budget_is_said_in_each_learners_own_unit_before_training(monkeypatch, capsys):
    monkeypatch.setattr(sweep, "run_sweep", lambda *args, **kwargs: sweep.SweepReport())  # no training here
    run_main(["--agent", "rl2,vsml", *TINY, "--train-steps", "1000000", "--no-save"])
    out = capsys.readouterr().out
    assert "budget: rl2 on bernoulli-k2-h100: 1000000 env steps = 78 x PPO update (128 trials x 100 steps)" in out
    assert "budget: vsml on bernoulli-k2-h100: 1000000 env steps = 2 x ES generation (64 members x 64 tasks" in out
