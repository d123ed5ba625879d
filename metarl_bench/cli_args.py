"""argparse value types shared by the command-line tools (run, probe): clear messages on bad input."""

from __future__ import annotations

import argparse


def int_list(text: str) -> tuple[int, ...]:
    """A comma list of non-negative integers, e.g. seeds ``0,1,2``."""
    try:
        values = tuple(int(p) for p in text.split(",") if p.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a comma list of integers, got {text!r}") from None
    if not values or any(v < 0 for v in values):
        raise argparse.ArgumentTypeError(f"expected non-negative integers, got {text!r}")
    if len(set(values)) != len(values):
        raise argparse.ArgumentTypeError(f"expected distinct integers (a repeated seed replays one run), got {text!r}")
    return values


def bounded_int(minimum: int):
    """An argparse type: an integer >= ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {value}")
        return value

    return parse


positive_int = bounded_int(1)
non_negative_int = bounded_int(0)
