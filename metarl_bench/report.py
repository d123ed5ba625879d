"""``python -m metarl_bench.report``: the command lives in ``metarl_bench.running.tables``."""

from metarl_bench.running.tables import report_main as main

if __name__ == "__main__":
    raise SystemExit(main())
