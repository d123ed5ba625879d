"""The HTML report: built from a small results folder, byte-identical when regenerated,
bad input refused, and (where a Chromium is installed) rendered and sorted in a real
headless browser without console errors."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from metarl_bench.probes.rows import PROBE_COLUMNS, PROBE_FILE
from metarl_bench.reporting import aggregate, aggregate_sets, leaderboard, report
from metarl_bench.reporting.aggregate_files import (
    AGGREGATE_COLUMNS,
    AGGREGATE_SCHEMA,
    PROFILE_COLUMNS,
    PROFILE_SCHEMA,
    atomic_csv,
)
from metarl_bench.reporting.leaderboard import COLUMNS, SCHEMA
from metarl_bench.reporting.task_scores import TaskScores
from metarl_bench.running import tables

ENVS = ["bernoulli-k2-h100", "bernoulli-dependent-k2-h100"]
# the longest names of the shipped page (an agent, a bound's policy, a training distribution), so the
# fixture's tables are as wide as the real ones: a layout that fits only short names is caught here
SCORES = {"thompson": 93.0, "ucb1": 74.0, "epsilon-greedy-tuned": 89.0, "bayes": 100.0, "oracle": 111.0,
          "random": 0.5}  # fmt: skip
RL2_SEEDS = {0: 94.1, 1: 91.0, 2: 95.5}
# rows of the bandits leaderboard table: 5 agents + 3 rl2 training seeds, on each distribution
LEADERBOARD_ROWS = (len(SCORES) + len(RL2_SEEDS)) * len(ENVS)


def board_row(agent: str, env: str, score: float, i: int, train_seed: object = "", method: str = "exact") -> dict:
    row = {c: "" for c in COLUMNS}
    row.update({c: 1.0 for c in SCHEMA.numeric}, run_config="{}")
    row.update(agent=agent, env=env, score=score, score_ci_low=score - 1.5, score_ci_high=score + 1.2,
               n_tasks=1000, seeds="0;1;2", bayes_method=method, env_spec="{}", version="0.1.0", commit="abc123",
               command=f"python -m metarl_bench.run --agent {agent}", device="cpu", threads=1,
               timestamp=f"2026-11-27T00:{i // 60:02d}:{i % 60:02d}+00:00", run_id=f"run{i:03d}",
               train_env=env if train_seed != "" else "", train_seed=train_seed, adapt_steps=12.0,
               bayes_adapt_steps=9.0, score_note="")  # fmt: skip
    return row


def write_curves(folder: Path, env: str, agent: str) -> None:
    steps = np.arange(1, 101)
    level = 0.5 + 0.15 * SCORES.get(agent, 90.0) / 111.0
    pd.DataFrame({"step": steps, "agent_reward": level - 0.1 / steps, "bayes_reward": 0.64 - 0.1 / steps,
                  "random_reward": 0.5, "oracle_reward": 0.667}).to_csv(folder / f"{env}__{agent}.csv",
                                                                         index=False)  # fmt: skip


def small_png(path: Path) -> None:
    """A figure the size of a probe plot (640 × 300 px)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.0), dpi=100)
    ax.plot([0, 1], [0, 1])
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    """A results folder with every kind of file the report reads."""
    folder = tmp_path_factory.mktemp("results")
    rows, i = [], 0
    for env in ENVS:
        for agent, score in SCORES.items():
            rows.append(board_row(agent, env, score, i, method="exact" if env == ENVS[0] else "lower-bound:bayes-ucb"))
            i += 1
        for seed, score in RL2_SEEDS.items():
            rows.append(board_row("rl2", env, score, i, train_seed=seed))
            i += 1
    leaderboard.append_rows(folder / "leaderboard.csv", rows)
    (folder / "curves").mkdir()
    for env in ENVS:
        for agent in [*SCORES, "rl2"]:
            write_curves(folder / "curves", env, agent)
    # aggregates from synthetic per-task scores (the statistics are aggregate's own)
    current = aggregate_sets.current_rows(leaderboard.read(folder / "leaderboard.csv"))

    class Store:
        def get(self, row, log=print):
            s = np.random.default_rng(int(row["run_id"][3:])).normal(float(row["score"]), 20.0, 200)
            return TaskScores("ok", "", s, np.zeros(200), np.full(200, 100.0))

    recs, profiles = [], []
    for name, envs in (("bandits", aggregate.parse_sets("bandits")[0][1]), ("+".join(ENVS), ENVS)):
        r, p = aggregate.aggregate_set(name, envs, current, Store(), command="test", log=lambda _: None)
        recs, profiles = recs + r, profiles + p
    atomic_csv(pd.DataFrame(recs, columns=AGGREGATE_COLUMNS), folder / "aggregates.csv", "%.6g",
               AGGREGATE_SCHEMA.numeric)  # fmt: skip
    atomic_csv(pd.DataFrame(profiles, columns=PROFILE_COLUMNS), folder / "profiles.csv", "%.6g",
               PROFILE_SCHEMA.numeric)  # fmt: skip
    cells = pd.DataFrame([
        {"agent": "rl2", "train_env": ENVS[0], "env": ENVS[0], "status": "ok", "score": 94.1, "score_ci_low": 92.6,
         "score_ci_high": 95.6},
        {"agent": "rl2", "train_env": ENVS[0], "env": ENVS[1], "status": "ok", "score": 96.5, "score_ci_low": 95.7,
         "score_ci_high": 97.2},
        {"agent": "rl2", "train_env": ENVS[0], "env": "bernoulli-k5-h100", "status": "not-applicable"},
    ])  # fmt: skip
    cells.to_csv(folder / "crosseval.csv", index=False)
    probe = {c: 0.5 for c in PROBE_COLUMNS}
    probe.update(agent="rl2", env=ENVS[0], target_kind="continuous", bayes_method="exact", control="untrained",
                 seeds="0", env_spec="{}", agent_config="{}", device="cpu", version="0", commit="abc",
                 command="python -m metarl_bench.probe", timestamp="2026-11-30T19:50:29+00:00", run_id="p1",
                 train_env=ENVS[0], checkpoint="x.zip")  # fmt: skip
    pd.DataFrame([probe | {"target": t} for t in ("alpha", "beta", "all")], columns=PROBE_COLUMNS).to_csv(
        folder / PROBE_FILE, index=False)  # fmt: skip
    (folder / "probes").mkdir()
    small_png(folder / "probes" / f"{ENVS[0]}__rl2.png")
    return folder


@pytest.fixture(scope="module")
def page(results, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report")
    return report.build(results, out)


def files_of(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_page_is_byte_identical_when_regenerated(results, page, tmp_path):
    first = files_of(page.parent)
    assert tables.report_main(["--results", str(results), "--out", str(tmp_path / "again")]) == 0
    assert files_of(tmp_path / "again") == first  # another folder: no absolute path, no time in the page
    report.build(results, page.parent)  # and in place
    assert files_of(page.parent) == first


def test_page_shows_every_part_and_loads_nothing_from_the_network(page):
    text = page.read_text()
    for needle in ("leaderboard-bandits", "aggregates-bandits", f"aggregates-{'+'.join(ENVS)}", "crosseval-cells",
                   'id="probes"', "bound: bayes-ucb", "exact", "range over training seeds",
                   "95% CI over held-out tasks", "91.0–95.5 (seeds 0–2)", "across training seeds",
                   "incomplete", "python -m metarl_bench.run --agent thompson"):  # fmt: skip
        assert needle in text, needle
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text)  # no CDN, no remote anything
    assert "<script src" not in text and "<link" not in text
    for src in re.findall(r'<img src="([^"]+)"', text):
        assert (page.parent / src).is_file(), src


@pytest.mark.parametrize("case", ["no-folder", "no-leaderboard", "damaged-leaderboard", "damaged-aggregates",
                                  "out-is-a-file"])  # fmt: skip
def test_bad_input_is_one_line_and_exit_2(case, results, tmp_path, capsys):
    folder = tmp_path / "res"
    shutil.copytree(results, folder)
    out = tmp_path / "out"
    if case == "no-folder":
        folder = tmp_path / "absent"
    elif case == "no-leaderboard":
        (folder / "leaderboard.csv").unlink()
    elif case == "damaged-leaderboard":
        with open(folder / "leaderboard.csv", "a") as f:
            f.write("a,b,c\n")
    elif case == "damaged-aggregates":
        with open(folder / "aggregates.csv", "a") as f:
            f.write("bandits,x\n")
    else:
        out.write_text("a file")
    assert tables.report_main(["--results", str(folder), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("python -m metarl_bench.report: error:")


def test_run_refreshes_the_report_with_a_flag(tmp_path, capsys):
    from metarl_bench.running import run

    args = ["--agent", "thompson", "--env", "bernoulli-k2-h100", "--eval-tasks", "10", "--seeds", "0",
            "--results", str(tmp_path), "--report"]  # fmt: skip
    assert run.main(args) == 0
    assert "thompson" in (tmp_path / "report" / "index.html").read_text()
    assert run.main([*args, "--no-save"]) == 2
    assert "--no-save" in capsys.readouterr().err


def test_probe_report_flag_needs_saved_rows(capsys):
    from metarl_bench.running import probe

    assert probe.main(["--agent", "bayes", "--env", "bernoulli-k2-h100", "--no-save", "--report"]) == 2
    assert "--no-save" in capsys.readouterr().err


# ---------------------------------------------------------------------------- a real browser
def chromium() -> str | None:
    for name in (os.environ.get("METARL_CHROMIUM", ""), "chromium", "chromium-browser", "google-chrome"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


@contextlib.contextmanager
def opened(page: Path, problems: list[str]):
    """The page in headless Chromium at 1366 px wide (a laptop screen); console errors into ``problems``."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e .[dev])")
    exe = chromium()
    if exe is None:
        pytest.skip("no Chromium on PATH (apt-get install chromium, or set METARL_CHROMIUM); .ci/run installs it")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=exe, args=["--no-sandbox"])  # root in CI containers
        tab = browser.new_page(viewport={"width": 1366, "height": 800})
        tab.on("console", lambda m: problems.append(f"{m.type}: {m.text}") if m.type in ("error", "warning") else None)
        tab.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        tab.on("requestfailed", lambda r: problems.append(f"failed request: {r.url}"))
        tab.goto(page.as_uri())
        tab.wait_for_load_state("load")
        yield tab
        browser.close()


# Everything that would make a reader scroll sideways or squint, by name.  Not only the document:
# a table inside its own scroller (.scroll) never widens the page, it clips its last columns.
LAYOUT_PROBLEMS = """() => {
  const out = [], vw = document.documentElement.clientWidth;
  const name = el => (el.id || (el.closest('[id]') || {}).id || '') + ' ' + el.tagName.toLowerCase();
  if (document.documentElement.scrollWidth > vw) out.push(`page: ${document.documentElement.scrollWidth} > ${vw}`);
  for (const el of document.querySelectorAll('main section, .scroll, table, .figs, figure, td dl')) {
    const box = el.getBoundingClientRect();
    if (el.closest('details:not([open])') || box.width === 0) continue;  // not shown
    if (el.scrollWidth > el.clientWidth + 1)
      out.push(`${name(el)} scrolls sideways: ${el.scrollWidth} > ${el.clientWidth}`);
    if (box.right > vw + 0.5) out.push(`${name(el)} ends at ${Math.round(box.right)} px, past ${vw}`);
  }
  for (const img of document.images) {  // a figure shown at under 60% of its size cannot be read
    if (img.naturalWidth && img.clientWidth < 0.6 * img.naturalWidth)
      out.push(`${img.getAttribute('src')} squeezed to ${img.clientWidth} of ${img.naturalWidth} px`);
  }
  return out;
}"""


def layout_problems(tab) -> list[str]:
    """LAYOUT_PROBLEMS as the page is, and again with a provenance block (and every block outside
    a table) open."""
    found = tab.evaluate(LAYOUT_PROBLEMS)
    opened = "document.querySelectorAll('details:not(td details)').forEach(d => { d.open = !d.open; })"
    tab.evaluate(opened)
    tab.locator("td details summary").first.click()
    found += [f"with details blocks open: {p}" for p in tab.evaluate(LAYOUT_PROBLEMS)]
    tab.locator("td details summary").first.click()
    tab.evaluate(opened)
    return found


def test_page_in_headless_chromium(page, tmp_path):
    problems: list[str] = []
    with opened(page, problems) as tab:

        def rows(table_id: str) -> int:
            return tab.locator(f'[id="{table_id}"] tbody tr').count()

        assert rows("leaderboard-bandits") == LEADERBOARD_ROWS
        n_agents = len(SCORES) + len(RL2_SEEDS)  # the agents of SCORES, rl2 seeds 0,1,2
        assert rows("aggregates-bandits") == n_agents  # all incomplete: the fixture covers 2 of 5 distributions
        assert rows(f"aggregates-{'+'.join(ENVS)}") == n_agents + 1  # + rl2 across training seeds
        assert rows("crosseval-matrix") == 1 and rows("crosseval-cells") == 3 and rows("probes") == 3
        assert tab.evaluate("Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)")
        assert layout_problems(tab) == []  # every table and figure reads without sideways scrolling on a laptop
        assert tab.evaluate("getComputedStyle(document.querySelector('th')).cursor") == "pointer"  # the CSS applies

        def column(table_id: str, col: int) -> list[str]:
            return tab.evaluate(
                f"""Array.from(document.querySelectorAll('[id="{table_id}"] tbody tr')).map(
                    r => r.cells[{col}].dataset.v ?? r.cells[{col}].textContent.trim())"""
            )

        # a training-seed cell is one line: the range and a compact seed list, not four wrapped lines
        lines = tab.evaluate("""Array.from(document.querySelectorAll('[id="leaderboard-bandits"] tbody tr')).map(r => {
            const range = document.createRange(); range.selectNodeContents(r.cells[4]);
            return new Set(Array.from(range.getClientRects()).map(b => Math.round(b.top))).size; })""")
        assert max(lines) == 1 and lines.count(1) == len(RL2_SEEDS) * len(ENVS)

        score_head = tab.locator('[id="leaderboard-bandits"] thead th', has_text="score")
        score_head.click()
        values = [float(v) for v in column("leaderboard-bandits", 3)]
        assert values == sorted(values)
        score_head.click()
        values = [float(v) for v in column("leaderboard-bandits", 3)]
        assert values == sorted(values, reverse=True)
        assert score_head.get_attribute("aria-sort") == "descending"
        tab.locator('[id="leaderboard-bandits"] thead th', has_text="agent").first.press("Enter")
        agents = column("leaderboard-bandits", 0)
        assert agents == sorted(agents, key=str.lower)
        shot = Path(os.environ.get("METARL_REPORT_SCREENSHOT", tmp_path / "report.png"))
        tab.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    assert problems == []


SHIPPED = Path(__file__).resolve().parent.parent / "results" / "report" / "index.html"


@pytest.mark.skipif(not SHIPPED.is_file(), reason="no shipped report page (python -m metarl_bench.report)")
def test_the_shipped_page_reads_at_1366_px(tmp_path):
    # the fixture has the longest names of today's results; the shipped page has all of them
    problems: list[str] = []
    with opened(SHIPPED, problems) as tab:
        assert layout_problems(tab) == []
    assert problems == []


def test_curve_legends_list_each_thing_once_and_references_apart(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from metarl_bench.reporting import plots

    for agent in ("bayes", "oracle", "random", "thompson", "ucb1"):
        write_curves(tmp_path, ENVS[0], agent)
    fig, ax = plt.subplots()
    files = sorted(tmp_path.glob(f"{ENVS[0]}__*.csv"))
    plots._draw(ax, files, "step", "reward", smooth=True, universe=["thompson", "ucb1"])
    labels = ax.get_legend_handles_labels()[1]
    assert labels == ["thompson", "ucb1", "Bayes-optimal (reference)", "oracle: knows the task (reference)",
                      "random play (reference)"]  # fmt: skip
    lines = {line.get_label(): line for line in ax.get_lines()}
    agent_colours = {matplotlib.colors.to_hex(lines[a].get_color()) for a in ("thompson", "ucb1")}
    assert len(agent_colours) == 2 and not agent_colours & {"#000000", "#7f7f7f"}
    for label in labels[2:]:  # references: black or grey, never solid
        assert matplotlib.colors.to_hex(lines[label].get_color()) in {"#000000", "#7f7f7f"}
        assert lines[label].get_linestyle() != "-"
    plt.close(fig)
    assert plots.plot_env(ENVS[0], tmp_path) == tmp_path / f"{ENVS[0]}.png"


def test_rows_newer_than_the_aggregates_are_flagged(results, tmp_path):
    folder = tmp_path / "res"
    shutil.copytree(results, folder)
    leaderboard.append_rows(folder / "leaderboard.csv", [
        board_row("rl2", ENVS[0], 90.0, 900, train_seed=3),  # a contestant the aggregates have not seen
        board_row("thompson", ENVS[0], 92.0, 901),  # a newer row of one they used
    ])  # fmt: skip
    text = report.build(folder, tmp_path / "out").read_text()
    assert "Not aggregated yet: rl2 (training seed 3)" in text
    assert ">stale</span>" in text
    assert ">stale</span>" not in report.build(results, tmp_path / "out2").read_text()


def row_html(text: str, table_id: str, first_cell: str) -> str:
    """The ``<tr>`` of table ``table_id`` whose first cell sorts as ``first_cell``."""
    body = text.split(f'id="{table_id}"', 1)[1].split("</table>", 1)[0]
    return next(r for r in body.split("<tr") if r.startswith(f' class="agent"><td data-v="{first_cell}"'))


def test_ci_bars_are_drawn_on_the_contestants_axis_not_the_oracles(page):
    text = page.read_text()
    thompson = row_html(text, "leaderboard-bandits", "thompson")  # CI [91.5, 94.2]: 2.7 score points
    width = float(re.search(r'<rect [^>]*width="([\d.]+)"', thompson).group(1))
    assert width > 8  # on an axis from -10 to the oracle's 112 it was a 3 px tick
    low, high = map(float, re.search(r"axis (-?[\d.]+) to (-?[\d.]+)", text).groups())
    assert 60 < low < 74 and 96 < high < 100  # the contestants' range (ucb1's 72.5 to rl2's 96.7), padded
    oracle = text.split('id="leaderboard-bandits"', 1)[1].split('<td data-v="oracle"', 1)[1].split("</tr>")[0]
    assert "beyond the axis" in oracle and "<polygon" in oracle  # a reference off the axis: an arrow at its edge


def test_crosseval_is_a_sortable_matrix_not_a_squeezed_image(page):
    text = page.read_text()
    assert "crosseval.png" not in text and not (page.parent / "img" / "crosseval.png").exists()
    matrix = text.split('id="crosseval-matrix"', 1)[1].split("</table>", 1)[0]
    heads = re.findall(r"<th [^>]*>(.*?)</th>", matrix)
    assert heads == ["agent", "trained on", *(e.replace("-", "-<wbr>") for e in [*ENVS, "bernoulli-k5-h100"])]
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", matrix.split("<tbody>", 1)[1])
    assert cells == ["rl2", ENVS[0], "94.1 ± 1.5", "96.5 ± 0.8", "n/a"]
    assert 'class="sortable" id="crosseval-matrix"' in text


def test_the_page_is_no_line_for_line_copy_of_its_source(page):
    """The inline CSS and JS are minified and the prose unwrapped (``duplicates`` found the
    style sheet and "How to read" verbatim in the page)."""
    from metarl_bench.reporting import report_assets, report_minify, report_sections

    text = page.read_text()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    page_pairs = set(zip(lines, lines[1:], strict=False))
    for source in (report_assets.CSS, report_assets.JS, report_sections.READING, report.FOOTER):
        mine = [line.strip() for line in source.splitlines() if line.strip()]
        copied = [pair for pair in zip(mine, mine[1:], strict=False) if pair in page_pairs]  # two source lines in a row
        assert copied == [], copied[:3]
    assert f"<style>{report_minify.css(report_assets.CSS)}</style>" in text
    assert f"<script>{report_minify.js(report_assets.JS)}</script>" in text
    assert "policy of the distribution. The Bayes reference is <b>exact</b> where an exact planner exists," in text
