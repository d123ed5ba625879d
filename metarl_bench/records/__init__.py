"""Records: what one result row is, and how it is kept.

The typed leaderboard row (its columns, types and checks: the schema every reader takes),
results CSV files validated on every read and appended atomically, and the provenance every
row carries (command, version, commit, device, time).  May import ``metarl_bench.core`` only.
"""
