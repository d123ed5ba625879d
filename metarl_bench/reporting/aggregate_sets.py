"""What the aggregates are taken over: the newest leaderboard row per contestant, the sets of
distributions that ``--env`` names, and the contestants of a set (see
:mod:`metarl_bench.reporting.aggregate` for the rules)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import pandas as pd

from metarl_bench.reporting import leaderboard
from metarl_bench.reporting.aggregate_files import filled


class AggregateError(ValueError):
    """Bad input to the aggregates: an unknown set name, a results folder that does not fit."""


def train_seeds(df: pd.DataFrame) -> pd.Series:
    """The training seed of each row as text ("" for agents that do not learn)."""
    seeds = [str(int(float(s))) if filled(s) else "" for s in df["train_seed"]]
    return pd.Series(seeds, index=df.index, dtype="object")


def current_rows(df: pd.DataFrame) -> pd.DataFrame:
    """The newest row per (agent, train_env, training seed, env), the seed as text."""
    df = df.assign(train_seed=train_seeds(df), train_env=df["train_env"].astype("string").fillna("").astype(object))
    return leaderboard.newest(df)


@lru_cache(maxsize=512)
def default_train_env(agent: str, env: str) -> str:
    """The distribution ``agent`` is meta-trained on when it plays ``env`` by default ("" if it does not learn)."""
    from metarl_bench.core.registry import get_agent_factory, get_spec, make_agent

    try:
        if not getattr(get_agent_factory(agent), "learns", False):
            return ""
        return make_agent(agent, get_spec(env).make()).default_train_env(env)
    except Exception:  # an agent that cannot be built for env has no row on it either
        return env


def parse_sets(expr: str | None) -> list[tuple[str, list[str]]]:
    """``--env`` of the aggregates: comma list of suites, distributions, or ``a+b`` sets;
    None: every registered suite.  AggregateError naming what is allowed otherwise."""
    from metarl_bench.core.registry import list_families, list_suites

    suites, families = list_suites(), list_families()
    if not expr:
        return [(s, list_families(s)) for s in suites]
    sets = []
    for item in (p.strip() for p in expr.split(",")):
        if not item:
            continue
        if item in suites:
            sets.append((item, list_families(item)))
            continue
        names = [n.strip() for n in item.split("+")]
        unknown = [n for n in names if n not in families]
        if unknown:
            raise AggregateError(
                f"unknown suite or distribution {unknown[0]!r} in --env {item!r}; suites: {', '.join(suites)}; "
                f"distributions: {', '.join(families)} (join distributions with '+' to make a set)"
            )
        sets.append(("+".join(dict.fromkeys(names)), list(dict.fromkeys(names))))
    if not sets:
        raise AggregateError("--env names no suite or distribution")
    return list(dict(sets).items())


@dataclass
class Contestant:
    agent: str
    train_seed: str  # "" for agents that do not learn
    rows: dict[str, pd.Series]  # distribution -> its newest row
    missing: list[str]


def contestants(rows: pd.DataFrame, envs: list[str], agents: list[str] | None = None) -> list[Contestant]:
    """Every (agent, training seed) with a row on some distribution of ``envs``; per distribution
    the row of the agent's default training distribution (see :mod:`metarl_bench.reporting.aggregate`)."""
    rows = rows[rows["env"].isin(envs)]
    if agents is not None:
        rows = rows[rows["agent"].isin(agents)]
    found = []
    for agent in sorted(rows["agent"].unique()):
        mine = rows[rows["agent"] == agent]
        for seed in sorted(mine["train_seed"].unique(), key=lambda s: (s != "", int(s) if s != "" else 0)):
            chosen, missing = {}, []
            for env in envs:
                hit = mine[(mine["env"] == env) & (mine["train_seed"] == seed)]
                if seed != "":
                    hit = hit[hit["train_env"] == default_train_env(agent, env)]
                if len(hit):
                    chosen[env] = hit.iloc[-1]
                else:
                    missing.append(env)
            if chosen:
                found.append(Contestant(agent, seed, chosen, missing))
    return found


def scored_envs(rows: pd.DataFrame, envs: list[str]) -> tuple[list[str], list[str]]:
    """(the set's distributions that are aggregated, those excluded for every contestant because
    their rows carry no score: no Bayes reference, or none told from random play).  A
    distribution without any row stays in: every contestant then lacks it (incomplete)."""
    excluded = [e for e in envs if (rows["env"] == e).any() and rows.loc[rows["env"] == e, "score"].isna().all()]
    return [e for e in envs if e not in excluded], excluded
