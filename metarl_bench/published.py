"""``python -m metarl_bench.published``: the command lives in ``metarl_bench.running.tables``."""

from metarl_bench.running.tables import published_main as main

if __name__ == "__main__":
    raise SystemExit(main())
