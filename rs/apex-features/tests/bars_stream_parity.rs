//! Property test: streaming bar features over random kline series (gaps, flat bars, any start) equal the batch
//! `bar_features` over the same klines bit for bit, row by row.

use apex_features::MINUTE;
use apex_features::bars::{BarParams, BarSource, KlineColumns, bar_features};
use apex_features::bars_stream::{Kline, StreamingBarFeatures};
use proptest::prelude::*;

/// Klines of one symbol: strictly increasing aligned opens (steps of 1..=max_gap bars), sometimes flat bars.
fn klines(interval: i64, max_gap: i64, n: usize) -> impl Strategy<Value = Vec<Kline>> {
    (
        -5000_i64..5000,
        prop::collection::vec((1..=max_gap, 500_u32..1500, 0_u32..30, 0_u32..30, 0_u32..60, 0_u32..100), 1..n),
    )
        .prop_map(move |(start, rows)| {
            let mut ts = start * interval;
            let mut out = Vec::with_capacity(rows.len());
            for (step, mid, up, down, pos, volume) in rows {
                ts += step * interval;
                let low = f64::from(mid) / 10.0;
                let high = low + f64::from(up + down) / 10.0;
                let close = if up + down == 0 { low } else { low + (high - low) * f64::from(pos) / 60.0 };
                let volume = f64::from(volume) / 7.0;
                out.push(Kline {
                    ts,
                    open: low + (high - low) / 3.0,
                    high,
                    low,
                    close,
                    volume,
                    turnover: volume * close,
                });
            }
            out
        })
}

/// Bar parameters (1- or 2-minute bars, small rv windows, any subset of higher timeframes) and klines for them.
fn case() -> impl Strategy<Value = (BarParams, Vec<Kline>)> {
    (1_i64..3, 1_usize..6, prop::sample::subsequence(vec![2_i64, 3, 5, 12, 60], 0..=5), 1_i64..4).prop_flat_map(
        |(minutes, rv_window, multiples, max_gap)| {
            let interval = minutes * MINUTE;
            let params = BarParams { interval, rv_window, higher: multiples.iter().map(|m| m * interval).collect() };
            (Just(params), klines(interval, max_gap, 150))
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn stream_equals_batch((params, ks) in case()) {
        let col = |f: fn(&Kline) -> f64| ks.iter().map(f).collect::<Vec<f64>>();
        let (ts, symbol) = (ks.iter().map(|k| k.ts).collect::<Vec<_>>(), vec![7_u32; ks.len()]);
        let (open, high, low, close) = (col(|k| k.open), col(|k| k.high), col(|k| k.low), col(|k| k.close));
        let (volume, turnover) = (col(|k| k.volume), col(|k| k.turnover));
        let source = KlineColumns {
            ts: &ts,
            symbol: &symbol,
            open: &open,
            high: &high,
            low: &low,
            close: &close,
            volume: &volume,
            turnover: &turnover,
            interval: params.interval,
        };
        let batch = bar_features(&BarSource::Klines(source), None, &params).unwrap();

        let mut stream = StreamingBarFeatures::new(params).unwrap();
        let names: Vec<&str> = batch.columns.iter().map(|(n, _)| n.as_str()).collect();
        prop_assert_eq!(stream.names(), names.as_slice());
        let mut rows: Vec<(i64, Vec<f64>)> = Vec::new();
        for k in &ks {
            stream.push(k, |ts, row| rows.push((ts, row.to_vec()))).unwrap();
        }
        prop_assert_eq!(rows.len(), batch.len());
        for (r, (ts, row)) in rows.iter().enumerate() {
            prop_assert_eq!(*ts, batch.ts[r]);
            for (c, (name, column)) in batch.columns.iter().enumerate() {
                prop_assert_eq!(row[c].to_bits(), column[r].to_bits(), "row {} {}: {} vs {}", r, name, row[c], column[r]);
            }
        }
    }
}
