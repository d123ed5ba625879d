"""The leaderboard row."""

from __future__ import annotations

import json
from typing import Any

from metarl_bench.core.registry import get_spec


def env_spec_json(env: str, params: dict[str, Any]) -> str:
    """The distribution's gymnasium id and parameters, as a row records them (JSON)."""
    return json.dumps({"id": get_spec(env).gym_id, "kwargs": params}, sort_keys=True)
