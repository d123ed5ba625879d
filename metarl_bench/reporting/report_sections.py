"""The report page's sections: one per suite (its leaderboard table, newest row per agent,
training distribution, training seed and distribution, the score drawn as a bar; the
aggregates of its sets, flagged where the leaderboard is newer, with their performance
profiles; the adaptation curves), the cross-evaluation, the belief probes, and how to read
the page."""

from __future__ import annotations

import math

import pandas as pd

from metarl_bench.reporting.aggregate_files import TRAINING_SEEDS, filled
from metarl_bench.reporting.report_figures import Writer
from metarl_bench.reporting.report_html import (
    Domain,
    bar,
    barcell,
    bayes_label,
    cell,
    details,
    esc,
    figure,
    fmt,
    legend,
    num,
    seed_list,
    table,
    with_ci,
)
from metarl_bench.reporting.report_inputs import Inputs, seed_spread


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
    plotted = sub[~sub["_ref"]] if (~sub["_ref"]).any() else sub
    domain = Domain.of([*plotted["score_ci_low"], *plotted["score_ci_high"], *plotted["score"]])
    lines = []
    for _, r in sub.iterrows():
        key = (r["agent"], r["train_env"], r["env"])
        s_lo, s_hi, seeds = spread.get(key, (math.nan, math.nan, []))
        ref = r["agent"] in refs
        agent = esc(r["agent"]) + ('<span class="tag" title="a reference, not a contestant">ref</span>' if ref else "")
        score_text = with_ci(r["score"], r["score_ci_low"], r["score_ci_high"])
        note = r["score_note"] if filled(r["score_note"]) else ""
        score_html = barcell(bar(domain, r["score"], r["score_ci_low"], r["score_ci_high"], s_lo, s_hi),
                             score_text) if score_text else f'<span class="muted">{esc(note)}</span>'  # fmt: skip
        seed_text = f"{s_lo:.1f}–{s_hi:.1f} (seeds {seed_list(seeds)})" if seeds else ""
        trained = f"{r['train_env']} · seed {r['train_seed']}" if r["train_env"] else ""
        # a long name pushes "· seed N" to a second line whole, never the bare number
        trained_html = (f'<span class="nw">{esc(r["train_env"])}</span> <span class="nw">· seed '
                        f'{esc(r["train_seed"])}</span>' if r["train_env"] else "")  # fmt: skip
        label, tip = bayes_label(r["bayes_method"])
        # the reference is the distribution's: a tag beside its name where it is not exact (saves a column)
        env_html = esc(r["env"]) + ("" if label == "exact" else
                                    f'<span class="tag" title="{esc(tip)}">{esc(label.split(":")[0])}</span>')
        adapt = fmt(r["adapt_steps"], 0) + (f" (Bayes {fmt(r['bayes_adapt_steps'], 0)})"
                                            if filled(r["bayes_adapt_steps"]) else "")  # fmt: skip
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
            + cell(env_html, f"{order[r['env']]:03d} {r['env']}", cls="name", raw=True)
            + cell(trained_html, trained, raw=True)
            + cell(score_html, r["score"], raw=True)
            + cell(seed_text, s_hi - s_lo if seeds else math.nan, cls="nw")
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
            + cell(prov, r["timestamp"], raw=True)
            + "</tr>"
        )
    heads = [
        ("agent", "registered agent; references (Bayes, oracle, random) in grey"),
        ("distribution", "task distribution evaluated on; tagged where its Bayes reference is a bound (the best "
                         "known policy, named in the tag's tooltip and above the table), not exact"),
        ("trained on · seed", "distribution a learning agent was meta-trained on, and its training seed"),
        ("score [95% CI]", "100·(return − random)/(Bayes − random), paired per task; blue: 95% CI over held-out "
                           "tasks; orange: range over training seeds"),
        ("training seeds", "the spread that retraining adds: lowest–highest score over the training seeds "
                           "(listed) of this agent, training distribution and distribution"),
        ("return", "mean trial return (its 95% CI over tasks in the cell's tooltip)"),
        ("regret", "oracle return − return (its 95% CI in the cell's tooltip)"),
        ("adapt steps", "first step (or inner episode) at which smoothed reward gets 80% of the way from random "
                        "play to the oracle; the Bayes policy's own in brackets"),
        ("run details", "provenance: command, commit, device, threads, wall times (sorts by time)"),
    ]  # fmt: skip
    sizes = sorted({f"{int(num(n))} held-out tasks × {len(str(s).split(';'))} evaluation seeds"
                    for n, s in zip(sub["n_tasks"], sub["seeds"], strict=True)})  # fmt: skip
    caption = f"{len(lines)} rows: newest per agent, training distribution, training seed and distribution; " + (
        f"every row {sizes[0]}" if len(sizes) == 1 else "tasks and seeds per row in its details"
    )
    return legend(domain) + table(f"leaderboard-{suite}", heads, lines, caption)


def aggregates_table(name: str, agg: pd.DataFrame, current_ids: set[str], present: set[tuple[str, str]]) -> str:
    """The aggregates of one set; ``present``: the (agent, training seed) pairs with rows on the
    set's distributions, so that contestants newer than the aggregates are named."""
    sub = agg[agg["suite"] == name]
    if sub.empty:
        return ""
    plotted = sub[sub["role"] != "reference"] if (sub["role"] != "reference").any() else sub
    domain = Domain.of([*plotted["iqm_ci_low"], *plotted["iqm_ci_high"], *plotted["mean_ci_low"],
                        *plotted["mean_ci_high"], *plotted["iqm_seed_min"], *plotted["iqm_seed_max"],
                        *plotted["mean_seed_min"], *plotted["mean_seed_max"], *plotted["iqm"],
                        *plotted["mean"]])  # fmt: skip
    lines = []
    for _, r in sub.iterrows():
        seeds_row = r["kind"] == TRAINING_SEEDS
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
        why = r["missing"] if filled(r["missing"]) else ""
        why = f"missing: {why.replace(';', ', ')}" if why else (r["note"] if filled(r["note"]) else "")
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
    return legend(domain) + table(f"aggregates-{name}", heads, lines, f"{len(lines)} rows") + after


def references(envs: list[str], rows: pd.DataFrame) -> str:
    """Each distribution with the label of its Bayes reference (from its rows), e.g. ``a (exact), b (bound: x)``."""
    named = []
    for env in envs:
        methods = rows.loc[rows["env"] == env, "bayes_method"].dropna().unique()
        named.append(f"{env} ({bayes_label(methods[0])[0]})" if len(methods) else f"{env} (no rows)")
    return ", ".join(named)


def suite_section(suite: str, envs: list[str], inputs: Inputs, writer: Writer, refs: set[str]) -> str:
    rows = inputs.rows
    present = [e for e in envs if (rows["env"] == e).any()]
    parts = [f'<section id="suite-{esc(suite)}"><h2>{esc(suite)}</h2>',
             f'<p class="muted">Distributions and their Bayes reference: {esc(references(envs, rows))}.</p>',
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
        label, tip = bayes_label(r["bayes_method"]) if filled(r["bayes_method"]) else ("", "")
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
exists, else a <b>bound</b>: the best known policy (named above each leaderboard, and a <i>bound</i> tag beside the
distribution), so a score above 100 is possible there.</li>
<li><b>Two kinds of interval.</b> Blue bars are 95% bootstrap CIs over the held-out tasks (evaluation: the trained
agent is held fixed; they say nothing about retraining). Orange lines are the range (lowest to highest) over
training seeds: where a learning agent was trained with two or more seeds, they show what retraining changes.
The bars of one table share an axis, the range of its contestants (named in its legend); a reference beyond it,
such as the oracle, sits at the edge with an arrow.</li>
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

