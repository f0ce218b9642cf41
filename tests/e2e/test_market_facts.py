"""Market facts: the kernels against plain loops, known answers, and the simulated market's stylized facts per
symbol (BTCUSDT is asserted in rs/apex-sim/tests/market.rs; the 8-seed x 6-hour acceptance run is
scripts/bench/market_facts.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apexctl.forge import market_facts as mf

BOOK_PRICED = Path(__file__).resolve().parents[2] / "examples" / "dsg" / "book-priced-makers.json"

floats = st.floats(-5.0, 5.0, allow_nan=False)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.lists(st.tuples(floats, floats), min_size=12, max_size=60), st.integers(0, 4), st.integers(0, 4))
def test_shock_response_is_the_pooled_slope_of_a_plain_loop(pairs, lead, after):
    mid = np.array([p[0] for p in pairs])
    fv = np.array([p[1] for p in pairs])
    got = mf.shock_response(mid, fv, lead, after)
    num = den = 0.0
    count = 0
    for t in range(lead + 1, len(fv) - after):
        shock = fv[t] - fv[t - 1]
        num += shock * (mid[t + after] - mid[t - 1 - lead])
        den += shock * shock
        count += 1
    if count < 10 or den == 0:
        assert np.isnan(got)
    else:
        assert np.isclose(got, num / den, rtol=1e-9, atol=1e-12)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.lists(st.tuples(st.integers(0, 5), st.sampled_from([-1.0, 1.0]), st.floats(0.1, 9.0)), max_size=40))
def test_market_orders_group_runs_of_one_timestamp_and_side(rows):
    rows.sort(key=lambda r: r[0])
    ts = np.array([r[0] for r in rows], dtype=np.int64)
    side = np.array([r[1] for r in rows])
    size = np.array([r[2] for r in rows])
    got = mf.market_orders(ts, side, size)
    expected: list[list[float]] = []
    for t, s, q in rows:
        if expected and expected[-1][0] == t and expected[-1][1] == s:
            expected[-1][2] += q
        else:
            expected.append([t, s, q])
    want = np.array(expected, dtype=np.float64).reshape(-1, 3)
    for column, values in zip(got, want.T, strict=True):
        assert np.allclose(column, values)


def test_shock_response_sees_how_late_the_price_follows_value():
    rng = np.random.default_rng(1)
    fv = np.cumsum(rng.normal(size=200_000))
    for delay, share in ((0, 1.0), (5, 1.0), (6, 0.0), (30, 0.0)):
        mid = np.r_[np.zeros(delay), fv[: len(fv) - delay]]
        assert abs(mf.shock_response(mid, fv, 0, 5) - share) < 0.03, delay
    # A mid that closes its gap by half each second holds 1 - 0.5^6 of a shock after 5 s (the shock's own second too).
    smooth = np.zeros_like(fv)
    for t in range(1, len(fv)):
        smooth[t] = smooth[t - 1] + 0.5 * (fv[t] - smooth[t - 1])
    assert abs(mf.shock_response(smooth, fv, 0, 5) - (1 - 0.5**6)) < 0.03


def test_impact_concavity_of_square_root_and_linear_impact():
    rng = np.random.default_rng(2)
    n = 20_000
    size = rng.pareto(1.5, n) + 1.0
    side = rng.choice([-1.0, 1.0], n)
    order_ts = np.arange(n, dtype=np.int64) * 10 + 5
    for law, concave in ((np.sqrt, True), (lambda s: s, False)):
        # The mid is 100 before each order and moves by the law of its size, in bps, 1 unit of time after it.
        mid_ts = np.sort(np.r_[order_ts - 2, order_ts + 1])
        mid = np.empty(2 * n)
        mid[0::2] = 100.0
        mid[1::2] = 100.0 * (1 + side * law(size) / 1e4)
        small, large, ratio = mf.impact_concavity(order_ts, side, size, mid_ts, mid, horizon_us=1)
        assert 0 < small < large
        assert (ratio < 0.9) if concave else np.isclose(ratio, 1.0)


def test_targets_name_what_a_summary_misses():
    good = {t.name: 0.0 for t in mf.TARGETS} | {
        "shock_5s": 0.95,
        "sign_acf_1000": 0.01,
        "kurt_1m": 3.0,
        "absret_acf_min": 0.1,
        "impact_concavity": 0.5,
        "max_move_no_jump_bps": 50.0,
    }
    assert mf.failures(good) == []
    bad = good | {"acf1_mid_1m": 0.3, "crossed": 2.0}
    missed = mf.failures(bad)
    assert len(missed) == 2
    assert missed[0].startswith("acf1_mid_1m = 0.3")
    rows = [{"max_move_no_jump_bps": 10.0, "crossed": 1.0, "x": 1.0} | {f"absret_acf_{k}": 0.1 for k in mf.ABS_LAGS}]
    rows.append(rows[0] | {"max_move_no_jump_bps": 30.0, "x": 3.0, "absret_acf_4": -0.3})
    summary = mf.aggregate(rows)
    assert summary["max_move_no_jump_bps"] == 30.0, "the worst seed"
    assert summary["crossed"] == 2.0, "every crossed book counts"
    assert summary["x"] == 2.0, "others are averaged"
    assert np.isclose(summary["absret_acf_min"], -0.1), "the smallest lag of the seed-averaged ACF"


@pytest.mark.slow
@pytest.mark.parametrize("symbol", ["ETHUSDT", "SOLUSDT"])
def test_the_default_market_has_the_stylized_facts_and_no_lag(symbol):
    """Two seeds of 3 hours: tolerances are the sampling error of that span (the acceptance run is 8 x 6 h)."""
    summary, _ = mf.measure(symbol, seeds=(1, 2), hours=3.0)
    assert abs(summary["acf1_mid_1m"]) < 0.1, summary
    assert abs(summary["acf1_close_1m"]) < 0.1
    assert abs(summary["acf1_mid_10s"]) < 0.1
    assert summary["shock_5s"] >= 0.8
    assert summary["max_move_no_jump_bps"] <= mf.COLLAPSE_BPS
    assert summary["kurt_1m"] > 1
    assert summary["sign_acf_1000"] > 0
    assert summary["impact_concavity"] < 1
    assert summary["crossed"] == 0


def test_the_facts_see_makers_who_price_off_the_book():
    """The pre-issue-14 market (makers quoting around the book mid): value reaches the price late, returns trend."""
    summary, _ = mf.measure("BTCUSDT", seeds=(1,), hours=1.0, dsg_json=BOOK_PRICED.read_text())
    assert summary["shock_5s"] < 0.4
    assert summary["acf1_mid_10s"] > 0.15
    assert mf.failures(summary)
