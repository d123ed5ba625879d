"""The report page's section on the simulation analysis (``results/belief_simulation.csv``).

One function, :func:`belief_simulation_section`, turns the rows into an HTML ``<section>``:
for the newest run of every agent and distribution, a table of figures (rows) by subject
(columns: the agent and its controls), each cell the figure and its 95% CI, and the run's
provenance.  It reads nothing and writes nothing; the page wires it in.
"""

from __future__ import annotations

import pandas as pd

from metarl_bench.probes.simulation_rows import figure_label
from metarl_bench.reporting.report_html import cell, details, esc, fmt, table, with_ci

SUBJECT_TIPS = {
    "agent": "the probed agent (shipped checkpoint)",
    "untrained": "same architecture and config, initial parameters",
    "other-trained": "the same agent's checkpoint of another distribution, played here",
    "exact-posterior": "synthetic: acts as Bayes, memory = posterior, observation, step",
    "history-buffer": "synthetic: acts as Bayes, memory = every observation so far",
}
MEASURE_TIPS = {
    "behaviour_kl": "KL between the trembling Bayes policy and the subject's, per step (nats)",
    "state_nmse": "held-out MSE of the map over the target's variance (0: exact)",
    "output_kl": "KL between the policies at the real and at the mapped state (nats)",
    "order_ratio": "state shift by reordering a history / by another posterior (0: order-invariant)",
    "order_perm_distance": "state shift by reordering a history, over the state's spread",
    "order_other_distance": "state shift by another posterior's history, over the state's spread",
}


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def belief_simulation_section(rows: pd.DataFrame | None) -> str:
    """The ``<section id="belief-simulation">`` of the simulation rows ('' when there are none)."""
    if rows is None or rows.empty:
        return ""
    last = rows.groupby(["agent", "env"], sort=True)["run_id"].last()
    parts = [
        '<section id="belief-simulation"><h2>Is the memory a belief state?</h2>',
        '<p class="muted">Simulation in both directions (Mikulik et al. 2020): behaviour, state maps memory '
        "&harr; belief with the output they give, and order invariance on bandits, for the agent and its "
        "controls (<code>python -m metarl_bench.probe --simulation</code>; newest run per agent and "
        "distribution; 95% CIs over tasks).</p>",
    ]
    for (agent, env), run_id in last.items():
        run = rows[rows["run_id"] == run_id]
        subjects = list(dict.fromkeys(run["subject"]))
        figures: dict[str, dict[str, str]] = {}
        tips: dict[str, str] = {}
        for r in run.itertuples():
            label = figure_label(r.measure, _text(r.direction), _text(r.histories), _text(r.map))
            text = with_ci(r.value, r.ci_low, r.ci_high, 3) if pd.notna(r.value) else "n/a"
            figures.setdefault(label, {})[r.subject] = cell(text, r.value, cls="num", title=_text(r.note))
            tips[label] = MEASURE_TIPS.get(r.measure, "")
        lines = [
            "<tr>" + cell(label, title=tips[label]) + "".join(by.get(s, cell("")) for s in subjects) + "</tr>"
            for label, by in figures.items()
        ]
        heads = [("figure", "S is the subject of each column")] + [(s, SUBJECT_TIPS.get(s, "")) for s in subjects]
        first = run.iloc[0]
        notes = run.groupby("subject", sort=False)["subject_note"].first()
        prov = details("run", [
            ("command", first.get("command")), ("commit", first.get("commit")), ("version", first.get("version")),
            ("device", first.get("device")), ("threads", fmt(first.get("threads"), 0)),
            ("trained on", first.get("train_env")), ("checkpoint", first.get("checkpoint")),
            ("Bayes policy", first.get("bayes_method")),
            ("tasks (fit / test)", f"{first.get('n_tasks')} ({first.get('n_fit_tasks')} / "
                                   f"{first.get('n_test_tasks')})"),
            ("wall time (s)", fmt(first.get("wall_s"), 1)), ("time (UTC)", first.get("timestamp")), ("run id", run_id),
            *((f"subject {s}", n) for s, n in notes.items()),
        ])  # fmt: skip
        parts += [
            f"<h3>{esc(agent)} on {esc(env)}</h3>",
            table(f"belief-simulation-{agent}-{env}", heads, lines, f"{len(run)} figures"),
            prov,
        ]
    parts.append("</section>")
    return "\n".join(parts)
