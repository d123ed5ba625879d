"""The report page's figures under ``<out>/img/``: the curves and performance profiles it
draws from the CSVs, and the figures it copies (cross-evaluation, probes)."""

from __future__ import annotations

import shutil
from pathlib import Path

from metarl_bench.core.registry import reference_kind
from metarl_bench.reporting import plots
from metarl_bench.reporting.aggregate_plot import plot_profiles, profile_png
from metarl_bench.reporting.report_inputs import Inputs

IMG = "img"


class Writer:
    """Writes the page's figures under ``<out>/img`` once each, and remembers them."""

    def __init__(self, inputs: Inputs, out: Path):
        self.inputs, self.out = inputs, out
        self.written: dict[str, str | None] = {}
        self.sets_shown: set[str] = set()  # sets of distributions that are not suites: shown once
        # one colour per agent across every figure of the page
        self.universe = sorted(a for a in inputs.rows["agent"].unique() if reference_kind(a) is None)

    def _rel(self, path: Path) -> str:
        return path.relative_to(self.out).as_posix()

    def curves(self, env: str) -> list[str]:
        key = f"curves/{env}"
        if key not in self.written:
            folder = self.inputs.results / "curves"
            main = plots.plot_env(env, folder, self.out / IMG / "curves", self.universe) if folder.is_dir() else None
            self.written[key] = self._rel(main) if main else None
            episodes = self.out / IMG / "curves" / f"{env}__episodes.png"
            self.written[key + "__episodes"] = self._rel(episodes) if main and episodes.exists() else None
        return [p for p in (self.written[key], self.written[key + "__episodes"]) if p]

    def profile(self, name: str) -> str | None:
        key = f"profiles/{name}"
        if key not in self.written:
            path = plot_profiles(self.inputs.profiles, name, self.out / IMG / "profiles" / profile_png(name),
                                 self.universe)  # fmt: skip
            self.written[key] = self._rel(path) if path else None
        return self.written[key]

    def copy(self, src: Path, rel: str) -> str | None:
        if not src.is_file():
            return None
        dst = self.out / IMG / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
        self.written[rel] = self._rel(dst)
        return self.written[rel]

    def prune(self) -> None:
        """Remove figures of earlier generations that this page no longer shows."""
        keep = {p for p in self.written.values() if p}
        for path in sorted((self.out / IMG).rglob("*"), reverse=True):
            if path.is_file() and self._rel(path) not in keep:
                path.unlink()
            elif path.is_dir() and not any(path.iterdir()):
                path.rmdir()
