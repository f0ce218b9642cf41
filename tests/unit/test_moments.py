"""Market moments: kernels against simple references and known answers, and the full set on simulated and toy data."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from apexctl import _core
from apexctl.forge import moments as mom
from apexctl.forge.fetch import FileFetch, fetch_files
from apexctl.forge.io import read_table
from apexctl.schemas import BOOK, TRADES
from tests.reference import moments_reference as reference

NS = 1_000_000_000
ROOT = Path(__file__).resolve().parents[2]


def test_kurtosis_of_iid_normal_is_zero_and_of_laplace_is_three():
    rng = np.random.default_rng(1)
    assert abs(mom.excess_kurtosis(rng.normal(size=200_000))) < 0.05
    assert abs(mom.excess_kurtosis(rng.laplace(size=200_000)) - 3.0) < 0.2
    assert np.isnan(mom.excess_kurtosis(np.ones(100)))
    assert np.isnan(mom.excess_kurtosis(np.array([1.0, np.nan, 2.0])))


def test_sign_acf_of_a_markov_chain_is_its_persistence_to_the_power_lag():
    rng = np.random.default_rng(2)
    stay = 0.8
    flips = rng.random(200_000) > stay
    signs = np.where(np.cumsum(flips) % 2 == 0, 1.0, -1.0)
    for lag in (1, 2, 5):
        assert abs(mom.autocorrelation(signs, lag) - (2 * stay - 1) ** lag) < 0.02
    iid = rng.choice([-1.0, 1.0], size=100_000)
    assert abs(mom.autocorrelation(iid, 1)) < 0.02


def _acf_reference(x: list[float], lag: int) -> float:
    values = [v for v in x if np.isfinite(v)]
    if len(x) < lag + 8 or not values:
        return float("nan")
    mean = sum(values) / len(values)
    var = sum((v - mean) ** 2 for v in values) / len(values)
    pairs = [
        (x[i] - mean) * (x[i + lag] - mean)
        for i in range(len(x) - lag)
        if np.isfinite(x[i]) and np.isfinite(x[i + lag])
    ]
    if var <= 1e-300 or not pairs:
        return float("nan")
    return sum(pairs) / len(pairs) / var


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.one_of(st.floats(-100, 100), st.just(float("nan"))), min_size=0, max_size=60),
    st.integers(1, 5),
)
def test_autocorrelation_matches_a_loop_reference(x, lag):
    got = mom.autocorrelation(np.array(x, dtype=float), lag)
    want = _acf_reference(x, lag)
    if np.isnan(want):
        assert np.isnan(got) or abs(got) < 1e9
    else:
        assert np.isclose(got, want, rtol=1e-6, atol=1e-9)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 50), min_size=1, max_size=30), st.lists(st.integers(-5, 60), max_size=20))
def test_last_at_or_before_matches_a_loop(ts, at):
    ts_arr = np.array(sorted(ts), dtype=np.int64)
    values = np.arange(len(ts_arr), dtype=float)
    got = mom.last_at_or_before(ts_arr, values, np.array(at, dtype=np.int64))
    for g, t in zip(got, at, strict=True):
        earlier = [i for i, v in enumerate(ts_arr) if v <= t]
        assert (np.isnan(g) and not earlier) or g == earlier[-1]


def _replay_reference(messages, samples):
    """Dict replay: the book after every message at or before each sample time."""
    out = []
    book: dict[tuple[int, float], float] = {}
    i = 0
    for sample_index, t in enumerate(samples):
        while i < len(messages) and messages[i][0] <= t:
            _ts, snapshot, levels = messages[i]
            if snapshot:
                book = {}
            for side, price, size in levels:
                if size == 0:
                    book.pop((side, price), None)
                else:
                    book[(side, price)] = size
            i += 1
        out += [(sample_index, side, price, size) for (side, price), size in book.items()]
    return sorted(out)


message_strategy = st.tuples(
    st.integers(0, 3),  # time step after the previous message
    st.booleans(),  # snapshot?
    st.lists(st.tuples(st.sampled_from([1, -1]), st.integers(1, 6), st.sampled_from([0.0, 1.0, 2.5])), max_size=5),
)


def _profile_inputs(raw, sample_step):
    """(messages as the reference replays them, level_profile's arguments) of drawn messages."""
    messages, ts, rows = [], 0, []
    for n, (step, wants_snapshot, levels) in enumerate(raw):
        ts += step
        snapshot = wants_snapshot or n == 0
        # One row per (side, price) within a message, as on the wire.
        unique = list({(side, price): (side, float(price), size) for side, price, size in levels}.values())
        messages.append((ts, snapshot, unique))
        for side, price, size in unique or [(0, float("nan"), float("nan"))]:
            rows.append((ts, n, snapshot, side, price, size))
    samples = np.arange(0, ts + sample_step + 1, sample_step, dtype=np.int64)
    cols = list(zip(*rows, strict=True))
    arrays = (
        np.array(cols[0], dtype=np.int64),
        np.array(cols[1]),
        np.array(cols[2], dtype=bool),
        np.array(cols[3], dtype=np.int8),
        np.array(cols[4], dtype=float),
        np.array(cols[5], dtype=float),
        samples,
    )
    return messages, arrays


@settings(max_examples=80, deadline=None)
@given(st.lists(message_strategy, min_size=1, max_size=15), st.integers(1, 4))
def test_level_profile_matches_a_dict_replay(raw, sample_step):
    messages, arrays = _profile_inputs(raw, sample_step)
    samples = arrays[-1]
    got = mom.level_profile(*arrays)
    got_rows = sorted(zip(got["sample"], got["side"], got["price"], got["size"], strict=True))
    want = _replay_reference(messages, samples)
    assert [(int(a), int(b), float(c), float(d)) for a, b, c, d in got_rows] == want


@settings(max_examples=80, deadline=None)
@given(st.lists(message_strategy, min_size=1, max_size=15), st.integers(1, 4), st.integers(1, 6))
def test_level_profile_in_price_bands_is_the_profile_in_one(raw, sample_step, band_rows):
    """Bands of prices (how a week's book fits in memory) give the one-band rows in the one-band order, so sums over
    them (the depth moments) are the same to the bit."""
    _, arrays = _profile_inputs(raw, sample_step)
    whole = mom.level_profile(*arrays)
    original = mom.BAND_ROWS
    mom.BAND_ROWS = band_rows
    try:
        banded = mom.level_profile(*arrays)
    finally:
        mom.BAND_ROWS = original
    assert banded.equals(whole)


@settings(max_examples=80, deadline=None)
@given(st.lists(message_strategy, min_size=1, max_size=15), st.integers(1, 4), st.data())
def test_level_profile_in_pieces_is_the_profile_in_one(raw, sample_step, data):
    """A book given in consecutive pieces cut between two times (a week's book, a window at a time) gives the rows of
    it given whole, in the same order, with levels carried over the cuts and snapshots on either side of them."""
    _, arrays = _profile_inputs(raw, sample_step)
    *columns, samples = arrays
    whole = mom.level_profile(*arrays)
    ts = columns[0]
    starts = np.flatnonzero(np.r_[True, ts[1:] != ts[:-1]])
    cuts = sorted(data.draw(st.sets(st.sampled_from(starts[1:].tolist()))) if len(starts) > 1 else [])
    stream = mom.LevelStream(samples)
    for lo, hi in zip([0, *cuts], [*cuts, len(ts)], strict=True):
        stream.push(*(column[lo:hi] for column in columns))
    assert stream.finish().equals(whole)


def _toy_market(seconds: int = 600):
    """A book that never changes (bid 100.0 x 2, 99.9 x 3; ask 100.1 x 1, 100.2 x 4) and alternating trades."""
    book = pl.DataFrame(
        {
            "ts": [0, 0, 0, 0, seconds * NS],
            "kind": ["snapshot"] * 4 + ["delta"],
            "side": [1, 1, -1, -1, 1],
            "price": [100.0, 99.9, 100.1, 100.2, 99.9],
            "size": [2.0, 3.0, 1.0, 4.0, 3.0],
            "update_id": [1, 1, 1, 1, 2],
            "seq": [1, 1, 1, 1, 2],
        }
    )
    n = seconds
    trades = pl.DataFrame(
        {
            "ts": np.arange(n, dtype=np.int64) * NS + 1,
            "side": np.where(np.arange(n) % 2 == 0, 1, -1).astype(np.int8),
            "price": np.where(np.arange(n) % 2 == 0, 100.1, 100.0),
            "size": np.full(n, 0.5),
        }
    )
    return trades, book


def test_return_acf_of_a_mid_that_trends_is_its_autoregression():
    """A mid whose 10-s log returns are AR(1) with coefficient 0.4, one snapshot per second: ret_acf_1 and _5 are
    0.4 and 0.4^5 (the moments a fitted DSG must match, so it cannot trend where the target does not)."""
    rng = np.random.default_rng(4)
    steps = 20_000
    returns = np.empty(steps)
    previous = 0.0
    for i, shock in enumerate(rng.normal(0, 1e-4, steps)):
        previous = 0.4 * previous + shock
        returns[i] = previous
    # Each 10-s return happens at the start of its block, so any 10-s grid sees exactly one of them per step.
    mid = 1000.0 * np.exp(np.repeat(np.cumsum(returns), 10))
    n = len(mid)
    ts = np.repeat(np.arange(n, dtype=np.int64) * NS + 1, 2)
    bid, ask = np.round(mid - 0.05, 2), np.round(mid + 0.05, 2)
    book = pl.DataFrame(
        {
            "ts": ts,
            "kind": ["snapshot"] * (2 * n),
            "side": np.tile([1, -1], n).astype(np.int8),
            "price": np.column_stack([bid, ask]).ravel(),
            "size": np.ones(2 * n),
            "update_id": np.repeat(np.arange(1, n + 1), 2),
            "seq": np.repeat(np.arange(1, n + 1), 2),
        }
    )
    trades = pl.DataFrame({"ts": [1], "side": [1], "price": [1000.0], "size": [1.0]})
    m = mom.compute(trades, book, None)
    assert abs(m["ret_acf_1"] - 0.4) < 0.03
    assert abs(m["ret_acf_5"] - 0.4**5) < 0.03


def test_toy_market_has_the_known_moments():
    trades, book = _toy_market()
    m = mom.compute(trades, book, None, mom.MomentConfig(depth_levels=(1, 2, 20)))
    spread = 0.1 / 100.05 * 1e4
    assert np.isclose(m["spread_mean_bps"], spread)
    # A constant one-tick spread spreads evenly over [0.5, 1.5] ticks (see lattice_quantiles).
    assert np.isclose(m["spread_q50_bps"], spread, rtol=0.01)
    assert np.isclose(m["spread_q10_bps"], 0.6 * spread, rtol=0.01)
    assert np.isclose(m["spread_q90_bps"], 1.4 * spread, rtol=0.01)
    assert m["vol_10s_bps"] == 0.0
    assert np.isclose(m["sign_acf_1"], -1.0)
    assert np.isclose(m["sign_acf_20"], 1.0)
    assert np.isclose(m["trades_per_min_log"], np.log(60.0), atol=0.01)
    assert np.isclose(m["size_log_mean"], np.log(0.5))
    assert m["size_log_std"] == 0.0
    # Best level: bids 2, asks 1 -> mean 1.5; best two: 5 and 5; deeper than the book stays at everything.
    assert np.isclose(m["depth_l1_log"], np.log(1.5))
    assert np.isclose(m["depth_l2_log"], np.log(5.0))
    assert np.isclose(m["depth_l20_log"], np.log(5.0))
    assert m["impact_small_bps"] == 0.0
    assert np.isnan(m["bar_range_bps"]), "no bars given"


def test_empty_and_tiny_inputs_give_nan_not_errors():
    trades, book = _toy_market()
    m = mom.compute(trades.head(0), book, None)
    assert np.isnan(m["sign_acf_1"])
    assert np.isfinite(m["spread_mean_bps"])
    m = mom.compute(trades, book.head(0), None)
    assert all(np.isnan(v) for v in m.values())


def test_simulated_market_moments_are_finite_and_deterministic():
    a = mom.from_sim_output(_core.sim_run("SOLUSDT", seed=5, hours=0.2))
    b = mom.from_sim_output(_core.sim_run("SOLUSDT", seed=5, hours=0.2))
    assert a.keys() == b.keys()
    assert np.array_equal(list(a.values()), list(b.values()), equal_nan=True)
    assert set(a) == set(mom.MomentConfig().names())
    finite = [k for k, v in a.items() if np.isfinite(v)]
    assert len(finite) == len(a), [k for k in a if k not in finite]
    assert a["spread_mean_bps"] > 0
    assert a["sign_acf_1"] > 0, "order splitting and herding make trade signs persistent"
    assert a["depth_l20_log"] > a["depth_l5_log"] > a["depth_l1_log"]


def test_lattice_quantiles_slide_with_the_shares_and_match_continuous_data():
    ones_and_twos = np.array([1.0] * 70 + [2.0] * 30)
    median = mom.lattice_quantiles(ones_and_twos, [0.5])[0]
    more_twos = mom.lattice_quantiles(np.array([1.0] * 60 + [2.0] * 40), [0.5])[0]
    assert 1.0 < median < more_twos < 1.5
    rng = np.random.default_rng(3)
    continuous = rng.uniform(0.5, 10.5, 100_000)
    lattice = np.round(continuous)
    got = mom.lattice_quantiles(lattice, [0.1, 0.5, 0.9])
    assert np.allclose(got, np.quantile(continuous, [0.1, 0.5, 0.9]), atol=0.05)
    assert np.isnan(mom.lattice_quantiles(np.array([np.nan, -1.0]), [0.5])).all()


@given(
    st.lists(st.one_of(st.integers(-2, 40), st.just(np.nan), st.just(np.inf)), max_size=80),
    st.sampled_from([0.5, 0.01, 3.0]),
    st.integers(1, 9),
)
@settings(max_examples=150, deadline=None)
def test_lattice_quantiles_a_block_at_a_time_equal_the_whole_array_to_the_bit(lots, step, block):
    """Ties cut by a block boundary still spread over their whole bin: the result is the direct computation's."""
    values = np.array(lots, dtype=float) * step
    qs = [0.1, 0.5, 0.9, 1 / 3]
    with _block(block):
        got = mom.lattice_quantiles(values, qs)
    assert np.array_equal(got, reference.lattice_quantiles(values, qs), equal_nan=True)


@given(
    st.lists(
        st.tuples(st.integers(0, 60), st.sampled_from([-1.0, 1.0]), st.sampled_from([0.5, 1.0, np.nan])), max_size=40
    ),
    st.lists(st.tuples(st.integers(0, 60), st.floats(-1, 1) | st.just(np.nan)), min_size=1, max_size=30),
    st.integers(1, 7),
)
@settings(max_examples=150, deadline=None)
def test_impact_moves_a_block_at_a_time_equal_the_whole_arrays(trades, mids, block):
    trades = [(t * mom.NS_PER_S, s, z) for t, s, z in sorted(trades)]
    mids = [(t * mom.NS_PER_S, m) for t, m in sorted(mids, key=lambda m: m[0])]
    trade_ts, side, size = (np.array(column) for column in zip(*trades, strict=True)) if trades else [np.empty(0)] * 3
    touch_ts, log_mid = (np.array(column) for column in zip(*mids, strict=True))
    with _block(block):
        move, sizes = mom.impact_moves(trade_ts.astype(np.int64), side, size, touch_ts, log_mid, 5.0)
    want_move, want_sizes = reference.impact_moves(trades, mids, 5.0)
    assert np.array_equal(move, want_move)
    assert np.array_equal(sizes, want_sizes)


@contextlib.contextmanager
def _block(rows: int):
    """forge.moments working through `rows` rows at a time, so that small arrays cross block boundaries."""
    saved, mom._BLOCK = mom._BLOCK, rows
    try:
        yield
    finally:
        mom._BLOCK = saved


def test_archive_format_tables_give_the_moments_and_the_replay_agrees_with_the_rust_book(tmp_path):
    """The real-data path: Bybit archive files (ob200 snapshot + deltas, trade CSV) through `fetch --source file`."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    raw = tmp_path / "raw"
    cmd = [
        sys.executable,
        str(root / "scripts/make_sample.py"),
        "-o",
        str(raw),
        "--hours",
        "0.1",
        "--symbols",
        "ETHUSDT",
    ]
    subprocess.run(cmd, check=True, capture_output=True)
    (archive,) = raw.glob("*_ob200.data.zip")
    (csv,) = raw.glob("*.csv.gz")
    fetch_files(FileFetch([str(archive)], str(tmp_path / "book.parquet")))
    fetch_files(FileFetch([str(csv)], str(tmp_path / "trades.parquet")))
    book = read_table(tmp_path / "book.parquet", BOOK).frame
    trades = read_table(tmp_path / "trades.parquet", TRADES).frame
    symbol, m = mom.for_symbol(trades, book, None, None)
    assert symbol == "ETHUSDT"
    assert m["spread_mean_bps"] > 0
    assert m["depth_l20_log"] > m["depth_l5_log"] > m["depth_l1_log"]
    for name in ("vol_10s_bps", "sign_acf_1", "trades_per_min_log", "size_log_q50", "impact_small_bps"):
        assert np.isfinite(m[name]), name
    # The vectorised replay's best bid and ask equal the Rust L2 book's at every sample time.
    arrays = mom._book_arrays(book.sort("ts", "update_id", maintain_order=True))
    view = mom.book_view(book)
    assert view is not None
    touch_ts, bid, ask = view.touch_ts, view.bid, view.ask
    samples = np.arange(touch_ts[0], touch_ts[-1], 2 * NS, dtype=np.int64)
    ts, update_id = arrays["ts"], arrays["update_id"]
    message = np.cumsum(np.r_[True, (update_id[1:] != update_id[:-1]) | (ts[1:] != ts[:-1])])
    levels = mom.level_profile(
        ts, message, arrays["kind"] == 0, arrays["side"], arrays["price"], arrays["size"], samples
    )
    best = levels.group_by("sample", "side").agg(
        pl.when(pl.col("side").first() > 0).then(pl.col("price").max()).otherwise(pl.col("price").min())
    )
    replay_bid = dict(best.filter(pl.col("side") == 1).select("sample", "price").iter_rows())
    replay_ask = dict(best.filter(pl.col("side") == -1).select("sample", "price").iter_rows())
    rust_bid = mom.last_at_or_before(touch_ts, bid, samples)
    rust_ask = mom.last_at_or_before(touch_ts, ask, samples)
    checked = 0
    for i in range(len(samples)):
        if np.isfinite(rust_bid[i]) and np.isfinite(rust_ask[i]):
            assert replay_bid[i] == rust_bid[i], i
            assert replay_ask[i] == rust_ask[i], i
            checked += 1
    assert checked > 100
