"""The report page: a static, self-contained HTML view of a results folder.

    python -m metarl_bench.report [--results results] [--out results/report]

writes ``<out>/index.html`` and its figures under ``<out>/img/`` (beside the page; the style
and the sorting script are inline: no server, nothing loaded from the network).  Per suite:
the leaderboard (newest row per agent, training distribution, training seed and
distribution; score with its CI drawn as a bar, and the spread across training seeds where
there are several), the suite aggregates and their performance profile
(``results/aggregates.csv``, ``results/profiles.csv``: ``python -m metarl_bench.leaderboard
--aggregate``), the adaptation curves; then the cross-evaluation heat map and the belief
probes.  Every row's provenance sits in a details block.

The page is a function of the CSVs (and the probe figures, copied): the same files give the
same bytes.  It carries no generation time, only the times recorded in the rows; the
figures it draws itself (curves, profiles) come from the CSVs.  ``run --report`` and
``probe --report`` regenerate it after appending their rows.
"""

from __future__ import annotations

import html
import math
import shutil
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from metarl_bench.records.csvfile import CSVSchemaError
from metarl_bench.reporting import aggregate, leaderboard, plots
from metarl_bench.reporting.report_assets import CSS, EVAL_COLOUR, JS, POINT_COLOUR, SEED_COLOUR

PROG = "python -m metarl_bench.report"
REPORT_DIR = "report"
PAGE = "index.html"
IMG = "img"
BAR_W, BAR_H = 120, 18
BAR_CLIP = (-25.0, 135.0)  # scores outside are drawn at the edge, with an arrow: k=50 oracles score ~300


class ReportError(ValueError):
    """A results folder the report cannot be made from (missing, or a file that does not fit)."""


# ============================================================================ inputs
@dataclass
class Inputs:
    """Everything the page shows, read and validated."""

    results: Path
    n_rows: int
    rows: pd.DataFrame  # current rows (newest per agent, train_env, train_seed, env)
    aggregates: pd.DataFrame
    profiles: pd.DataFrame
    crosseval: pd.DataFrame | None
    probes: pd.DataFrame | None


def load(results: Path) -> Inputs:
    """Read the results folder; ReportError (or CSVSchemaError) naming what does not fit."""
    from metarl_bench.probes.rows import PROBE_FILE, read_probes
    from metarl_bench.reporting.crosseval import CSV_FILE

    if not results.is_dir():
        raise ReportError(f"--results {str(results)!r} is not a folder")
    board = results / leaderboard.LEADERBOARD_FILE
    if not board.is_file():
        raise ReportError(f"{board} does not exist: nothing to report (python -m metarl_bench.run writes it)")
    all_rows = leaderboard.read(board)
    crosseval = None
    if (results / CSV_FILE).is_file():
        try:
            crosseval = pd.read_csv(results / CSV_FILE)
        except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise ReportError(f"{results / CSV_FILE} is not a readable CSV ({exc})") from None
        needed = {"agent", "train_env", "env", "status", "score", "score_ci_low", "score_ci_high"}
        if not needed <= set(crosseval.columns):
            raise ReportError(f"{results / CSV_FILE} lacks columns {sorted(needed - set(crosseval.columns))}")
    probes = read_probes(results / PROBE_FILE) if (results / PROBE_FILE).is_file() else None
    return Inputs(
        results=results,
        n_rows=len(all_rows),
        rows=aggregate.current_rows(all_rows),
        aggregates=aggregate.read_aggregates(results / aggregate.AGGREGATES_FILE),
        profiles=aggregate.read_profiles(results / aggregate.PROFILES_FILE),
        crosseval=crosseval,
        probes=probes,
    )


# ============================================================================ small pieces of HTML
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


def table(table_id: str, heads: list[tuple[str, str]], rows: list[str], caption: str = "") -> str:
    """A sortable table: ``heads`` are (label, tooltip)."""
    th = "".join(f'<th scope="col" title="{esc(tip)}">{esc(label)}</th>' for label, tip in heads)
    cap = f'<caption class="muted">{esc(caption)}</caption>' if caption else ""
    body = "\n".join(rows)
    return (f'<div class="scroll"><table class="sortable" id="{esc(table_id)}">{cap}<thead><tr>{th}</tr></thead>'
            f"<tbody>\n{body}\n</tbody></table></div>")  # fmt: skip


def details(summary: str, items: Iterable[tuple[str, Any]]) -> str:
    """A provenance block: only the items that have a value."""
    dl = "".join(f"<dt>{esc(k)}</dt><dd><code>{esc(v)}</code></dd>" for k, v in items if aggregate._filled(v))
    return f"<details><summary>{esc(summary)}</summary><dl>{dl}</dl></details>"


@dataclass(frozen=True)
class Domain:
    """The score axis of one table's bars."""

    low: float
    high: float

    @classmethod
    def of(cls, values: Iterable[Any]) -> Domain:
        finite = [v for v in map(num, values) if not math.isnan(v)]
        low = max(BAR_CLIP[0], min([-10.0, *finite]))
        high = min(BAR_CLIP[1], max([110.0, *finite]))
        return cls(low, high)

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


LEGEND = (
    '<div class="legend"><span><span class="key eval"></span>95% CI over held-out tasks (evaluation: the trained '
    'agent held fixed)</span><span><span class="key seed"></span>range over training seeds (retraining: shown '
    'where two or more seeds exist)</span><span><span class="key point"></span>estimate</span>'
    '<span class="muted">dashed: 0 = random play, 100 = Bayes-optimal</span></div>'
)


def bayes_label(method: Any) -> tuple[str, str]:
    """(short label, tooltip) of a Bayes reference: exact, or which bound."""
    m = str(method) if aggregate._filled(method) else "none"
    if m == "exact":
        return "exact", "score relative to the exact Bayes-optimal return"
    if m.startswith("lower-bound:"):
        policy = m.split(":", 1)[1]
        return (f"bound: {policy}",
                f"{m}: no exact planner here; the score is relative to the best known policy ({policy}), "
                "a lower bound on the Bayes-optimal return")  # fmt: skip
    return m, "no Bayes reference: no score"


# ============================================================================ sections
def suites_of(rows: pd.DataFrame) -> list[tuple[str, list[str]]]:
    """Registered suites with rows, then the distributions in no suite (``other``)."""
    from metarl_bench.core.registry import list_families, list_suites

    envs = set(rows["env"])
    found, covered = [], set()
    for suite in list_suites():
        members = list_families(suite)
        if envs & set(members):
            found.append((suite, members))
            covered |= set(members)
    rest = sorted(envs - covered)
    if rest:
        found.append(("other", rest))
    return found


def seed_spread(rows: pd.DataFrame) -> dict[tuple[str, str, str], tuple[float, float, list[str]]]:
    """(agent, train_env, env) -> (lowest score, highest, seeds) where two or more training seeds have a score."""
    learned = rows[(rows["train_seed"] != "") & rows["score"].notna()]
    spread = {}
    for key, grp in learned.groupby(["agent", "train_env", "env"], sort=True):
        if len(grp) >= 2:
            seeds = sorted(grp["train_seed"], key=int)
            spread[key] = (float(grp["score"].min()), float(grp["score"].max()), seeds)
    return spread


def leaderboard_table(suite: str, envs: list[str], rows: pd.DataFrame, refs: set[str]) -> str:
    sub = rows[rows["env"].isin(envs)].copy()
    if sub.empty:
        return '<p class="muted">No rows.</p>'
    order = {e: i for i, e in enumerate(envs)}
    sub["_env"] = sub["env"].map(order)
    sub["_ref"] = sub["agent"].isin(refs)
    sub["_score"] = -sub["score"].fillna(-1e9)
    sub = sub.sort_values(["_env", "_ref", "_score", "agent", "train_env", "train_seed"], kind="stable")
    spread = seed_spread(rows)
    domain = Domain.of([*sub["score_ci_low"], *sub["score_ci_high"], *sub["score"]])
    lines = []
    for _, r in sub.iterrows():
        key = (r["agent"], r["train_env"], r["env"])
        s_lo, s_hi, seeds = spread.get(key, (math.nan, math.nan, []))
        ref = r["agent"] in refs
        agent = esc(r["agent"]) + ('<span class="tag" title="a reference, not a contestant">ref</span>' if ref else "")
        score_text = with_ci(r["score"], r["score_ci_low"], r["score_ci_high"])
        note = r["score_note"] if aggregate._filled(r["score_note"]) else ""
        score_html = barcell(bar(domain, r["score"], r["score_ci_low"], r["score_ci_high"], s_lo, s_hi),
                             score_text) if score_text else f'<span class="muted">{esc(note)}</span>'  # fmt: skip
        seed_text = f"{s_lo:.1f} to {s_hi:.1f} ({len(seeds)} seeds: {', '.join(seeds)})" if seeds else ""
        trained = f"{r['train_env']} · seed {r['train_seed']}" if r["train_env"] else ""
        trained_html = (f'<span class="nw">{esc(r["train_env"])}</span> · seed {esc(r["train_seed"])}'
                        if r["train_env"] else "")  # fmt: skip
        label, tip = bayes_label(r["bayes_method"])
        adapt = fmt(r["adapt_steps"], 0) + (f" (Bayes {fmt(r['bayes_adapt_steps'], 0)})"
                                            if aggregate._filled(r["bayes_adapt_steps"]) else "")  # fmt: skip
        seeds_eval = str(r["seeds"]).split(";")
        prov = details("run", [
            ("command", r["command"]), ("commit", r["commit"]), ("version", r["version"]),
            ("device", r["device"]), ("threads", fmt(r["threads"], 0)),
            ("trained on", r["train_env"]), ("training seed", r["train_seed"]),
            ("training steps", fmt(r["train_steps"], 0)), ("training wall time (s)", fmt(r["train_wall_s"], 1)),
            ("checkpoint", r["checkpoint"]), ("evaluation wall time (s)", fmt(r["eval_wall_s"], 2)),
            ("held-out tasks × evaluation seeds", f"{int(num(r['n_tasks']))} × {len(seeds_eval)} ({r['seeds']})"),
            ("time (UTC)", r["timestamp"]), ("run id", r["run_id"]),
            ("agent config", r["agent_config"]),
        ])  # fmt: skip
        lines.append(
            f'<tr class="{"reference" if ref else "agent"}">'
            + cell(agent, r["agent"], raw=True)
            + cell(r["env"], f"{order[r['env']]:03d} {r['env']}", cls="name")
            + cell(trained_html, trained, raw=True)
            + cell(score_html, r["score"], raw=True)
            + cell(seed_text, s_hi - s_lo if seeds else math.nan)
            + cell(
                fmt(r["return"], 2),
                r["return"],
                cls="num",
                title=f"95% CI over tasks {with_ci(r['return'], r['return_ci_low'], r['return_ci_high'], 2)}",
            )
            + cell(
                fmt(r["regret"], 2),
                r["regret"],
                cls="num",
                title=f"95% CI over tasks {with_ci(r['regret'], r['regret_ci_low'], r['regret_ci_high'], 2)}",
            )
            + cell(adapt, r["adapt_steps"], cls="num")
            + cell(label, str(r["bayes_method"]), cls="name", title=tip)
            + cell(prov, r["timestamp"], raw=True)
            + "</tr>"
        )
    heads = [
        ("agent", "registered agent; references (Bayes, oracle, random) in grey"),
        ("distribution", "task distribution evaluated on"),
        ("trained on · seed", "distribution a learning agent was meta-trained on, and its training seed"),
        ("score [95% CI]", "100·(return − random)/(Bayes − random), paired per task; blue: 95% CI over held-out "
                           "tasks; orange: range over training seeds"),
        ("training seeds", "the spread that retraining adds: lowest to highest score over the training seeds "
                           "of this agent, training distribution and distribution"),
        ("return", "mean trial return (its 95% CI over tasks in the cell's tooltip)"),
        ("regret", "oracle return − return (its 95% CI in the cell's tooltip)"),
        ("adapt steps", "first step (or inner episode) at which smoothed reward gets 80% of the way from random "
                        "play to the oracle; the Bayes policy's own in brackets"),
        ("Bayes ref", "exact Bayes-optimal return, or a lower bound (which policy)"),
        ("provenance", "command, commit, device, threads, wall times (sorts by time)"),
    ]  # fmt: skip
    sizes = sorted({f"{int(num(n))} held-out tasks × {len(str(s).split(';'))} evaluation seeds"
                    for n, s in zip(sub["n_tasks"], sub["seeds"], strict=True)})  # fmt: skip
    caption = f"{len(lines)} rows: newest per agent, training distribution, training seed and distribution; " + (
        f"every row {sizes[0]}" if len(sizes) == 1 else "tasks and seeds per row in its details"
    )
    return LEGEND + table(f"leaderboard-{suite}", heads, lines, caption)


def aggregates_table(name: str, agg: pd.DataFrame, current_ids: set[str], present: set[tuple[str, str]]) -> str:
    """The aggregates of one set; ``present``: the (agent, training seed) pairs with rows on the
    set's distributions, so that contestants newer than the aggregates are named."""
    sub = agg[agg["suite"] == name]
    if sub.empty:
        return ""
    domain = Domain.of([*sub["iqm_ci_low"], *sub["iqm_ci_high"], *sub["mean_ci_low"], *sub["mean_ci_high"],
                        *sub["iqm_seed_min"], *sub["iqm_seed_max"], *sub["iqm"], *sub["mean"]])  # fmt: skip
    lines = []
    for _, r in sub.iterrows():
        seeds_row = r["kind"] == aggregate.TRAINING_SEEDS
        ids = [i for i in str(r["run_ids"]).split(";") if i]
        stale = bool(ids) and any(i not in current_ids for i in ids)
        status = esc(r["status"]) + (
            '<span class="tag warn" title="the leaderboard has newer rows than these '
            'aggregates: rerun the aggregate command">stale</span>'
            if stale
            else ""
        )
        ref = r["role"] == "reference"
        agent = esc(r["agent"]) + ('<span class="tag" title="a reference, not a contestant">ref</span>' if ref else "")
        cols = []
        for stat in ("iqm", "mean"):
            if seeds_row:
                text = f"{fmt(r[stat])} (seed range {fmt(r[f'{stat}_seed_min'])} to {fmt(r[f'{stat}_seed_max'])})"
                svg = bar(domain, r[stat], seed_low=r[f"{stat}_seed_min"], seed_high=r[f"{stat}_seed_max"],
                          what=stat.upper() if stat == "iqm" else stat)  # fmt: skip
            else:
                text = with_ci(r[stat], r[f"{stat}_ci_low"], r[f"{stat}_ci_high"])
                svg = bar(domain, r[stat], r[f"{stat}_ci_low"], r[f"{stat}_ci_high"],
                          what=stat.upper() if stat == "iqm" else stat)  # fmt: skip
            cols.append(cell(barcell(svg, text) if text else "", r[stat], raw=True))
        kind = "across training seeds" if seeds_row else ("one training seed" if r["train_seed"] else "evaluation")
        why = r["missing"] if aggregate._filled(r["missing"]) else ""
        why = f"missing: {why.replace(';', ', ')}" if why else (r["note"] if aggregate._filled(r["note"]) else "")
        prov = details("how", [("distributions", str(r["distributions"]).replace(";", ", ")),
                               ("excluded (no score)", r["excluded"]), ("trained on", r["train_envs"]),
                               ("interval", r["interval"]), ("run ids", r["run_ids"]),
                               ("command", r["command"])])  # fmt: skip
        lines.append(
            f'<tr class="{"reference" if ref else "agent"}">' + cell(agent, r["agent"], raw=True) + cell(kind, kind)
            + cell(str(r["train_seed"]).replace(";", ", "), r["train_seed"]) + cell(status, r["status"], raw=True)
            + "".join(cols) + cell(why, why) + cell(prov, "", raw=True) + "</tr>"
        )  # fmt: skip
    done = set(zip(sub["agent"], sub["train_seed"], strict=True))
    missing = [f"{a} (training seed {s})" if s else a for a, s in sorted(present - done)]
    after = (f'<p class="muted">Not aggregated yet: {esc(", ".join(missing))}; refresh with <code>python -m '
             f"metarl_bench.leaderboard --aggregate --env {esc(name)}</code>.</p>" if missing else "")  # fmt: skip
    heads = [
        ("agent", "the agent as `run --agent A --env <suite>` plays it, per training seed"),
        ("interval", "one training seed: evaluation CI; across training seeds: range of the per-seed estimates"),
        ("seed", "training seed(s)"),
        ("status", "ok; incomplete (rows missing on some distributions: not averaged over fewer); unreproduced "
                   "(per-task returns did not match the row)"),
        ("IQM", "interquartile mean of all task scores of the suite, 95% stratified bootstrap CI"),
        ("mean", "mean of the distributions' scores, 95% stratified bootstrap CI"),
        ("missing / note", "distributions without a row, or why there is no number"),
        ("details", "distributions, interval, rows used"),
    ]  # fmt: skip
    return LEGEND + table(f"aggregates-{name}", heads, lines, f"{len(lines)} rows") + after


def figure(src: str, alt: str, caption: str) -> str:
    return (f'<figure><img src="{esc(src)}" alt="{esc(alt)}">'
            f"<figcaption>{caption}</figcaption></figure>")  # fmt: skip


class Writer:
    """Writes the page's figures under ``<out>/img`` once each, and remembers them."""

    def __init__(self, inputs: Inputs, out: Path):
        self.inputs, self.out = inputs, out
        self.written: dict[str, str | None] = {}
        self.sets_shown: set[str] = set()  # sets of distributions that are not suites: shown once
        # one colour per agent across every figure of the page
        self.universe = sorted(a for a in inputs.rows["agent"].unique() if plots.reference_kind(a) is None)

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
            path = aggregate.plot_profiles(self.inputs.profiles, name,
                                           self.out / IMG / "profiles" / aggregate.profile_png(name),
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


def suite_section(suite: str, envs: list[str], inputs: Inputs, writer: Writer, refs: set[str]) -> str:
    rows = inputs.rows
    present = [e for e in envs if (rows["env"] == e).any()]
    parts = [f'<section id="suite-{esc(suite)}"><h2>{esc(suite)}</h2>',
             f'<p class="muted">Distributions: {esc(", ".join(envs))}.</p>',
             "<h3>Leaderboard</h3>", leaderboard_table(suite, envs, rows, refs)]  # fmt: skip
    sets = [suite] if suite != "other" else []
    # sets of distributions that are not suites (e.g. a training-seed study) go under the first suite holding them
    from metarl_bench.core.registry import list_suites

    for name in dict.fromkeys(inputs.aggregates["suite"]):
        members = str(name).split("+")
        if name not in list_suites() and set(members) <= set(envs) and name not in writer.sets_shown:
            sets.append(name)
            writer.sets_shown.add(name)
    current_ids = set(rows["run_id"].astype(str))
    for name in sets:
        members = envs if name == suite else str(name).split("+")
        mine = rows[rows["env"].isin(members)]
        playing = set(zip(mine["agent"], mine["train_seed"], strict=True))
        title = "Suite aggregates" if name == suite else f"Aggregates over {' + '.join(str(name).split('+'))}"
        parts.append(f"<h3>{esc(title)}</h3>")
        tab = aggregates_table(name, inputs.aggregates, current_ids, playing)
        if not tab:
            parts.append(
                f'<p class="muted">No aggregates for {esc(name)} yet: '
                f"<code>python -m metarl_bench.leaderboard --aggregate --env {esc(name)}</code></p>"
            )
            continue
        parts.append(tab)
        src = writer.profile(name)
        if src:
            parts.append('<div class="figs one">' + figure(
                src, f"performance profile of {name}",
                "Performance profile: fraction of the distributions on which a contestant's score is ≥ τ "
                "(shaded: 95% stratified bootstrap band over held-out tasks). References in black and grey.")
                + "</div>")  # fmt: skip
    figs = []
    for env in present:
        methods = rows.loc[rows["env"] == env, "bayes_method"].dropna().unique()
        label = bayes_label(methods[0])[0] if len(methods) else "none"
        n = rows.loc[rows["env"] == env, "n_tasks"].max()
        for src in writer.curves(env):
            what = "return per inner episode" if src.endswith("__episodes.png") else "reward per step"
            figs.append(figure(src, f"{env}: {what}",
                               f"<b>{esc(env)}</b>: mean {what} over {int(num(n))} held-out tasks × evaluation seeds; "
                               f"Bayes reference: {esc(label)}. Each agent's latest run (for learning agents, "
                               "whichever training seed ran last)."))  # fmt: skip
    if figs:
        parts += ["<h3>Adaptation curves</h3>", '<div class="figs">' + "".join(figs) + "</div>"]
    parts.append("</section>")
    return "\n".join(parts)


def crosseval_section(inputs: Inputs, writer: Writer) -> str:
    from metarl_bench.reporting.crosseval import PNG_FILE

    cells = inputs.crosseval
    if cells is None:
        return ""
    src = writer.copy(inputs.results / PNG_FILE, "crosseval.png")
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
    parts = ['<section id="crosseval"><h2>Cross-evaluation</h2>',
             '<p class="muted">Score of each learning agent meta-trained on one distribution and evaluated on '
             "another (<code>python -m metarl_bench.crosseval</code>, from the leaderboard's rows).</p>"]  # fmt: skip
    if src:
        parts.append(
            '<div class="figs full">'
            + figure(
                src,
                "cross-evaluation heat map",
                "Heat map: score (0 random, 100 Bayes-optimal) by training distribution (rows) and test "
                "distribution (columns); ± is half the 95% CI; n/a: the agent cannot act there.",
            )
            + "</div>"
        )
    parts += [LEGEND, table("crosseval-cells", heads, lines, f"{len(lines)} cells"), "</section>"]
    return "\n".join(parts)


def probes_section(inputs: Inputs, writer: Writer) -> str:
    from metarl_bench.probes.rows import PROBE_DIR

    probes = inputs.probes
    if probes is None or probes.empty:
        return ""
    last = probes.groupby(["agent", "env"], sort=True)["run_id"].last()
    current = probes[probes["run_id"].isin(set(last))]
    current = current.sort_values(["env", "agent"], kind="stable")
    lines, figs = [], []
    for _, r in current.iterrows():
        label, tip = bayes_label(r["bayes_method"]) if aggregate._filled(r["bayes_method"]) else ("", "")
        prov = details("run", [
            ("command", r["command"]), ("commit", r["commit"]), ("version", r["version"]), ("device", r["device"]),
            ("threads", fmt(r["threads"], 0)), ("trained on", r["train_env"]), ("checkpoint", r["checkpoint"]),
            ("control", r["control"]), ("wall time (s)", fmt(r["wall_s"], 1)), ("time (UTC)", r["timestamp"]),
            ("run id", r["run_id"]),
        ])  # fmt: skip
        lines.append(
            "<tr>" + cell(r["agent"]) + cell(r["env"], cls="name") + cell(r["target"])
            + cell(with_ci(r["r2"], r["r2_ci_low"], r["r2_ci_high"], 3), r["r2"], cls="num")
            + cell(with_ci(r["control_r2"], r["control_r2_ci_low"], r["control_r2_ci_high"], 3), r["control_r2"],
                   cls="num")
            + cell(with_ci(r["accuracy"], r["accuracy_ci_low"], r["accuracy_ci_high"], 3), r["accuracy"], cls="num")
            + cell(fmt(r["belief_to_memory_r2"], 3), r["belief_to_memory_r2"], cls="num")
            + cell(with_ci(r["agreement"], r["agreement_ci_low"], r["agreement_ci_high"], 3), r["agreement"],
                   cls="num")
            + cell(label, str(r["bayes_method"]), title=tip)
            + cell(f"{int(num(r['n_fit_trials']))} / {int(num(r['n_test_trials']))}", r["n_test_trials"], cls="num")
            + cell(prov, r["timestamp"], raw=True) + "</tr>"
        )  # fmt: skip
    for agent, env in last.index:
        src = writer.copy(inputs.results / PROBE_DIR / f"{env}__{agent}.png", f"probes/{env}__{agent}.png")
        if src:
            figs.append(figure(src, f"probe of {agent} on {env}",
                               f"<b>{esc(agent)}</b> on <b>{esc(env)}</b>: held-out R² per step (solid: agent, "
                               "dashed: untrained control) and agreement with the Bayes action."))  # fmt: skip
    heads = [("agent", ""), ("distribution", ""), ("target", "belief feature probed (all: every feature)"),
             ("R² [95% CI]", "held-out R² of the linear probe memory → belief; CI over test tasks"),
             ("control R²", "the same for an untrained agent of the same architecture"),
             ("accuracy", "distribution targets: the probe's most probable entry is a most probable one"),
             ("belief→memory R²", "share of the memory's variance the belief explains linearly"),
             ("agreement [95% CI]", "share of steps with the Bayes-optimal action on the same history"),
             ("Bayes policy", "exact, or the bound's policy"), ("fit / test trials", "split by task"),
             ("provenance", "")]  # fmt: skip
    return "\n".join([
        '<section id="probes"><h2>Belief probes</h2>',
        '<p class="muted">Does the agent\'s memory hold the Bayesian posterior, and does it act like the Bayes-optimal '
        "policy? (<code>python -m metarl_bench.probe</code>; newest run per agent and distribution.)</p>",
        table("probes", heads, lines, f"{len(lines)} rows"), '<div class="figs">' + "".join(figs) + "</div>",
        "</section>",
    ])  # fmt: skip


READING = """
<section id="reading"><h2>How to read this page</h2><ul>
<li><b>Score</b> = 100 · (return − random) / (Bayes − random), paired per held-out task: 0 is uniform random
play, 100 the Bayes-optimal policy of the distribution. The Bayes reference is <b>exact</b> where an exact planner
exists, else a <b>bound</b>: the best known policy (named), so a score above 100 is possible there.</li>
<li><b>Two kinds of interval.</b> Blue bars are 95% bootstrap CIs over the held-out tasks (evaluation: the trained
agent is held fixed; they say nothing about retraining). Orange lines are the range (lowest to highest) over
training seeds: where a learning agent was trained with two or more seeds, they show what retraining changes.</li>
<li><b>Suite aggregates</b> follow rliable (Agarwal et al. 2021): IQM, the mean of the middle 50% of all task
scores of the suite pooled, and the mean of the distributions' scores, with stratified bootstrap CIs (tasks
resampled within each distribution). A task's score uses its distribution's mean references, so a distribution's
mean task score is its leaderboard score. Agents without a row on every distribution are marked incomplete and
get no number.</li>
<li><b>Regret</b> = oracle return − return; <b>adapt steps</b>: first step (or inner episode) at which the
smoothed reward gets 80% of the way from random play to the oracle, the Bayes policy's own in brackets.</li>
<li>Click a column header to sort (again to reverse); each row's <b>provenance</b> (command, commit, device,
threads, wall times) is in its details block.</li>
</ul></section>
"""


def build(results: Path, out: Path) -> Path:
    """Write ``<out>/index.html`` and its figures from the results folder; returns the page."""
    if out.exists() and not out.is_dir():
        raise ReportError(f"--out {str(out)!r} is a file, not a folder")
    inputs = load(results)
    out.mkdir(parents=True, exist_ok=True)
    writer = Writer(inputs, out)
    rows = inputs.rows
    refs = plots.reference_agents(rows["agent"].unique())
    suites = suites_of(rows)
    sections = [suite_section(s, envs, inputs, writer, refs) for s, envs in suites]
    sections += [crosseval_section(inputs, writer), probes_section(inputs, writer), READING]
    nav = [(f"suite-{s}", s) for s, _ in suites]
    nav += [("crosseval", "cross-evaluation")] if inputs.crosseval is not None else []
    nav += [("probes", "belief probes")] if inputs.probes is not None and not inputs.probes.empty else []
    nav += [("reading", "how to read")]
    newest = str(rows["timestamp"].max()) if len(rows) else ""
    commits = sorted({str(c) for c in rows["commit"] if aggregate._filled(c)})
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>metarl-bench report</title>
<style>{CSS}</style></head>
<body>
<header><h1>metarl-bench report</h1>
<p class="muted">From <code>leaderboard.csv</code>: {inputs.n_rows} rows, {len(rows)} current (newest per agent,
training distribution, training seed and distribution); newest row {esc(newest)} (UTC); code commits
{esc(", ".join(commits[:6]) + (" …" if len(commits) > 6 else ""))}.</p>
<nav><ul>{"".join(f'<li><a href="#{esc(a)}">{esc(t)}</a></li>' for a, t in nav)}</ul></nav></header>
<main>
{chr(10).join(s for s in sections if s)}
</main>
<footer><p>Static page: no server, nothing loaded from the network; figures in <code>img/</code> beside it.
Regenerate with <code>python -m metarl_bench.report --results results --out results/report</code>; aggregates with
<code>python -m metarl_bench.leaderboard --aggregate</code>.</p></footer>
<script>{JS}</script>
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
