import pandas as pd

from metarl_bench.reporting import published


def _rows(ret: float, low: float, high: float) -> pd.DataFrame:
    frame = pd.DataFrame([{"agent": "rl2", "env": "bernoulli-k5-h10", "return": ret,
                           "return_ci_low": low, "return_ci_high": high}])
    return frame.set_index(["agent", "env"])


def test_marks_use_the_paper_value_against_our_interval():
    # paper 6.7; our half-width 0.1, so agreement within sqrt(2) * 0.1 = 0.141
    assert published.cell(_rows(6.6, 6.5, 6.7), "rl2", "bernoulli-k5-h10", 6.7) == "6.6 / 6.7 ="
    assert published.cell(_rows(6.5, 6.4, 6.6), "rl2", "bernoulli-k5-h10", 6.7) == "6.5 / 6.7 ▼"
    assert published.cell(_rows(6.9, 6.8, 7.0), "rl2", "bernoulli-k5-h10", 6.7) == "6.9 / 6.7 ▲"
    assert published.cell(_rows(6.9, 6.8, 7.0), "rl2", "bernoulli-k5-h100", 78.7) == "– / 78.7"  # no row
    assert published.cell(_rows(6.9, 6.8, 7.0), None, "bernoulli-k5-h10", 6.5) == "– / 6.5"  # not implemented


def test_tables_cover_the_papers_grids_with_one_value_per_method():
    assert all(len(row) == len(published.TABLE1_AGENTS) for row in published.TABLE1.values())
    assert all(len(row) == len(published.TABLE2_AGENTS) for row in published.TABLE2.values())
    text = published.table1(_rows(6.6, 6.5, 6.7))
    assert len(text.splitlines()) == 2 + 9
    assert "| n = 10, k = 5 |" in text and "6.6 / 6.7 =" in text
    mdp = published.table2(_rows(6.6, 6.5, 6.7)).splitlines()
    assert len(mdp) == 2 + len(published.TABLE2_AGENTS)
    # Random's row of Table 1 is the expected return of uniform play, n / 2 (up to sampling)
    assert all(abs(row[0] - n / 2) <= 0.01 * n for (_, n), row in published.TABLE1.items())
