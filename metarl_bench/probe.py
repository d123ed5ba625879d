"""``python -m metarl_bench.probe``: the command lives in ``metarl_bench.running.probe``."""

from metarl_bench.running.probe import main as main

if __name__ == "__main__":
    raise SystemExit(main())
