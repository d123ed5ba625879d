"""The report page: a static, self-contained HTML view of a results folder.

    python -m metarl_bench.report [--results results] [--out results/report]

writes ``<out>/index.html`` and its figures under ``<out>/img/`` (beside the page; the style
and the sorting script are inline: no server, nothing loaded from the network).  Per suite:
the leaderboard (newest row per agent, training distribution, training seed and
distribution; score with its CI drawn as a bar, and the spread across training seeds where
there are several), the suite aggregates and their performance profile
(``results/aggregates.csv``, ``results/profiles.csv``: ``python -m metarl_bench.leaderboard
--aggregate``), the adaptation curves; then the cross-evaluation matrix (a sortable table, not
the heat-map PNG) and the belief probes.  Every row's provenance sits in a details block.

The page is a function of the CSVs (and the probe figures, copied): the same files give the
same bytes.  It carries no generation time, only the times recorded in the rows; the
figures it draws itself (curves, profiles) come from the CSVs.  ``run --report`` and
``probe --report`` regenerate it after appending their rows.

The page is assembled here from its parts: ``report_inputs`` (what it reads and validates),
``report_html`` (cells, tables, bars), ``report_figures`` (the figures under ``img/``),
``report_sections`` (the suites, the probes and how to read the page), ``report_crosseval`` (the
cross-evaluation matrix), ``report_assets`` (the inline style sheet and sorting script) and
``report_minify`` (those and the prose as the page carries them: minified, unwrapped).
"""

from __future__ import annotations

import sys
from pathlib import Path

from metarl_bench.core.registry import reference_agents
from metarl_bench.records.csvfile import CSVSchemaError
from metarl_bench.reporting import report_minify
from metarl_bench.reporting.aggregate_files import filled
from metarl_bench.reporting.report_assets import CSS, JS
from metarl_bench.reporting.report_belief import belief_simulation_section
from metarl_bench.reporting.report_crosseval import crosseval_section
from metarl_bench.reporting.report_figures import Writer
from metarl_bench.reporting.report_html import esc
from metarl_bench.reporting.report_inputs import ReportError, load, suites_of
from metarl_bench.reporting.report_sections import READING, probes_section, suite_section

PROG = "python -m metarl_bench.report"
REPORT_DIR = "report"
PAGE = "index.html"
FOOTER = """<p>Static page: no server, nothing loaded from the network; figures in <code>img/</code> beside it.
Regenerate with <code>python -m metarl_bench.report --results results --out results/report</code>; aggregates with
<code>python -m metarl_bench.leaderboard --aggregate</code>.</p>"""


def build(results: Path, out: Path) -> Path:
    """Write ``<out>/index.html`` and its figures from the results folder; returns the page."""
    if out.exists() and not out.is_dir():
        raise ReportError(f"--out {str(out)!r} is a file, not a folder")
    inputs = load(results)
    out.mkdir(parents=True, exist_ok=True)
    writer = Writer(inputs, out)
    rows = inputs.rows
    refs = reference_agents(rows["agent"].unique())
    suites = suites_of(rows)
    sections = [suite_section(s, envs, inputs, writer, refs) for s, envs in suites]
    sections += [crosseval_section(inputs.crosseval), probes_section(inputs, writer),
                 belief_simulation_section(inputs.simulation), report_minify.prose(READING)]  # fmt: skip
    nav = [(f"suite-{s}", s) for s, _ in suites]
    nav += [("crosseval", "cross-evaluation")] if inputs.crosseval is not None else []
    nav += [("probes", "belief probes")] if inputs.probes is not None and not inputs.probes.empty else []
    has_simulation = inputs.simulation is not None and not inputs.simulation.empty
    nav += [("belief-simulation", "belief or history?")] if has_simulation else []
    nav += [("reading", "how to read")]
    newest = str(rows["timestamp"].max()) if len(rows) else ""
    commits = sorted({str(c) for c in rows["commit"] if filled(c)})
    summary = report_minify.prose(f"""<p class="muted">From <code>leaderboard.csv</code>: {inputs.n_rows} rows,
{len(rows)} current (newest per agent, training distribution, training seed and distribution); newest row
{esc(newest)} (UTC); code commits {esc(", ".join(commits[:6]) + (" …" if len(commits) > 6 else ""))}.</p>""")
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>metarl-bench report</title>
<style>{report_minify.css(CSS)}</style></head>
<body>
<header><h1>metarl-bench report</h1>
{summary}
<nav><ul>{"".join(f'<li><a href="#{esc(a)}">{esc(t)}</a></li>' for a, t in nav)}</ul></nav></header>
<main>
{chr(10).join(s for s in sections if s)}
</main>
<footer>{report_minify.prose(FOOTER)}</footer>
<script>{report_minify.js(JS)}</script>
</body></html>
"""
    path = out / PAGE
    tmp = out / f".{PAGE}.tmp"
    tmp.write_text(page, encoding="utf-8", newline="\n")
    tmp.replace(path)
    writer.prune()
    return path


def refresh(results: Path, prog: str) -> bool:
    """``run --report`` / ``probe --report``: regenerate ``<results>/report``; one line either way."""
    try:
        path = build(results, results / REPORT_DIR)
    except (ReportError, CSVSchemaError, OSError) as exc:
        print(f"{prog}: error: report not refreshed: {exc}", file=sys.stderr)
        return False
    print(f"wrote the report {path}")
    return True
