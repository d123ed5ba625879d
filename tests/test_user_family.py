"""A family registered from a user's own module, outside this repository, works like a built-in one."""

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def readme_example() -> str:
    """The complete example of the docs page "Add your own family" (``docs/own-family.md``)."""
    text = (ROOT / "docs" / "own-family.md").read_text()
    section = text.split("## A complete example", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def run_python(code: str, cwd: Path, extra_path: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if extra_path is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(extra_path), env.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_readme_example_runs_from_a_users_own_module(tmp_path):
    (tmp_path / "my_families.py").write_text(readme_example())
    check = textwrap.dedent(
        """
        import gymnasium as gym, numpy as np
        import my_families, metarl_bench
        assert "one-good-arm-k4" in metarl_bench.list_families()
        assert metarl_bench.list_families("my-suite") == ["one-good-arm-k4"]
        env = gym.make("metarl_bench/one-good-arm-k4")
        obs, info = env.reset(seed=0)
        total = sum(env.step(int(info["task"]["good"]))[1] for _ in range(20))
        assert total > 10, total
        batch = metarl_bench.make("one-good-arm-k4", num_trials=8, seed=0, k=6)
        batch.reset()
        assert batch.step(np.zeros(8, int))[1].shape == (8,)
        print("OK")
        """
    )
    result = run_python(check, cwd=tmp_path, extra_path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout


def test_entry_point_plugins_are_discovered(tmp_path):
    # A distribution installed by another package: only its entry point names the module.
    pkg = tmp_path / "plugin_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "families.py").write_text(
        "import metarl_bench\nfrom metarl_bench.envs.bandits.family import BernoulliBandit\n"
        "metarl_bench.register('plugin-bandit-k3', BernoulliBandit, suites=('plugin-suite',), k=3, horizon=5)\n"
    )
    dist = tmp_path / "plugin_pkg-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: plugin-pkg\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[metarl_bench.families]\nplugin = plugin_pkg.families\n")
    code = (
        "import gymnasium as gym, metarl_bench\n"
        "assert metarl_bench.list_families('plugin-suite') == ['plugin-bandit-k3']\n"
        "assert gym.make('metarl_bench/plugin-bandit-k3').action_space.n == 3\nprint('OK')\n"
    )
    result = run_python(code, cwd=tmp_path, extra_path=tmp_path)
    assert result.returncode == 0, result.stderr
    # And the CLI lists it.
    listing = run_python(
        "import sys; from metarl_bench.running.run import main; sys.exit(main(['--list']))", tmp_path, tmp_path
    )
    assert "plugin-bandit-k3" in listing.stdout, listing.stderr


def test_a_broken_plugin_warns_and_leaves_the_rest_working(tmp_path):
    dist = tmp_path / "broken_pkg-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-pkg\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[metarl_bench.families]\nbroken = no_such_module_here\n")
    code = "import metarl_bench\nassert 'bernoulli-k2-h100' in metarl_bench.list_families()\nprint('OK')\n"
    result = run_python(code, cwd=tmp_path, extra_path=tmp_path)
    assert result.returncode == 0 and "OK" in result.stdout, result.stderr
    assert "no_such_module_here" in result.stderr


def run_cli(args: list[str], cwd: Path, extra_path: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(extra_path), os.environ.get("PYTHONPATH", "")]))
    return subprocess.run(
        [sys.executable, "-m", "metarl_bench.run", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def score_with_the_cli(tmp_path: Path, module: str, agents: str, env: str, expect: str):
    """Run the CLI on a user's family (imported with --import); return its rows by agent."""
    args = ["--import", module, "--agent", agents, "--env", env, "--eval-tasks", "200", "--seeds", "0",
            "--results", str(tmp_path / "results")]  # fmt: skip
    result = run_cli(args, tmp_path, tmp_path)
    assert result.returncode == 0, result.stderr
    assert expect in result.stdout
    import pandas as pd

    return pd.read_csv(tmp_path / "results" / "leaderboard.csv").set_index("agent")


def test_readme_family_is_scored_against_its_own_exact_reference(tmp_path):
    (tmp_path / "my_families.py").write_text(readme_example())
    rows = score_with_the_cli(tmp_path, "my_families", "bayes,thompson,random", "one-good-arm-k4", "exact")
    assert (rows.bayes_method == "exact").all()
    assert rows.bayes_return.iloc[0] == 18.5  # 20 - (0 + 1 + 2 + 3) / 4
    assert rows.loc["bayes", "score"] == 100.0
    # Trying the possible arms in a random order is optimal too; random play is the 0.
    assert rows.loc["thompson", "score"] > 97.0 and abs(rows.loc["random", "score"]) < 10


def _brute_force_value(k: int, horizon: int) -> float:
    """Expectimax over beliefs (the set of arms that may be good), from the rules alone."""
    import functools

    @functools.cache
    def value(t: int, possible: frozenset) -> float:
        if t == horizon:
            return 0.0
        best = 0.0
        for arm in range(k):
            p_good = (arm in possible) / len(possible)
            found = 1.0 + value(t + 1, frozenset([arm])) if p_good else 0.0
            missed = value(t + 1, possible - {arm}) if p_good < 1 else 0.0
            best = max(best, p_good * found + (1 - p_good) * missed)
        return best

    return value(0, frozenset(range(k)))


def test_readme_familys_exact_value_matches_brute_force(tmp_path):
    namespace: dict = {}
    exec(compile(readme_example(), "my_families.py", "exec"), namespace)  # registers one-good-arm-k4
    try:
        for k, horizon in [(2, 3), (3, 2), (4, 6), (5, 4)]:
            reference = namespace["OneGoodArm"](k=k, horizon=horizon).bayes_reference()
            assert reference.expected_return() == _brute_force_value(k, horizon)
    finally:
        import metarl_bench

        metarl_bench.unregister("one-good-arm-k4")


NO_REFERENCE_FAMILY = """
import my_families, metarl_bench


class NoReference(my_families.OneGoodArm):
    def bayes_reference(self):
        return None


metarl_bench.register("one-good-arm-no-ref", NoReference, k=3, horizon=10)
"""


def test_a_family_without_a_reference_runs_every_agent_and_leaves_the_score_empty(tmp_path):
    (tmp_path / "my_families.py").write_text(readme_example())
    (tmp_path / "no_ref.py").write_text(NO_REFERENCE_FAMILY)
    agents = "random,thompson,greedy,oracle,bayes"
    rows = score_with_the_cli(tmp_path, "no_ref", agents, "one-good-arm-no-ref", "declares no Bayes reference")
    assert sorted(rows.index) == ["greedy", "oracle", "random", "thompson"]  # bayes: skipped, declared unsupported
    assert rows.score.isna().all() and rows.score_ci_low.isna().all()
    assert rows.score_note.str.contains("declares no Bayes reference").all()
    assert (rows.bayes_method == "none").all()
    assert rows.loc["oracle", "regret"] == 0.0 and rows.loc["random", "return"] > 0
    assert rows["return"].notna().all() and rows.regret.notna().all()


def test_readme_family_and_its_agent_pass_the_contract_checkers():
    import metarl_bench

    namespace: dict = {}
    exec(compile(readme_example(), "my_families.py", "exec"), namespace)
    try:
        family = namespace["OneGoodArm"](k=3, horizon=6)
        metarl_bench.check_family(family, "one-good-arm-k4")
        metarl_bench.check_agent(namespace["TryInTurn"](family))
    finally:
        metarl_bench.unregister("one-good-arm-k4")


FAULTY_FAMILY = """
import numpy as np
import my_families, metarl_bench


class WideObservation(my_families.OneGoodArm):
    def observe(self, tasks, state):
        return np.zeros((len(tasks["good"]), 2), np.float32)  # obs_shape says (1,)


metarl_bench.register("one-good-arm-wide", WideObservation, k=3, horizon=10)
"""


def test_a_faulty_family_from_a_users_module_writes_no_row_and_names_the_fault(tmp_path):
    (tmp_path / "my_families.py").write_text(readme_example())
    (tmp_path / "faulty.py").write_text(FAULTY_FAMILY)
    args = ["--import", "faulty", "--agent", "random", "--env", "one-good-arm-wide", "--eval-tasks", "20",
            "--seeds", "0", "--results", str(tmp_path / "results")]  # fmt: skip
    result = run_cli(args, tmp_path, tmp_path)
    assert result.returncode != 0
    assert "family 'one-good-arm-wide', observe() at t=0, observation: shape (7, 2) for 7 trials" in result.stderr
    assert not (tmp_path / "results" / "leaderboard.csv").exists()
