"""The small pieces of the report page's HTML: escaped text and numbers, sortable tables and
their cells, provenance blocks, figures, and the inline SVG bars that draw a score with its
evaluation interval and its range over training seeds."""

from __future__ import annotations

import html
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from metarl_bench.reporting.aggregate_files import filled
from metarl_bench.reporting.report_assets import EVAL_COLOUR, POINT_COLOUR, SEED_COLOUR

BAR_W, BAR_H = 140, 18  # the widest bar whose leaderboard still fits a 1366 px screen
BAR_CLIP = (-25.0, 135.0)  # scores outside are drawn at the edge, with an arrow: k=50 oracles score ~300
MIN_SPAN = 10.0  # score points: near-equal contestants get a readable axis, not a magnified speck


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def num(value: Any) -> float:
    """A float, NaN for empty or text."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return math.nan
    return v


def fmt(value: Any, digits: int = 1) -> str:
    v = num(value)
    return "" if math.isnan(v) else f"{v:.{digits}f}"


def with_ci(value: Any, low: Any, high: Any, digits: int = 1) -> str:
    if math.isnan(num(value)):
        return ""
    if math.isnan(num(low)):
        return fmt(value, digits)
    return f"{fmt(value, digits)} [{fmt(low, digits)}, {fmt(high, digits)}]"


def sort_value(value: Any) -> str:
    """What the sorting script compares: text as it is, numbers in full, empty for missing."""
    if isinstance(value, str):
        return value
    v = num(value)
    return "" if math.isnan(v) else f"{v:.6g}"


def cell(text: str, sort: Any = None, cls: str = "", raw: bool = False, title: str = "") -> str:
    """One ``<td>``; ``sort`` goes to data-v (what the sorting script compares)."""
    attrs = "" if sort is None else f' data-v="{esc(sort_value(sort))}"'
    attrs += f' class="{cls}"' if cls else ""
    attrs += f' title="{esc(title)}"' if title else ""
    return f"<td{attrs}>{text if raw else esc(text)}</td>"


def table(table_id: str, heads: list[tuple[str, str]], rows: list[str], caption: str = "",
          breakable: bool = False) -> str:  # fmt: skip
    """A sortable table: ``heads`` are (label, tooltip); ``breakable`` heads may wrap after a hyphen
    (distribution names as column heads: a column as narrow as its numbers)."""
    def label_html(label: str) -> str:
        return esc(label).replace("-", "-<wbr>") if breakable else esc(label)

    th = "".join(f'<th scope="col" title="{esc(tip)}">{label_html(label)}</th>' for label, tip in heads)
    cap = f'<caption class="muted">{esc(caption)}</caption>' if caption else ""
    body = "\n".join(rows)
    return (f'<div class="scroll"><table class="sortable" id="{esc(table_id)}">{cap}<thead><tr>{th}</tr></thead>'
            f"<tbody>\n{body}\n</tbody></table></div>")  # fmt: skip


def details(summary: str, items: Iterable[tuple[str, Any]]) -> str:
    """A provenance block: only the items that have a value."""
    dl = "".join(f"<dt>{esc(k)}</dt><dd><code>{esc(v)}</code></dd>" for k, v in items if filled(v))
    return f"<details><summary>{esc(summary)}</summary><dl>{dl}</dl></details>"


@dataclass(frozen=True)
class Domain:
    """The score axis of one table's bars."""

    low: float
    high: float

    @classmethod
    def of(cls, values: Iterable[Any]) -> Domain:
        """The axis over the range of ``values`` (the caller passes the contestants' points and
        CI ends, not the references': an oracle at 120 would shrink every CI to a tick), padded,
        at least ``MIN_SPAN`` wide and within ``BAR_CLIP``; anything beyond sits at an edge."""
        finite = [v for v in map(num, values) if not math.isnan(v)]
        if not finite:
            return cls(0.0, 100.0)
        low, high = min(finite), max(finite)
        if high - low < MIN_SPAN:
            low, high = (low + high - MIN_SPAN) / 2, (low + high + MIN_SPAN) / 2
        pad = 0.03 * (high - low)
        return cls(max(BAR_CLIP[0], float(math.floor(low - pad))), min(BAR_CLIP[1], float(math.ceil(high + pad))))

    def x(self, value: float) -> float:
        v = min(max(value, self.low), self.high)
        return 4 + (BAR_W - 8) * (v - self.low) / (self.high - self.low)


def bar(domain: Domain, point: Any, low: Any = None, high: Any = None, seed_low: Any = None,
        seed_high: Any = None, what: str = "score") -> str:  # fmt: skip
    """An inline SVG: the evaluation CI as a blue bar, the training-seed range as an orange line
    above it, the point as a black tick; faint lines at 0 (random) and 100 (Bayes-optimal)."""
    p = num(point)
    if math.isnan(p):
        return ""
    parts = [f'<svg class="bar" width="{BAR_W}" height="{BAR_H}" viewBox="0 0 {BAR_W} {BAR_H}" role="img">']
    tip = [f"{what} {p:.1f}"]
    for ref in (0.0, 100.0):
        if domain.low <= ref <= domain.high:
            x = domain.x(ref)
            parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="0" y2="{BAR_H}" stroke="#b5b5b5" '
                         'stroke-dasharray="2,2"/>')  # fmt: skip
    lo, hi = num(seed_low), num(seed_high)
    if not math.isnan(lo) and not math.isnan(hi):
        x1, x2 = domain.x(lo), domain.x(hi)
        parts.append(
            f'<line x1="{x1:.1f}" x2="{x2:.1f}" y1="3" y2="3" stroke="{SEED_COLOUR}" stroke-width="2"/>'
            f'<line x1="{x1:.1f}" x2="{x1:.1f}" y1="0" y2="6" stroke="{SEED_COLOUR}" stroke-width="1.5"/>'
            f'<line x1="{x2:.1f}" x2="{x2:.1f}" y1="0" y2="6" stroke="{SEED_COLOUR}" stroke-width="1.5"/>'
        )
        tip.append(f"range over training seeds [{lo:.1f}, {hi:.1f}]")
    lo, hi = num(low), num(high)
    if not math.isnan(lo) and not math.isnan(hi):
        x1, x2 = domain.x(lo), domain.x(hi)
        w = max(x2 - x1, 3.0)  # a CI narrower than the tick still shows around it
        parts.append(f'<rect x="{(x1 + x2 - w) / 2:.1f}" y="8" width="{w:.1f}" height="8" rx="1.5" '
                     f'fill="{EVAL_COLOUR}" fill-opacity="0.8"/>')  # fmt: skip
        tip.append(f"95% CI over held-out tasks [{lo:.1f}, {hi:.1f}]")
    x = domain.x(p)
    parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="5" y2="{BAR_H - 1}" stroke="{POINT_COLOUR}" '
                 'stroke-width="1.2"/>')  # fmt: skip
    if not domain.low <= p <= domain.high:  # off the axis (e.g. an oracle at 300): an arrow at the edge
        tip_x = x + 5 if p > domain.high else x - 5
        parts.append(f'<polygon points="{x:.1f},{BAR_H - 2} {tip_x:.1f},{BAR_H - 6} {x:.1f},{BAR_H - 10}" '
                     f'fill="{POINT_COLOUR}"/>')  # fmt: skip
        tip.append("beyond the axis")
    parts.insert(1, f"<title>{esc('; '.join(tip))}</title>")
    parts.append("</svg>")
    return "".join(parts)


def barcell(svg: str, text: str) -> str:
    """A bar and its numbers side by side."""
    return f'<span class="sc">{svg}<span>{esc(text)}</span></span>'


def legend(domain: Domain) -> str:
    """The key above a table of bars, with that table's axis."""
    return (
        '<div class="legend"><span><span class="key eval"></span>95% CI over held-out tasks (evaluation: the trained '
        'agent held fixed)</span><span><span class="key seed"></span>range over training seeds (retraining: shown '
        'where two or more seeds exist)</span><span><span class="key point"></span>estimate</span>'
        f'<span class="muted">axis {domain.low:g} to {domain.high:g}, the contestants\' range: a reference beyond '
        "it (oracle, random play) sits at the edge with an arrow; dashed: 0 = random play, 100 = Bayes-optimal"
        "</span></div>"
    )


def seed_list(seeds: Iterable[Any]) -> str:
    """Training seeds compactly: runs of consecutive seeds as ``0–2``, so a cell stays on one line."""
    values = sorted(int(s) for s in seeds)
    runs: list[list[int]] = []
    for v in values:
        if runs and v == runs[-1][-1] + 1:
            runs[-1].append(v)
        else:
            runs.append([v])
    return ", ".join(f"{r[0]}–{r[-1]}" if len(r) > 2 else ", ".join(map(str, r)) for r in runs)


def bayes_label(method: Any) -> tuple[str, str]:
    """(short label, tooltip) of a Bayes reference: exact, or which bound."""
    m = str(method) if filled(method) else "none"
    if m == "exact":
        return "exact", "score relative to the exact Bayes-optimal return"
    if m.startswith("lower-bound:"):
        policy = m.split(":", 1)[1]
        return (f"bound: {policy}",
                f"{m}: no exact planner here; the score is relative to the best known policy ({policy}), "
                "a lower bound on the Bayes-optimal return")  # fmt: skip
    return m, "no Bayes reference: no score"


def figure(src: str, alt: str, caption: str) -> str:
    return (f'<figure><img src="{esc(src)}" alt="{esc(alt)}">'
            f"<figcaption>{caption}</figcaption></figure>")  # fmt: skip

