"""``python -m metarl_bench.plots``: the command lives in ``metarl_bench.running.tables``."""

from metarl_bench.running.tables import plots_main as main

if __name__ == "__main__":
    raise SystemExit(main())
