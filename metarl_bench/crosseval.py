"""``python -m metarl_bench.crosseval``: the command lives in ``metarl_bench.running.tables``."""

from metarl_bench.running.tables import crosseval_main as main

if __name__ == "__main__":
    raise SystemExit(main())
