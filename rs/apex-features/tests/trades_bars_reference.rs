//! Property tests: TFI against an O(n^2) reference, bars against a direct per-bucket reference, and MTFA causality
//! (changing any input after time T changes no bar row whose close is at or before T).

use apex_core::{Scale, TradeRows};
use std::collections::BTreeMap;

use apex_features::bars::{BarParams, BarSource, BarTableStream, UpdateSeries, bar_features};
use apex_features::trades::{TradeColumns, TradeFeatureStream, TradeFlow, size_decimals, trade_features};
use apex_features::{MINUTE, SECOND};
use proptest::prelude::*;

/// Trades of two symbols, time non-decreasing, often several at the same ts, sizes on a 0.001 grid.
fn trades(max_step: i64, n: usize) -> impl Strategy<Value = TradeRows> {
    prop::collection::vec((0..max_step, 0_u32..2, any::<bool>(), 900_u32..1100, 1_i64..5000), 1..n).prop_map(|rows| {
        let mut t = TradeRows::default();
        let mut now = 1_700_000_000 * SECOND;
        for (step, symbol, buy, price, size) in rows {
            now += step;
            t.push(now, symbol, if buy { 1 } else { -1 }, f64::from(price) / 10.0, size as f64 / 1000.0, "");
        }
        t
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn tfi_matches_quadratic_reference(t in trades(3 * SECOND, 120)) {
        let windows = [SECOND, 10 * SECOND, 4_500_000_000];
        let got = trade_features(&TradeColumns::from(&t), &windows).unwrap();
        let scale = Scale::new(3).unwrap();
        let mut flows = [TradeFlow::new(scale, &windows).unwrap(), TradeFlow::new(scale, &windows).unwrap()];
        for i in 0..t.ts.len() {
            prop_assert_eq!(got.signed_volume[i], f64::from(t.side[i]) * t.size[i]);
            let flow = &mut flows[t.symbol[i] as usize];
            flow.push(t.ts[i], t.side[i], scale.from_f64(t.size[i]).unwrap()).unwrap();
            for (w, &window) in windows.iter().enumerate() {
                let (mut signed, mut total) = (0_i64, 0_i64);
                for j in 0..=i {
                    if t.symbol[j] == t.symbol[i] && t.ts[j] > t.ts[i] - window {
                        let units = (t.size[j] * 1000.0).round() as i64;
                        signed += i64::from(t.side[j]) * units;
                        total += units;
                    }
                }
                let expected = signed as f64 / total as f64;
                prop_assert_eq!(got.tfi[w].1[i], expected, "trade {} window {}", i, window);
                prop_assert_eq!(flow.tfi()[w].to_bits(), expected.to_bits(), "streaming trade {}", i);
            }
        }
    }

    #[test]
    fn tfi_of_a_table_in_pieces_is_tfi_of_it_whole(t in trades(3 * SECOND, 120), cuts in prop::collection::vec(0_usize..120, 0..6)) {
        let windows = [SECOND, 4_500_000_000];
        let whole = trade_features(&TradeColumns::from(&t), &windows).unwrap();
        let n = t.ts.len();
        let mut bounds: Vec<usize> = cuts.into_iter().map(|c| c.min(n)).chain([0, n]).collect();
        bounds.sort_unstable();
        let mut stream = TradeFeatureStream::new(Scale::new(size_decimals(&t.size)).unwrap(), &windows).unwrap();
        let (mut signed, mut tfi) = (Vec::new(), vec![Vec::new(); windows.len()]);
        for piece in bounds.windows(2) {
            let (a, b) = (piece[0], piece[1]);
            let cols = TradeColumns {
                ts: &t.ts[a..b], symbol: &t.symbol[a..b], side: &t.side[a..b], price: &t.price[a..b], size: &t.size[a..b],
            };
            let got = stream.push(&cols).unwrap();
            prop_assert_eq!(&got.ts[..], &t.ts[a..b]);
            signed.extend(got.signed_volume);
            for (column, (_, values)) in tfi.iter_mut().zip(got.tfi) {
                column.extend(values);
            }
        }
        prop_assert_eq!(signed, whole.signed_volume);
        for (column, (_, values)) in tfi.iter().zip(&whole.tfi) {
            prop_assert_eq!(column.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), values.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
        }
    }

    #[test]
    fn bars_of_trades_and_updates_in_pieces_are_the_bars_of_them_whole(
        t in trades(40 * SECOND, 150),
        update_rows in prop::collection::vec((any::<prop::sample::Index>(), -90 * SECOND..90 * SECOND, any::<bool>(), 0_u32..3, -50_i32..50), 0..120),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
        order in prop::collection::vec(any::<bool>(), 16),
    ) {
        // Updates at the times of trades (so pieces may split the rows of one time between them) or up to 90 s
        // from one (before the first bar, after the last), of the trades' two symbols and a third without trades;
        // some values undefined.
        let mut rows: Vec<(i64, u32, f64)> = update_rows
            .into_iter()
            .map(|(at, offset, exact, code, v)| {
                let trade_ts = t.ts[at.index(t.ts.len())];
                let value = if v % 7 == 0 { f64::NAN } else { f64::from(v) / 10.0 };
                (if exact { trade_ts } else { trade_ts + offset }, code, value)
            })
            .collect();
        rows.sort_by_key(|&(ts, _, _)| ts);
        let ts: Vec<i64> = rows.iter().map(|r| r.0).collect();
        let symbol: Vec<u32> = rows.iter().map(|r| r.1).collect();
        let value: Vec<f64> = rows.iter().map(|r| r.2).collect();
        let updates = UpdateSeries { ts: &ts, symbol: &symbol, ofi_l1: &value, ofi_l5: &value, pressure_5: &value, spread_bps: &value };
        let params = BarParams { interval: MINUTE, rv_window: 3, higher: vec![5 * MINUTE], vmd: None };
        let whole = bar_features(&BarSource::Trades(TradeColumns::from(&t)), Some(&updates), &params).unwrap();

        let mut last = BTreeMap::new();
        for (&code, &at) in t.symbol.iter().zip(&t.ts) {
            last.insert(code, at);
        }
        // Each input cut at the same random fractions of its rows, the pieces pushed in a random interleaving.
        let bounds = |n: usize| -> Vec<usize> {
            let mut b: Vec<usize> = cuts.iter().map(|c| c.index(n + 1)).chain([0, n]).collect();
            b.sort_unstable();
            b
        };
        let (trade_bounds, update_bounds) = (bounds(t.ts.len()), bounds(ts.len()));
        let mut stream = BarTableStream::new(params.clone(), true, &last).unwrap();
        let (mut next_trade, mut next_update) = (1, 1);
        for &trade_next in order.iter().cycle().take(2 * order.len() + trade_bounds.len() + update_bounds.len()) {
            if trade_next && next_trade < trade_bounds.len() {
                let (a, b) = (trade_bounds[next_trade - 1], trade_bounds[next_trade]);
                let piece = TradeColumns { ts: &t.ts[a..b], symbol: &t.symbol[a..b], side: &t.side[a..b], price: &t.price[a..b], size: &t.size[a..b] };
                stream.push_source(&BarSource::Trades(piece)).unwrap();
                next_trade += 1;
                if next_trade == trade_bounds.len() {
                    stream.close_source();
                }
            } else if !trade_next && next_update < update_bounds.len() {
                let (a, b) = (update_bounds[next_update - 1], update_bounds[next_update]);
                let piece = UpdateSeries { ts: &ts[a..b], symbol: &symbol[a..b], ofi_l1: &value[a..b], ofi_l5: &value[a..b], pressure_5: &value[a..b], spread_bps: &value[a..b] };
                stream.push_updates(&piece).unwrap();
                next_update += 1;
                if next_update == update_bounds.len() {
                    stream.close_updates();
                }
            }
        }
        // Whatever the interleaving left, then the table.
        for k in next_trade..trade_bounds.len() {
            let (a, b) = (trade_bounds[k - 1], trade_bounds[k]);
            let piece = TradeColumns { ts: &t.ts[a..b], symbol: &t.symbol[a..b], side: &t.side[a..b], price: &t.price[a..b], size: &t.size[a..b] };
            stream.push_source(&BarSource::Trades(piece)).unwrap();
        }
        for k in next_update..update_bounds.len() {
            let (a, b) = (update_bounds[k - 1], update_bounds[k]);
            let piece = UpdateSeries { ts: &ts[a..b], symbol: &symbol[a..b], ofi_l1: &value[a..b], ofi_l5: &value[a..b], pressure_5: &value[a..b], spread_bps: &value[a..b] };
            stream.push_updates(&piece).unwrap();
        }
        let pieces = stream.finish().unwrap();
        prop_assert_eq!(&pieces.ts, &whole.ts);
        prop_assert_eq!(&pieces.symbol, &whole.symbol);
        for ((name, got), (_, expected)) in pieces.columns.iter().zip(&whole.columns) {
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            prop_assert_eq!(bits(got), bits(expected), "column {}", name);
        }
    }

    #[test]
    fn a_piece_before_the_time_an_input_reached_is_refused(t in trades(40 * SECOND, 20)) {
        let params = BarParams { interval: MINUTE, rv_window: 3, higher: vec![], vmd: None };
        let latest = *t.ts.last().unwrap();
        let last: BTreeMap<u32, i64> = [(0, latest), (1, latest)].into();
        let mut stream = BarTableStream::new(params, false, &last).unwrap();
        stream.push_source(&BarSource::Trades(TradeColumns::from(&t))).unwrap();
        let early = TradeColumns { ts: &[latest - 1], symbol: &[0], side: &[1], price: &[1.0], size: &[1.0] };
        let refused = stream.push_source(&BarSource::Trades(early));
        prop_assert!(matches!(refused, Err(apex_features::FeatureError::Unsorted { row: 0, .. })), "{:?}", refused);
    }

    #[test]
    fn bars_match_bucket_reference(t in trades(40 * SECOND, 150)) {
        let params = BarParams { interval: MINUTE, rv_window: 3, higher: vec![5 * MINUTE], vmd: None };
        let got = bar_features(&BarSource::Trades(TradeColumns::from(&t)), None, &params).unwrap();
        for row in 0..got.len() {
            let (open, symbol) = (got.ts[row], got.symbol[row]);
            let inside: Vec<usize> = (0..t.ts.len())
                .filter(|&i| t.symbol[i] == symbol && t.ts[i] >= open && t.ts[i] < open + MINUTE)
                .collect();
            let before = (0..t.ts.len()).rfind(|&i| t.symbol[i] == symbol && t.ts[i] < open);
            let volume: f64 = inside.iter().map(|&i| t.size[i]).sum();
            prop_assert!((got.column("volume").unwrap()[row] - volume).abs() < 1e-9);
            let close = inside.last().or(before.as_ref()).map(|&i| t.price[i]).unwrap();
            prop_assert_eq!(got.column("close").unwrap()[row], close);
            let high = if inside.is_empty() { close } else { inside.iter().map(|&i| t.price[i]).fold(f64::MIN, f64::max) };
            prop_assert_eq!(got.column("high").unwrap()[row], high);
            let buy: f64 = inside.iter().filter(|&&i| t.side[i] > 0).map(|&i| t.size[i]).sum();
            prop_assert!((got.column("buy_volume").unwrap()[row] - buy).abs() < 1e-9);
            if let Some(&p) = before.as_ref() {
                let ret = (close / t.price[p]).ln();
                prop_assert!((got.column("ret").unwrap()[row] - ret).abs() < 1e-12);
            }
        }
    }

    #[test]
    fn mtfa_never_uses_data_after_a_rows_close(
        t in trades(50 * SECOND, 200),
        cut in 0.0_f64..1.0,
        shift in 1_u32..50,
        extra in 0_usize..20,
    ) {
        let params = BarParams { interval: MINUTE, rv_window: 4, higher: vec![5 * MINUTE, 15 * MINUTE], vmd: None };
        let first = t.ts[0];
        let last = *t.ts.last().unwrap();
        let cutoff = first + ((last - first) as f64 * cut) as i64;
        // Change every trade after the cutoff and append more after it.
        let mut changed = t.clone();
        for i in 0..changed.ts.len() {
            if changed.ts[i] > cutoff {
                changed.price[i] += f64::from(shift) / 10.0;
                changed.size[i] += 0.5;
                changed.side[i] = -changed.side[i];
            }
        }
        for k in 0..extra {
            changed.push(last + (k as i64 + 1) * 7 * SECOND, (k % 2) as u32, 1, 50.0 + k as f64, 2.0, "");
        }
        // Book updates every 3 s from the first trade, with made-up feature values; changed after the cutoff too.
        let update_ts: Vec<i64> = (0..((last - first) / (3 * SECOND) + 1)).map(|k| first + k * 3 * SECOND).collect();
        let update_symbol: Vec<u32> = (0..update_ts.len()).map(|k| (k % 2) as u32).collect();
        let value = |k: usize, ts: i64, bump: f64| {
            let base = ((k * 37) % 11) as f64 - 5.0;
            if ts > cutoff { base + bump } else { base }
        };
        let series = |bump: f64| -> Vec<f64> { update_ts.iter().enumerate().map(|(k, &ts)| value(k, ts, bump)).collect() };
        let (v0, v1) = (series(0.0), series(f64::from(shift)));
        let updates_a = UpdateSeries {
            ts: &update_ts,
            symbol: &update_symbol,
            ofi_l1: &v0,
            ofi_l5: &v0,
            pressure_5: &v0,
            spread_bps: &v0,
        };
        let updates_b = UpdateSeries { ofi_l1: &v1, ofi_l5: &v1, pressure_5: &v1, spread_bps: &v1, ..updates_a };
        let a = bar_features(&BarSource::Trades(TradeColumns::from(&t)), Some(&updates_a), &params).unwrap();
        let b = bar_features(&BarSource::Trades(TradeColumns::from(&changed)), Some(&updates_b), &params).unwrap();
        for row in 0..a.len() {
            if a.ts[row] + MINUTE > cutoff {
                continue;
            }
            let other = (0..b.len()).find(|&r| b.ts[r] == a.ts[row] && b.symbol[r] == a.symbol[row]);
            prop_assert!(other.is_some(), "row {} vanished", row);
            let other = other.unwrap();
            for ((name, x), (_, y)) in a.columns.iter().zip(&b.columns) {
                prop_assert_eq!(x[row].to_bits(), y[other].to_bits(), "column {} at ts {} changed", name, a.ts[row]);
            }
        }
        // Rows closed by the cutoff that only the changed input has can only be empty bars filled after the
        // symbol's last bar in the original (the original series simply ends earlier).
        let volume_b = b.column("volume").unwrap();
        for r in (0..b.len()).filter(|&r| b.ts[r] + MINUTE <= cutoff) {
            if (0..a.len()).any(|x| a.ts[x] == b.ts[r] && a.symbol[x] == b.symbol[r]) {
                continue;
            }
            let last_a = (0..a.len()).filter(|&x| a.symbol[x] == b.symbol[r]).map(|x| a.ts[x]).max();
            prop_assert!(last_a.is_none_or(|l| l < b.ts[r]), "row at {} appeared inside the series", b.ts[r]);
            prop_assert_eq!(volume_b[r], 0.0);
        }
    }
}
