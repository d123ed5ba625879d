"""``python -m metarl_bench.leaderboard``: the command lives in ``metarl_bench.running.tables``."""

from metarl_bench.running.tables import leaderboard_main as main

if __name__ == "__main__":
    raise SystemExit(main())
