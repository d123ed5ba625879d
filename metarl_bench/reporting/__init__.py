"""Reporting: the leaderboard row and its CSV, aggregates, plots, the report page, published tables.

Reads and writes the files under a results folder; never runs the command line.  May import
``metarl_bench.core`` and ``metarl_bench.evaluation``.
"""
