"""The report page's static parts: its style sheet and its sorting script, inlined into
``index.html`` so the page needs no server and loads nothing from the network.

Colours are Okabe & Ito's (distinguishable with every common colour-vision deficiency):
blue for evaluation intervals, orange for the spread across training seeds.
"""

from __future__ import annotations

EVAL_COLOUR = "#0072B2"  # 95% CI over held-out tasks (evaluation)
SEED_COLOUR = "#E69F00"  # range over training seeds
POINT_COLOUR = "#000000"

CSS = """
:root { --eval: #0072B2; --seed: #E69F00; --ink: #1b1b1b; --muted: #5a5a5a; --rule: #d9d9d9; --band: #f4f6f8; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       color: var(--ink); background: #fff; }
header, main, footer { max-width: 1400px; margin: 0 auto; padding: 0 16px; }
main { position: relative; }
header { padding-top: 18px; border-bottom: 1px solid var(--rule); }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 34px 0 6px; padding-top: 8px; border-top: 2px solid var(--ink); }
h3 { font-size: 15px; margin: 22px 0 6px; }
p, li { max-width: 92ch; }
.muted { color: var(--muted); }
nav ul { list-style: none; padding: 0; margin: 8px 0 12px; display: flex; flex-wrap: wrap; gap: 6px 16px; }
nav a { color: var(--eval); }
code { font: 12.5px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; background: var(--band);
       padding: 1px 4px; border-radius: 3px; overflow-wrap: anywhere; }
.scroll { overflow-x: auto; border: 1px solid var(--rule); border-radius: 4px; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { padding: 4px 6px; text-align: left; vertical-align: top; border-bottom: 1px solid var(--rule); }
th { position: sticky; top: 0; background: #eef1f4; cursor: pointer; user-select: none; vertical-align: bottom; }
th:focus { outline: 2px solid var(--eval); outline-offset: -2px; }
th[aria-sort="ascending"]::after { content: " \\25B2"; font-size: 10px; }
th[aria-sort="descending"]::after { content: " \\25BC"; font-size: 10px; }
td.name, .nw { white-space: nowrap; }
.sc { display: inline-flex; align-items: center; gap: 6px; white-space: nowrap; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tbody tr:nth-child(even) { background: #fafbfc; }
tr.reference td { color: var(--muted); font-style: italic; }
td:first-child { white-space: nowrap; }
.tag { display: inline-block; font-size: 11px; font-style: normal; padding: 0 5px; border-radius: 8px;
       border: 1px solid var(--muted); color: var(--muted); margin-left: 4px; }
.tag.warn { border-color: #D55E00; color: #A34400; }
svg.bar { display: block; }
.legend { display: flex; flex-wrap: wrap; gap: 4px 18px; align-items: center; font-size: 12.5px; margin: 6px 0; }
.key { display: inline-block; vertical-align: middle; margin-right: 5px; }
.key.eval { width: 26px; height: 8px; background: var(--eval); opacity: .75; border-radius: 2px; }
.key.seed { width: 26px; height: 2px; background: var(--seed); outline: 1px solid var(--seed); }
.key.point { width: 2px; height: 12px; background: #000; }
details summary { cursor: pointer; color: var(--eval); }
details dl { display: grid; grid-template-columns: max-content minmax(16ch, 56ch); gap: 1px 10px; margin: 4px 0; }
details dt { color: var(--muted); }
details dd { margin: 0; overflow-wrap: anywhere; }
/* an open provenance block floats over the rows below, right-aligned in the page, rather than
   widening its column: a table that fits at 1366 px keeps fitting with a block open */
td details[open] > dl { position: absolute; right: 16px; z-index: 3; background: #fff; padding: 6px 10px;
       border: 1px solid var(--rule); border-radius: 4px; box-shadow: 0 2px 8px rgba(0, 0, 0, .18); }
.figs { display: grid; grid-template-columns: repeat(auto-fill, minmax(540px, 1fr)); gap: 14px; }
.figs.one { grid-template-columns: minmax(0, 820px); }
.figs.full { grid-template-columns: minmax(0, 1fr); }
figure { margin: 0; border: 1px solid var(--rule); border-radius: 4px; padding: 8px; }
figure img { max-width: 100%; height: auto; display: block; }
figcaption { font-size: 12.5px; color: var(--muted); margin-top: 4px; }
footer { border-top: 1px solid var(--rule); margin-top: 40px; padding-bottom: 30px; font-size: 12.5px; }
@media (max-width: 700px) { .figs { grid-template-columns: 1fr; } }
"""

# Sort a table by the clicked column: numbers (a cell's data-v, else its text) numerically,
# others as text; empty cells last whichever the direction.  Enter or space on a focused
# header sorts too.
JS = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  var heads = table.tHead.rows[0].cells;
  Array.prototype.forEach.call(heads, function (th, col) {
    th.tabIndex = 0;
    function sort() {
      var asc = th.getAttribute("aria-sort") !== "ascending";
      Array.prototype.forEach.call(heads, function (h) { h.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", asc ? "ascending" : "descending");
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      function key(row) {
        var cell = row.cells[col];
        var v = (cell.dataset.v !== undefined ? cell.dataset.v : cell.textContent).trim();
        var n = Number(v);
        return v === "" ? [2, 0] : (Number.isFinite(n) ? [0, n] : [1, v.toLowerCase()]);
      }
      rows.sort(function (a, b) {
        var x = key(a), y = key(b);
        if (x[0] !== y[0]) { return x[0] - y[0]; }
        if (x[0] === 2) { return 0; }
        var d = x[1] < y[1] ? -1 : (x[1] > y[1] ? 1 : 0);
        return asc ? d : -d;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    }
    th.addEventListener("click", sort);
    th.addEventListener("keydown", function (e) {
      if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sort(); }
    });
  });
});
"""
