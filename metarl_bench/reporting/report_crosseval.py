"""The report page's cross-evaluation section: a matrix (agent and training distribution by
test distribution) as a sortable table whose cells are shaded by score, then every cell with
its CI bar in a details block.  A table, not the heat-map PNG: one panel per agent side by side
is thousands of pixels wide, and squeezed to the page its numbers cannot be read."""

from __future__ import annotations

import pandas as pd

from metarl_bench.reporting.report_html import Domain, bar, barcell, cell, esc, fmt, legend, num, table, with_ci

SHADE = (0x00, 0x72, 0xB2)  # Okabe-Ito blue, mixed with white by score
SHADE_MAX = 0.6  # at most this much blue: black text stays readable on the darkest cell
MARKS = {"not-applicable": "n/a", "missing": "missing"}


def shade(score: float) -> str:
    """A background from white (score 0 or less) to light blue (100 or more)."""
    t = SHADE_MAX * min(max(score, 0.0), 100.0) / 100.0
    return "#" + "".join(f"{round(255 + (c - 255) * t):02x}" for c in SHADE)


def matrix_cell(r: pd.Series) -> str:
    if r["status"] != "ok":
        tip = "the agent cannot act there" if r["status"] == "not-applicable" else "no leaderboard row yet"
        return f'<td data-v="" class="muted" title="{esc(tip)}">{esc(MARKS.get(r["status"], r["status"]))}</td>'
    score = num(r["score"])
    half = (num(r["score_ci_high"]) - num(r["score_ci_low"])) / 2
    tip = f"score {with_ci(score, r['score_ci_low'], r['score_ci_high'])} (95% CI over held-out tasks)"
    text = f"{fmt(score)} ± {fmt(half)}" if half == half else fmt(score)  # half is NaN without a CI
    return (f'<td data-v="{score:.6g}" class="num" style="background:{shade(score)}" title="{esc(tip)}">'
            f"{esc(text)}</td>")  # fmt: skip


def matrix(cells: pd.DataFrame) -> str:
    """One row per (agent, training distribution), one column per test distribution."""
    envs = list(dict.fromkeys(cells["env"]))
    by_key = cells.set_index(["agent", "train_env", "env"])
    lines = []
    for agent, train_env in dict.fromkeys(zip(cells["agent"], cells["train_env"], strict=True)):
        tds = [matrix_cell(by_key.loc[(agent, train_env, env)]) if (agent, train_env, env) in by_key.index
               else '<td data-v=""></td>' for env in envs]  # fmt: skip
        lines.append("<tr>" + cell(agent) + cell(train_env, cls="name") + "".join(tds) + "</tr>")
    heads = [("agent", ""), ("trained on", "meta-training distribution")]
    heads += [(env, f"evaluated on {env}: score ± half its 95% CI") for env in envs]
    caption = f"{len(lines)} rows (agent × training distribution) × {len(envs)} test distributions"
    return table("crosseval-matrix", heads, lines, caption, breakable=True)


def cell_list(cells: pd.DataFrame) -> str:
    """Every cell as a row, its score drawn with its CI."""
    domain = Domain.of([*cells["score_ci_low"], *cells["score_ci_high"]])
    lines = []
    for _, r in cells.iterrows():
        text = with_ci(r["score"], r["score_ci_low"], r["score_ci_high"]) if r["status"] == "ok" else ""
        svg = bar(domain, r["score"], r["score_ci_low"], r["score_ci_high"]) if text else ""
        lines.append("<tr>" + cell(r["agent"]) + cell(r["train_env"], cls="name") + cell(r["env"], cls="name")
                     + cell(r["status"]) + cell(barcell(svg, text) if text else "", r["score"], raw=True)
                     + "</tr>")  # fmt: skip
    heads = [("agent", ""), ("trained on", "meta-training distribution"), ("evaluated on", "test distribution"),
             ("status", "ok; not-applicable (cannot act there); missing (no row yet)"),
             ("score [95% CI]", "newest row of agent × trained on × evaluated on")]  # fmt: skip
    return legend(domain) + table("crosseval-cells", heads, lines, f"{len(lines)} cells")


def crosseval_section(cells: pd.DataFrame | None) -> str:
    if cells is None:
        return ""
    return "\n".join([
        '<section id="crosseval"><h2>Cross-evaluation</h2>',
        '<p class="muted">Score (0 random play, 100 Bayes-optimal) of each learning agent meta-trained on one '
        "distribution (rows) and evaluated on another (columns), ± half its 95% CI over held-out tasks; shaded "
        "by score, white at 0 to blue at 100; n/a: the agent cannot act there. From the leaderboard's rows "
        "(<code>python -m metarl_bench.crosseval</code>); click a column head to sort.</p>",
        matrix(cells),
        f"<details><summary>Every cell with its CI ({len(cells)})</summary>",
        cell_list(cells),
        "</details>",
        "</section>",
    ])  # fmt: skip
