"""Reporting: reading the results a run wrote, and presenting them.

``leaderboard`` (the rows' CSV: read, append, newest, best), the suite aggregates
(``aggregate`` and its parts: sets, per-task scores, stratified bootstrap, profile plots),
``plots``, the static report page (``report`` and its parts), ``crosseval`` and the
``published`` tables.  Never runs the command line.  May import ``metarl_bench.core``,
``metarl_bench.evaluation``, ``metarl_bench.records`` and ``metarl_bench.probes``.
"""
