"""One import namespace: everything installs under ``metarl_bench``; no top-level ``envs`` or
``baselines`` module is installed, and the built-ins are found from any working folder, also
one that holds its own ``envs/`` and ``baselines/`` packages (common in RL projects)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DECOY = "raise ImportError('the decoy {} package was imported instead of metarl_bench.{}')\n"


def decoy_folder(path: Path) -> Path:
    """A working folder with its own envs/ and baselines/ packages that fail on import."""
    for name in ("envs", "baselines"):
        (path / name).mkdir(parents=True)
        (path / name / "__init__.py").write_text(DECOY.format(name, name))
        (path / name / "bandits.py").write_text(DECOY.format(name, name))
    return path


def listing(python: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run(
        [python, "-m", "metarl_bench.run", "--list"], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def assert_builtins_listed(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for name in ("bernoulli-k2-h100", "gridnavi-5x5", "bandits:", "thompson", "ucb1", "oracle", "bayes", "rl2", "vsml"):
        assert name in out, f"{name} missing from --list:\n{out}\n{result.stderr}"
    assert "decoy" not in result.stderr


def test_the_installed_package_ignores_decoys_in_the_working_folder(tmp_path):
    assert_builtins_listed(listing(sys.executable, decoy_folder(tmp_path / "project")))


def test_the_installed_package_puts_no_top_level_envs_or_baselines_on_the_path(tmp_path):
    code = (
        "import importlib.util, metarl_bench.envs.bandits.family, metarl_bench.baselines.classical\n"
        "assert importlib.util.find_spec('envs') is None, importlib.util.find_spec('envs')\n"
        "assert importlib.util.find_spec('baselines') is None, importlib.util.find_spec('baselines')\n"
        "print('OK')\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert result.returncode == 0 and "OK" in result.stdout, result.stderr


@pytest.mark.skipif(os.environ.get("METARL_BENCH_SKIP_INSTALL_TEST") == "1", reason="asked to skip the wheel install")
def test_a_normal_install_into_a_fresh_virtual_environment(tmp_path):
    """A wheel install (not editable): metarl_bench/, metarl_bench/envs/, metarl_bench/baselines/ and
    the shipped checkpoints land in site-packages; no top-level envs/ or baselines/ does."""
    source = tmp_path / "src"  # build from a copy: pip leaves build/ folders in the tree it builds
    skip = shutil.ignore_patterns(".git", "build", "*.egg-info", "__pycache__", ".*_cache", ".venv", "site")

    def ignore(folder: str, names: list[str]) -> set[str]:  # the results folder at the top only
        return set(skip(folder, names)) | ({"results"} if Path(folder) == ROOT else set())

    shutil.copytree(ROOT, source, ignore=ignore)
    target = tmp_path / "venv"
    venv.create(target, system_site_packages=True, with_pip=False)  # the dependencies come from this env
    python = str(target / "bin" / "python")
    # Build isolation: the build gets what pyproject.toml's [build-system] declares, from the
    # package index, never whatever this interpreter happens to have installed.
    install = subprocess.run(
        [sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-deps", str(source)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    if install.returncode != 0 and "no such option: --python" in install.stderr:
        pytest.skip("pip too old for --python")
    assert install.returncode == 0, install.stderr
    site = Path(
        subprocess.check_output([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True)
        .strip()
    )
    assert (site / "metarl_bench" / "envs" / "bandits" / "family.py").exists()
    assert (site / "metarl_bench" / "core" / "trial.py").exists()
    assert (site / "metarl_bench" / "baselines" / "classical.py").exists()
    assert list((site / "metarl_bench" / "baselines" / "checkpoints" / "rl2").glob("*.zip"))
    assert not (site / "envs").exists() and not (site / "baselines").exists()
    where = subprocess.check_output(
        [python, "-c", "import metarl_bench; print(metarl_bench.__file__)"], cwd=tmp_path, text=True
    )
    assert where.startswith(str(site)), where
    project = decoy_folder(tmp_path / "project")
    assert_builtins_listed(listing(python, project))
    # The shipped checkpoints load from the installed package, in any working folder.
    load = (
        "import metarl_bench\n"
        "for name in ('rl2', 'vsml'):\n"
        "    family = metarl_bench.make_family('bernoulli-k2-h100')\n"
        "    agent = metarl_bench.make_agent(name, family)\n"
        "    print(name, agent.prepare(train_family=family, train_env='bernoulli-k2-h100')['checkpoint'])\n"
    )
    result = subprocess.run([python, "-c", load], cwd=project, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "rl2 bernoulli-k2-h100.zip" in result.stdout and "vsml bernoulli-k2-h100.zip" in result.stdout
