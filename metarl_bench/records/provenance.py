"""Where a result came from: command, package version, git commit, device, time."""

from __future__ import annotations

import datetime as dt
import platform
import shlex
import subprocess
import sys
from pathlib import Path

from metarl_bench.core.version import __version__


def git_commit() -> str:
    """The commit of the source tree, with ``-dirty`` if it has uncommitted changes (outside results/)."""
    root = Path(__file__).resolve().parents[2]
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(
            # results/ holds outputs, not sources: appending a row must not mark the code dirty
            ["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)results"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if sha.returncode != 0:
        return "unknown"
    return sha.stdout.strip()[:12] + ("-dirty" if dirty.stdout.strip() else "")


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``; the platform's word for it elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_device(threads: int | None = None) -> str:
    """A short description of the CPU the numbers were measured on."""
    return f"cpu:{cpu_name()}" + (f" ({threads} threads)" if threads else "")


def command_line() -> str:
    return shlex.join(
        [
            Path(sys.executable).name,
            *(["-m", "metarl_bench.run"] if sys.argv[0].endswith("run.py") else [sys.argv[0]]),
            *sys.argv[1:],
        ]
    )


def timestamp() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def provenance(threads: int | None = None, device: str | None = None) -> dict[str, str]:
    return {
        "version": __version__,
        "commit": git_commit(),
        "device": device or cpu_device(),
        "threads": threads,
        "command": command_line(),
        "timestamp": timestamp(),
    }
