"""No free lunch: the best of 1,000 random GP trees chosen on one simulated span has no significant edge on another
span of the same market, while the same check finds the edge planted in autocorrelated bars and the one the
book-priced makers' market (the pre-issue-14 simulator) hands out."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from apexctl.forge import efficiency as ef
from apexctl.forge.moments import autocorrelation

BOOK_PRICED = Path(__file__).resolve().parents[2] / "examples" / "dsg" / "book-priced-makers.json"
#: Two spans of 1-minute bars, each chosen on once and held out once.
HOURS = 12
SPAN_SEEDS = (1000, 1001)


def _planted(phi: float, sigma_bps: float) -> tuple[dict, dict]:
    return tuple(ef.ar1_bars(HOURS * 60, phi, sigma_bps, seed) for seed in SPAN_SEEDS)


def test_planted_bars_have_the_asked_autocorrelation_and_volatility():
    bars = ef.ar1_bars(200_000, 0.3, 9.0, 5)
    returns = np.diff(np.log(bars["close"]))
    assert abs(autocorrelation(returns, 1) - 0.3) < 0.01
    assert abs(returns.std() * 1e4 - 9.0) < 0.2
    assert (bars["high"] >= np.maximum(bars["open"], bars["close"])).all()
    assert (bars["low"] <= np.minimum(bars["open"], bars["close"])).all()
    walk = np.diff(np.log(ef.ar1_bars(200_000, 0.0, 9.0, 6)["close"]))
    assert abs(autocorrelation(walk, 1)) < 0.01


def test_random_trees_are_reproducible_and_leave_the_global_stream_alone():
    import random

    random.seed(42)
    expected = random.random()
    random.seed(42)
    names = ["close", "ret"]
    first = ef.random_trees(names, 50, seed=3)
    assert random.random() == expected
    assert first == ef.random_trees(names, 50, seed=3)
    assert first != ef.random_trees(names, 50, seed=4)
    assert len(first) == len(set(first))


def test_a_random_walk_gives_no_edge():
    a, b = _planted(0.0, 9.0)
    for fees in (True, False):
        check = ef.two_fold_edge(a, b, fees=fees)
        assert not check.significant, (fees, check.combined_t)
        assert check.first.trees > 900
        assert check.first.held_out_trades > 0


def test_the_check_finds_planted_autocorrelation():
    """The power the other tests rely on: lag-1 autocorrelation of 0.3 is found before costs, and 0.5 at 30 bps a
    minute survives fees (at 9 bps a minute it does not: 5.5 bps taker fees eat it, see scripts/bench/efficiency.py).
    Traded by the shared rule (risk scaled by |signal|) both give t of about 4.5, well past the 2.33 the check needs;
    a random walk gives none (above)."""
    before_fees = ef.two_fold_edge(*_planted(0.3, 9.0), fees=False)
    assert before_fees.combined_t > 1.5 * ef.SIGNIFICANT_T, before_fees
    after_fees = ef.two_fold_edge(*_planted(0.5, 30.0), fees=True)
    assert after_fees.combined_t > 1.5 * ef.SIGNIFICANT_T, after_fees


@pytest.mark.slow
def test_the_simulated_market_has_no_free_lunch():
    a, b = (ef.sim_bars("BTCUSDT", seed, HOURS) for seed in SPAN_SEEDS)
    for fees in (True, False):
        check = ef.two_fold_edge(a, b, fees=fees)
        assert not check.significant, (fees, check.combined_t, check.first.tree, check.second.tree)


@pytest.mark.slow
def test_the_check_sees_the_edge_of_makers_who_price_off_the_book():
    """Makers quoting around the book mid (the simulator before issue 14) let value reach prices a minute late: the
    trend that leaves is found before costs (at 1-minute bars 5.5 bps taker fees eat it)."""
    dsg = BOOK_PRICED.read_text()
    a, b = (ef.sim_bars("BTCUSDT", seed, HOURS, dsg) for seed in SPAN_SEEDS)
    check = ef.two_fold_edge(a, b, fees=False)
    assert check.significant, check
