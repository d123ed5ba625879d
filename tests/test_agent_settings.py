"""``--agent-config``: an agent's settings from the command line or TOML, checked before any work,
recorded in the row and the checkpoint; a checkpoint trained with other settings is not reused."""

from __future__ import annotations

import json

import pytest

import metarl_bench
from metarl_bench.baselines.rl2.agent import RL2Agent
from metarl_bench.core.agent import CheckpointError
from metarl_bench.reporting import leaderboard
from metarl_bench.running import sweep
from metarl_bench.running.agent_settings import parse_agent_settings, settings_schema
from metarl_bench.running.run import main as run_main

ENV = "bernoulli-k2-h100"
TINY = ["--env", ENV, "--eval-tasks", "20", "--seeds", "0"]


@pytest.fixture
def no_work(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a run started although the input was bad")

    monkeypatch.setattr(sweep, "run_sweep", refuse)


def error_line(capsys) -> str:
    lines = [line for line in capsys.readouterr().err.strip().splitlines() if line]
    assert len(lines) == 1, lines
    return lines[0]


@pytest.mark.parametrize(
    "value, message",
    [
        ("rl2:bogus=1", "unknown rl2 setting(s) ['bogus']; allowed: ['clip_range'"),
        ("rl2:gamma=high", "rl2 setting 'gamma' must be float, got 'high'"),
        ("rl2:gamma=1.5", "rl2 gamma must be a number > 0 and <= 1, got 1.5"),
        ("rl2:lstm_hidden_size=0", "rl2 lstm_hidden_size must be an integer >= 1, got 0"),
        ("rl2:lstm_hidden_size=2.5", "rl2 setting 'lstm_hidden_size' must be int, got '2.5'"),
        ("rl2:lr_decay=maybe", "rl2 setting 'lr_decay' must be bool, got 'maybe'"),
        ("rl2:gamma=nan", "rl2 setting 'gamma' must be float, got 'nan'"),
        ("rl2", "expected AGENT:KEY=VALUE[,KEY=VALUE...] or a .toml file"),
        ("rl2:gamma", "'gamma' is not KEY=VALUE"),
        ("rl2:gamma=0.9,gamma=0.8", "'gamma' given twice"),
        ("vsml:gamma=0.9", "agent 'vsml' is not in this run; its agents are ['rl2']"),
        ("missing.toml", "missing.toml: no such file"),
    ],
)
def test_a_bad_setting_is_one_line_and_exit_2_before_any_work(value, message, capsys, no_work):
    assert run_main(["--agent", "rl2", *TINY, "--agent-config", value, "--no-save"]) == 2
    line = error_line(capsys)
    assert line.startswith("python -m metarl_bench.run: error: --agent-config") and message in line, line


def test_an_agent_without_settings_refuses_every_key(capsys, no_work):
    assert run_main(["--agent", "thompson", *TINY, "--agent-config", "thompson:prior=2", "--no-save"]) == 2
    assert "unknown thompson setting(s) ['prior']; allowed: none (it takes no settings)" in error_line(capsys)


def test_settings_are_read_as_their_types_from_text_and_from_toml(tmp_path):
    assert parse_agent_settings(["rl2:lstm_hidden_size=64,gamma=0.99,lr_decay=false"], ["rl2"], ENV) == {
        "rl2": {"lstm_hidden_size": 64, "gamma": 0.99, "lr_decay": False}
    }
    toml = tmp_path / "settings.toml"
    toml.write_text("[rl2]\nlstm_hidden_size = 64\ngamma = 0.99\n\n[ucb1]\nc = 2\n")
    got = parse_agent_settings([str(toml)], ["rl2", "ucb1"], ENV)
    assert got == {"rl2": {"lstm_hidden_size": 64, "gamma": 0.99}, "ucb1": {"c": 2.0}}
    toml.write_text("[rl2]\nlstm_hidden_size = 6.5\n")
    with pytest.raises(ValueError, match="'lstm_hidden_size' must be int, got '6.5'"):
        parse_agent_settings([str(toml)], ["rl2"], ENV)
    toml.write_text("gamma = 0.9\n")
    with pytest.raises(ValueError, match=r"one \[agent\] table per agent, found plain key\(s\) \['gamma'\]"):
        parse_agent_settings([str(toml)], ["rl2"], ENV)
    toml.write_text("[rl2\n")
    with pytest.raises(ValueError, match="not valid TOML"):
        parse_agent_settings([str(toml)], ["rl2"], ENV)


def test_the_schema_is_the_config_class_and_the_constructor_keywords():
    assert set(settings_schema("rl2")) == set(RL2Agent.config_class.__dataclass_fields__)
    assert settings_schema("ucb1") == {"c": float, "pseudo_counts": bool}
    assert "preset" in settings_schema("vsml") and "population" in settings_schema("vsml")


def test_the_settings_are_recorded_in_the_row(tmp_path, capsys):
    results = tmp_path / "results"
    assert run_main(["--agent", "ucb1", *TINY, "--agent-config", "ucb1:c=2.5", "--results", str(results)]) == 0
    (row,) = leaderboard.read(results / leaderboard.LEADERBOARD_FILE).to_dict("records")
    assert json.loads(row["agent_config"])["c"] == 2.5
    assert json.loads(row["run_config"]) == {"agent_config": {"c": 2.5}}


def test_a_shipped_checkpoint_trained_with_other_settings_is_refused_before_any_work(capsys, no_work):
    assert run_main(["--agent", "rl2", *TINY, "--agent-config", "rl2:lstm_hidden_size=16", "--no-save"]) == 2
    line = error_line(capsys)
    assert "was trained with other rl2 settings (lstm_hidden_size: trained with 48, asked for 16)" in line
    assert "pass --retrain" in line


def test_settings_that_only_change_play_reuse_the_checkpoint(capsys):
    assert run_main(["--agent", "rl2", *TINY, "--agent-config", "rl2:deterministic=true", "--no-save"]) == 0


def test_trained_settings_are_in_the_checkpoint_and_a_mismatch_is_refused_on_load(tmp_path):
    family = metarl_bench.make_family(ENV)
    agent = RL2Agent(family, lstm_hidden_size=8, n_envs=8)
    agent.fit(family, 800, train_env=ENV, progress=False)
    path = agent.save(tmp_path / "small.zip")
    record, _ = RL2Agent.read(path)
    assert record["config"]["lstm_hidden_size"] == 8 and record["config"]["n_envs"] == 8
    with pytest.raises(CheckpointError, match="lstm_hidden_size: trained with 8, asked for 48"):
        RL2Agent(family, n_envs=8).load_weights(path)
    assert RL2Agent.load(path, family).cfg.lstm_hidden_size == 8  # built from its record, it loads
