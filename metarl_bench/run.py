"""``python -m metarl_bench.run``: the command lives in ``metarl_bench.running.run``."""

from metarl_bench.running.run import main as main

if __name__ == "__main__":
    raise SystemExit(main())
