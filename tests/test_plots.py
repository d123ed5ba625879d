"""Curve plots: per-step PNG always, per-episode PNG where trials hold several episodes."""

import pandas as pd

from metarl_bench.reporting import plots
from metarl_bench.running import tables


def _write_curves(folder, env: str, agent: str, episodes: int) -> None:
    steps = 6 * episodes
    pd.DataFrame({"step": range(1, steps + 1), "agent_reward": 0.5, "bayes_reward": 0.6, "oracle_reward": 0.9,
                  "random_reward": 0.1}).to_csv(folder / f"{env}__{agent}.csv", index=False)  # fmt: skip
    if episodes > 1:
        pd.DataFrame({"episode": range(1, episodes + 1), "agent_return": [1.0, 2.0, 3.0][:episodes],
                      "bayes_return": 3.0}).to_csv(folder / f"{env}__{agent}__episodes.csv", index=False)  # fmt: skip


def test_episode_plot_only_for_multi_episode_trials(tmp_path):
    _write_curves(tmp_path, "gridnavi-5x5", "rl2", episodes=3)
    _write_curves(tmp_path, "bernoulli-k2-h100", "rl2", episodes=1)
    assert plots.plot_env("gridnavi-5x5", tmp_path) == tmp_path / "gridnavi-5x5.png"
    assert (tmp_path / "gridnavi-5x5__episodes.png").stat().st_size > 1000
    plots.plot_env("bernoulli-k2-h100", tmp_path)
    assert (tmp_path / "bernoulli-k2-h100.png").exists()
    assert not (tmp_path / "bernoulli-k2-h100__episodes.png").exists()


def test_cli_redraws_and_rejects_unknown_names(tmp_path, capsys):
    (tmp_path / "curves").mkdir()
    _write_curves(tmp_path / "curves", "gridnavi-5x5", "bayes", episodes=2)
    assert tables.plots_main(["--results", str(tmp_path), "--env", "gridnavi-5x5"]) == 0
    assert (tmp_path / "curves" / "gridnavi-5x5__episodes.png").exists()
    assert tables.plots_main(["--results", str(tmp_path), "--env", "no-such-env"]) == 2
    assert "no-such-env" in capsys.readouterr().err


def test_curves_are_keyed_and_labelled_by_training_distribution_and_seed(tmp_path, monkeypatch):
    import numpy as np

    from metarl_bench.evaluation.evaluate import Evaluation

    curve = {"agent": np.full(6, 0.5), "bayes": np.full(6, 0.6)}
    own = Evaluation("gridnavi-5x5", "rl2", metrics=None, step_curve=curve)
    plots.write_curves(own, tmp_path, "gridnavi-5x5", 0)
    plots.write_curves(own, tmp_path, "gridnavi-5x5-permuted", 0)  # the same agent trained elsewhere
    plots.write_curves(own, tmp_path, "gridnavi-5x5", 2)
    plots.write_curves(Evaluation("gridnavi-5x5", "random", metrics=None, step_curve=curve), tmp_path, "", None)
    names = sorted(p.name for p in tmp_path.glob("*.csv"))
    assert names == ["gridnavi-5x5__random.csv", "gridnavi-5x5__rl2.csv",
                     "gridnavi-5x5__rl2__on-gridnavi-5x5-permuted-seed0.csv",
                     "gridnavi-5x5__rl2__on-gridnavi-5x5-seed2.csv"]  # fmt: skip
    assert plots.curve_label("rl2__on-gridnavi-5x5-permuted-seed0") == "rl2 (trained on gridnavi-5x5-permuted, seed 0)"
    labels = []
    monkeypatch.setattr(plots, "legend_beside", lambda ax: labels.extend(line.get_label() for line in ax.get_lines()))
    plots.plot_env("gridnavi-5x5", tmp_path)
    assert "rl2 (trained on gridnavi-5x5-permuted, seed 0)" in labels and "rl2" in labels
    assert "rl2 (trained on gridnavi-5x5, seed 2)" in labels
