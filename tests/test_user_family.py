"""A family registered from a user's own module, outside this repository, works like a built-in one."""

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def readme_example() -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Add your own task family", 1)[1]
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
        "import metarl_bench\nfrom metarl_bench.envs.bandits import BernoulliBandit\n"
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
        "import sys; from metarl_bench.run import main; sys.exit(main(['--list']))", tmp_path, tmp_path
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
