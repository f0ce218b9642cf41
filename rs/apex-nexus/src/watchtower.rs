//! The Watchtower: the $200 rule. A slot whose equity (cash plus position at the mark, see [`valuation_price`])
//! reaches $0, or falls below what the
//! instrument's minimum order needs at the rule's largest leverage, dies: the engine cancels its orders, flattens
//! it, marks it dead and releases its capital, and this module writes the recycling request (`apex.recycle`) that
//! asks the Forge for a replacement seeded from the DNA of the historically best model the ledger has on record.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use apex_rule::Instrument;
use rusqlite::{Connection, params};
use serde_json::{Value, json};

/// The `schema` of a recycling request (its JSON Schema is `apexctl/schemas/recycle.schema.json`).
pub const RECYCLE_SCHEMA: &str = "apex.recycle";
/// The request version this engine writes.
pub const RECYCLE_VERSION: i64 = 1;

/// The least equity that can still place the instrument's minimum order at mid `mid` with leverage `max_leverage`
/// (the rule's cap): below it the slot can never trade again.
#[must_use]
pub fn threshold(instrument: &Instrument, mid: f64, max_leverage: f64) -> f64 {
    let notional = (instrument.min_qty * mid).max(instrument.min_notional);
    if max_leverage > 0.0 && notional.is_finite() { notional / max_leverage } else { 0.0 }
}

/// The price the Watchtower values positions at: the exchange's mark price while its tickers are fresh (`mark`),
/// else the mid of a synced book, else the last trade. Bybit values positions and liquidates at the mark, an
/// index-based price a momentary void in one side of a thin book does not move; a mid taken from such a book could
/// kill a slot for good that the exchange itself would not touch.
#[must_use]
pub fn valuation_price(mark: Option<f64>, mid: Option<f64>, last_trade: f64) -> f64 {
    let usable = |p: &f64| p.is_finite() && *p > 0.0;
    mark.filter(usable).or(mid.filter(usable)).unwrap_or(last_trade)
}

/// Why a slot with `equity` must die, given the `threshold` of [`threshold`]; `None` while it may live. A NaN equity
/// (no mark yet) never kills.
#[must_use]
pub fn verdict(equity: f64, threshold: f64) -> Option<String> {
    if equity.is_nan() {
        return None;
    }
    if equity <= 0.0 {
        return Some(format!("equity {equity:.2} USDT reached $0"));
    }
    (equity < threshold)
        .then(|| format!("equity {equity:.2} USDT below {threshold:.2} USDT, the least the minimum order needs"))
}

/// The DNA of a model as the ledger records it, with its record.
#[derive(Debug, Clone, PartialEq)]
pub struct Dna {
    pub model_id: String,
    pub slot: String,
    pub bundle: String,
    pub label: String,
    pub gp_tree: Value,
    /// Sum of the per-bar log returns of its equity (capital transfers excluded).
    pub growth: f64,
    pub decisions: i64,
    /// "live" (as a champion) or "shadow" (as a challenger).
    pub source: &'static str,
}

/// A model's equity points `(ts, equity)` and where they come from ("live" or "shadow").
type Record = (Vec<(i64, f64)>, &'static str);

/// Sum of the log returns between consecutive `(ts, equity)` points, skipping every step across which `transfers`
/// (times of capital reweights of the slot) moved capital: only trading makes a record.
fn growth(points: &[(i64, f64)], transfers: &[i64]) -> f64 {
    points
        .windows(2)
        .filter(|w| !transfers.iter().any(|&t| t > w[0].0 && t <= w[1].0))
        .filter(|w| w[0].1 > 0.0 && w[1].1 > 0.0)
        .map(|w| (w[1].1 / w[0].1).ln())
        .sum()
}

/// The historically best model on `symbol` by the ledger's record (champions' equity at their decisions, challengers'
/// shadow equity), among the models whose DNA (GP tree) the ledger holds; ties go to the longer record. `bar_ns` is
/// the engine's bar: a decision's equity is taken at its bar's close (`bar_ts + bar_ns`), where a reweight at that
/// close (`weights.ts_exchange`) has already moved the capital.
///
/// # Errors
/// The SQLite error of a failed query.
pub fn best_dna(conn: &Connection, symbol: &str, bar_ns: i64) -> rusqlite::Result<Option<Dna>> {
    let mut transfers: HashMap<String, Vec<i64>> = HashMap::new();
    let mut statement = conn.prepare_cached("SELECT slot, ts_exchange FROM weights WHERE ts_exchange IS NOT NULL")?;
    for row in statement.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))? {
        let (slot, ts) = row?;
        transfers.entry(slot).or_default().push(ts);
    }
    let mut records: HashMap<(String, String), Record> = HashMap::new();
    let mut live = conn.prepare_cached(
        "SELECT slot, model_id, bar_ts, equity FROM decisions WHERE symbol = ?1 AND model_id IS NOT NULL
             ORDER BY decision_id",
    )?;
    for row in live.query_map(params![symbol], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))? {
        let (slot, model, bar_ts, equity): (String, String, i64, f64) = row?;
        let closed = bar_ts.saturating_add(bar_ns);
        records.entry((slot, model)).or_insert_with(|| (Vec::new(), "live")).0.push((closed, equity));
    }
    let mut shadow = conn.prepare_cached(
        "SELECT e.slot, e.model_id, coalesce(e.ts_exchange, e.ts_local), e.equity FROM shadow_equity e
             JOIN slots s ON s.slot = e.slot WHERE s.symbol = ?1 ORDER BY e.id",
    )?;
    for row in shadow.query_map(params![symbol], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))? {
        let (slot, model, ts, equity): (String, String, i64, f64) = row?;
        // A model that was both keeps the record of its live trading.
        records.entry((slot, model)).or_insert_with(|| (Vec::new(), "shadow")).0.push((ts, equity));
    }
    let mut dna = conn.prepare_cached(
        "SELECT bundle, label, gp_tree FROM models WHERE slot = ?1 AND model_id = ?2 AND gp_tree IS NOT NULL",
    )?;
    let mut best: Option<Dna> = None;
    let mut keys: Vec<_> = records.keys().cloned().collect();
    keys.sort();
    for key in keys {
        let (points, source) = &records[&key];
        let (slot, model) = &key;
        let Some((bundle, label, tree)) = dna
            .query_map(params![slot, model], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get(2)?)))?
            .next()
            .transpose()?
        else {
            continue;
        };
        let tree: String = tree;
        let Ok(gp_tree) = serde_json::from_str::<Value>(&tree) else { continue };
        let empty = Vec::new();
        let candidate = Dna {
            model_id: model.clone(),
            slot: slot.clone(),
            bundle,
            label,
            gp_tree,
            growth: growth(points, if *source == "live" { transfers.get(slot).unwrap_or(&empty) } else { &empty }),
            decisions: i64::try_from(points.len()).unwrap_or(i64::MAX),
            source,
        };
        let better = best.as_ref().is_none_or(|b| {
            candidate.growth > b.growth || (candidate.growth == b.growth && candidate.decisions > b.decisions)
        });
        if better {
            best = Some(candidate);
        }
    }
    Ok(best)
}

/// What a recycling request says about the death.
#[derive(Debug, Clone)]
pub struct Death<'a> {
    pub slot: &'a str,
    pub symbol: &'a str,
    pub reason: &'a str,
    pub ts_exchange: i64,
    pub equity: f64,
    pub threshold: f64,
    pub ledger: &'a Path,
    pub run_id: i64,
}

/// The `apex.recycle` document for `death`, carrying `dna`.
#[must_use]
pub fn request(death: &Death<'_>, dna: &Dna) -> Value {
    let time =
        chrono::DateTime::from_timestamp_nanos(death.ts_exchange).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    json!({
        "schema": RECYCLE_SCHEMA,
        "version": RECYCLE_VERSION,
        "slot": death.slot,
        "symbol": death.symbol,
        "reason": death.reason,
        "time": time,
        "ts_exchange": death.ts_exchange,
        "ledger": death.ledger.display().to_string(),
        "run_id": death.run_id,
        "equity": death.equity,
        "threshold": death.threshold,
        "dna": {
            "model_id": dna.model_id,
            "slot": dna.slot,
            "bundle": dna.bundle,
            "label": dna.label,
            "gp_tree": dna.gp_tree,
            "record": {"growth": dna.growth, "decisions": dna.decisions, "source": dna.source},
        },
    })
}

/// Writes `request` into `outbox` as `recycle-<slot>-<ts>.json`: a temporary file synced to disk, then renamed, so a
/// reader (a cron job running `evolve --seed-dna`) never sees half a request and a crash never loses one.
///
/// # Errors
/// The I/O error.
pub fn write_request(outbox: &Path, slot: &str, ts_exchange: i64, request: &Value) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(outbox)?;
    let path = outbox.join(format!("recycle-{slot}-{ts_exchange}.json"));
    let tmp = outbox.join(format!(".recycle-{slot}-{ts_exchange}.json.tmp"));
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(&serde_json::to_vec_pretty(request).map_err(std::io::Error::other)?)?;
    file.sync_all()?;
    std::fs::rename(&tmp, &path)?;
    std::fs::File::open(outbox)?.sync_all()?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const BTC: Instrument =
        Instrument { tick: 0.1, qty_step: 0.001, min_qty: 0.001, max_qty: 100.0, min_notional: 5.0 };

    #[test]
    fn positions_are_valued_at_the_mark_then_the_mid_then_the_last_trade() {
        assert_eq!(valuation_price(Some(100.0), Some(50.0), 70.0), 100.0);
        assert_eq!(valuation_price(None, Some(50.0), 70.0), 50.0);
        assert_eq!(valuation_price(Some(f64::NAN), Some(50.0), 70.0), 50.0);
        assert_eq!(valuation_price(Some(0.0), None, 70.0), 70.0);
        assert_eq!(valuation_price(None, Some(-1.0), 70.0), 70.0);
        assert!(valuation_price(None, None, f64::NAN).is_nan());
    }

    #[test]
    fn the_threshold_is_the_minimum_order_at_the_largest_leverage() {
        // 0.001 BTC at 100,000 is 100 USDT of notional; at 5x it needs 20 USDT of equity.
        assert!((threshold(&BTC, 100_000.0, 5.0) - 20.0).abs() < 1e-9);
        // A cheap coin: the minimum notional binds.
        assert!((threshold(&BTC, 1.0, 5.0) - 1.0).abs() < 1e-12);
        assert_eq!(verdict(20.5, 20.0), None);
        assert!(verdict(19.9, 20.0).unwrap().contains("below 20.00"));
        assert!(verdict(0.0, 0.0).unwrap().contains("reached $0"));
        assert!(verdict(-3.0, 20.0).unwrap().contains("reached $0"));
        assert_eq!(verdict(f64::NAN, 20.0), None);
    }

    proptest! {
        #[test]
        fn a_slot_dies_exactly_when_its_equity_is_not_above_zero_or_below_the_threshold(
            equity in -1_000.0f64..1_000.0, threshold in 0.0f64..500.0,
        ) {
            let dies = verdict(equity, threshold).is_some();
            prop_assert_eq!(dies, equity <= 0.0 || equity < threshold);
        }

        #[test]
        fn growth_without_transfers_is_the_log_of_last_over_first(
            equities in proptest::collection::vec(1.0f64..1_000.0, 2..40),
        ) {
            let points: Vec<(i64, f64)> = equities.iter().enumerate().map(|(i, &e)| (i as i64, e)).collect();
            let expected = (equities[equities.len() - 1] / equities[0]).ln();
            prop_assert!((growth(&points, &[]) - expected).abs() < 1e-9);
        }
    }

    #[test]
    fn a_capital_transfer_is_not_a_trading_record() {
        // 100 -> 110 trading, then +1000 transferred in at t=2, then 1110 -> 1000 trading.
        let points = [(0, 100.0), (1, 110.0), (2, 1_110.0), (3, 1_000.0)];
        let expected = (1.1f64).ln() + (1_000.0f64 / 1_110.0).ln();
        assert!((growth(&points, &[2]) - expected).abs() < 1e-12);
    }

    #[test]
    fn capital_a_reweight_moved_at_a_bars_close_is_not_that_bars_growth() {
        const BAR: i64 = 60_000_000_000;
        let dir = crate::scratch("dna");
        let ledger = crate::ledger::Ledger::open(&dir.join("ledger.sqlite"), "local", "abc").unwrap();
        // Slot a never trades; the CWO moves +100 into it at the close of its second bar (time 2 BAR), which that
        // bar's decision (bar_ts BAR) already holds. Slot b grows 1% by trading.
        let tree = r#"{"schema":"apex.gp_tree","version":1,"features":["clv"],"root":{"const":1.0}}"#;
        let conn = ledger.connection();
        for (slot, equities) in [("a", [100.0, 200.0, 200.0]), ("b", [100.0, 100.5, 101.0])] {
            conn.execute(
                "INSERT INTO models (slot, model_id, bundle, label, gp_tree, role, ts_local)
                 VALUES (?1, ?1, 'bundles/x', 'x', ?2, 'champion', 0)",
                params![slot, tree],
            )
            .unwrap();
            for (bar, equity) in equities.iter().enumerate() {
                conn.execute(
                    "INSERT INTO decisions (run_id, slot, symbol, bar_ts, kind, equity, ts_exchange, ts_local, model_id)
                     VALUES (1, ?1, 'BTCUSDT', ?2, 'hold', ?3, ?2, 0, ?1)",
                    params![slot, bar as i64 * BAR, equity],
                )
                .unwrap();
            }
        }
        conn.execute(
            "INSERT INTO weights (slot, weight, capital, base, ts_exchange, ts_local) VALUES ('a', 0.66, 200, 200, ?1, 0)",
            params![2 * BAR],
        )
        .unwrap();
        let best = best_dna(conn, "BTCUSDT", BAR).unwrap().unwrap();
        assert_eq!(best.model_id, "b", "a's +100 was moved in, not earned ({})", best.growth);
        assert!((best.growth - 1.01f64.ln()).abs() < 1e-12);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_request_is_written_whole_and_names_the_dna() {
        let dir = crate::scratch("outbox");
        let dna = Dna {
            model_id: "a".repeat(64),
            slot: "btc-a".into(),
            bundle: "bundles/BTCUSDT/a".into(),
            label: "signal".into(),
            gp_tree: json!({"schema": "apex.gp_tree"}),
            growth: 0.1,
            decisions: 12,
            source: "live",
        };
        let death = Death {
            slot: "btc-a",
            symbol: "BTCUSDT",
            reason: "equity 0.00 USDT reached $0",
            ts_exchange: 1_767_225_600_000_000_000,
            equity: 0.0,
            threshold: 20.0,
            ledger: Path::new("run/ledger.sqlite"),
            run_id: 1,
        };
        let value = request(&death, &dna);
        let path = write_request(&dir, "btc-a", death.ts_exchange, &value).unwrap();
        let back: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(back, value);
        assert_eq!(back["time"], "2026-01-01T00:00:00.000Z");
        assert_eq!(back["dna"]["record"]["decisions"], 12);
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1, "no temporary file left");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
