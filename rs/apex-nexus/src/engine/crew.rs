//! The engine's Pit Crew hooks (see `pitcrew.rs` for the rule): the watcher's start, a new bundle joining a bench
//! (or refilling a dead slot), the bench's decisions and paper fills on each bar and print, the promotion swap
//! between two bars, the fall back to the previous champion when a champion's signal or IEL policy fails, and the
//! retirement of a challenger whose models fail.

use std::path::Path;

use super::{Engine, dec, qty_dec, short};
use crate::NexusError;
use crate::kept;
use crate::ledger::{ModelRow, SlotRow};
use crate::models::{EngineBars, SlotModels};
use crate::pitcrew::{Challenger, Execution, PitCrew, Row, Touch, Verdict};
use crate::slot::Purpose;
use crate::watch::{self, Found, Target};
use apex_rule::Bar;
use tokio::sync::mpsc;

/// Bundles the watcher verified (or refused), for the engine's loop.
pub(super) type FoundRx = mpsc::UnboundedReceiver<Found<SlotModels>>;

/// Keeps a copy of a new bundle in the run folder `out` (see `kept`) and loads and checks it from there: what
/// `SlotModels::load` verifies (hashes, features the engine computes, symbol, a signal model) and apex-infer's
/// sample rows. A copy that fails is dropped.
fn verify(
    out: &Path,
    slot: &str,
    dir: &Path,
    symbol: &str,
    names: &[String],
    bars: &EngineBars,
) -> Result<SlotModels, String> {
    // The event names the slot and folder already: the reason is the bundle error's own message.
    let reason = |e: NexusError| match e {
        NexusError::Bundle { message, .. } => message,
        other => other.to_string(),
    };
    let kept = kept::keep(out, dir)?;
    let loaded = SlotModels::load(slot, &kept, symbol, names, bars).and_then(|mut models| {
        models.check(slot)?;
        Ok(models)
    });
    loaded.map_err(|e| {
        kept::forget(&kept);
        reason(e)
    })
}

/// What a challenger decides on: the bar's feature row and bar, the champion's equity and capital at its close, the
/// touch paper orders fill against, and the engine's notional cap.
struct ShadowBar<'a> {
    row: &'a [f64],
    bar: &'a Bar,
    champion_equity: f64,
    champion_capital: f64,
    touch: Option<(apex_book::Level, apex_book::Level, Touch)>,
    max_notional: f64,
}

/// One bar of a challenger: it decides and executes its legs on paper, each entry with the tactic of its IEL policy.
/// Its shadow equity and position at the close (before its orders).
///
/// # Errors
/// [`NexusError::Runtime`] when its signal or its IEL policy fails to run: the caller retires it.
fn shadow_bar(
    challenger: &mut Challenger,
    input: &ShadowBar<'_>,
    market: &super::Market,
    fees: &crate::pitcrew::Fees,
) -> Result<(f64, f64), NexusError> {
    let (equity, legs) = challenger.on_bar(input.row, input.bar, input.champion_equity, input.champion_capital)?;
    let position = challenger.core().book().position;
    let touch = input.touch;
    for mut leg in legs {
        // Sized as the engine sizes a live order: capped notional, rounded down to the quantity scale.
        if let Some((_, _, t)) = touch {
            let mid = (t.bid + t.ask) / 2.0;
            if leg.qty * mid > input.max_notional {
                leg.qty = input.max_notional / mid;
            }
        }
        leg.qty = dec(&qty_dec(leg.qty, market.qty_scale));
        if leg.qty <= 0.0 {
            continue;
        }
        let execution = match touch {
            Some((bid, ask, t)) if leg.purpose == Purpose::Entry => {
                let obs = super::entry_observation(market, leg.side, leg.qty, bid, ask, (t.bid + t.ask) / 2.0);
                let tactic = challenger.models.tactic(input.row, &obs)?;
                PitCrew::execution(tactic, leg.side, bid.price, ask.price, |u| market.price_scale.to_f64(u))
            }
            _ => Execution::Aggressive,
        };
        challenger.execute(leg, execution, touch.map(|t| t.2), fees);
    }
    Ok((equity, position))
}

impl Engine {
    /// Starts watching every slot's bundle folder (unless `[pitcrew] enabled = false`).
    pub(super) async fn start_pitcrew(&mut self) -> Result<Option<FoundRx>, NexusError> {
        let settings = self.pitcrew.settings.clone();
        if !settings.enabled {
            return Ok(None);
        }
        let targets: Vec<Target> = self
            .slots
            .iter()
            .enumerate()
            .map(|(i, s)| {
                // The folder's own bundle, when it is not the restored champion, is benched below.
                let benched = self.benched.iter().filter(|(slot, _)| *slot == i).map(|(_, id)| id.clone());
                Target {
                    slot: i,
                    folder: self.options.config.slots[i].bundle.clone(),
                    known: benched.chain([s.models.sha256.clone()]).collect(),
                }
            })
            .collect();
        let names = self.engine_names.clone();
        let bars = self.bars.clone();
        let slots: Vec<(String, String)> = self.slots.iter().map(|s| (s.name.clone(), s.symbol.clone())).collect();
        let out = self.options.out.clone();
        let check = move |index: usize, dir: &Path| verify(&out, &slots[index].0, dir, &slots[index].1, &names, &bars);
        // The folders' bundles that are not their slot's restored champion join the bench first, as if just found.
        // They load on the blocking pool: the WebSocket supervisors share the loop's one thread, and a load longer
        // than their reply timeout would drop connections that are fine.
        let benched: Vec<_> = std::mem::take(&mut self.benched)
            .into_iter()
            .map(|(slot, model_id)| (slot, self.options.config.slots[slot].bundle.clone(), model_id))
            .collect();
        let start = if benched.is_empty() {
            Vec::new()
        } else {
            let check = check.clone();
            tokio::task::spawn_blocking(move || {
                let found = |(slot, folder, model_id): (usize, std::path::PathBuf, String)| Found {
                    slot,
                    outcome: check(slot, &folder),
                    folder,
                    model_id,
                };
                benched.into_iter().map(found).collect::<Vec<_>>()
            })
            .await
            .map_err(|e| NexusError::Runtime(format!("pit crew: checking the benched bundles: {e}")))?
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let watcher = watch::start(targets, settings.watch, settings.poll, settings.settle, check, tx);
        let detail = match &watcher.fallback_reason {
            Some(why) => format!("polling every {:?} (notifications unavailable: {why})", settings.poll),
            None if watcher.mode == crate::pitcrew::WatchMode::Poll => format!("polling every {:?}", settings.poll),
            None => "file notifications".to_owned(),
        };
        tracing::info!(watch = %detail, "pit crew watching the bundle folders");
        self.ledger.record_event("bundle_watch", &detail, None)?;
        self.watcher = Some(watcher);
        for found in start {
            self.on_bundle(found)?;
        }
        Ok(Some(rx))
    }

    /// A stable new bundle in a slot's folder: refused (`bundle_rejected`), on the slot's bench, or, for a dead
    /// slot, its champion at once.
    pub(super) fn on_bundle(&mut self, found: Found<SlotModels>) -> Result<(), NexusError> {
        let index = found.slot;
        let name = self.slots[index].name.clone();
        let folder = found.folder.display().to_string();
        let models = match found.outcome {
            Ok(models) => models,
            Err(reason) => {
                tracing::warn!(slot = %name, %folder, %reason, "bundle rejected");
                let detail = format!("{name} {folder} {}: {reason}", short(&found.model_id));
                return self.ledger.record_event("bundle_rejected", &detail, None);
            }
        };
        let ts = Some(self.markets[&self.slots[index].symbol].now_ns);
        let model_row = |role: &str, detail: String| ModelRow {
            slot: name.clone(),
            model_id: models.sha256.clone(),
            bundle: folder.clone(),
            label: models.label.clone(),
            gp_tree: models.gp_tree.clone(),
            role: role.into(),
            detail: Some(detail),
            ts_exchange: ts,
        };
        if self.slots[index].dead {
            self.ledger.record_model(&model_row("champion", "refill of a dead slot".into()))?;
            let slot = &mut self.slots[index];
            let old = std::mem::replace(&mut slot.models, models);
            slot.dead = false;
            self.ledger.set_model_role(&name, &old.sha256, "retired", Some("its slot died"), ts)?;
            if let Some(fallback) = self.pitcrew.fallbacks.remove(&index) {
                self.ledger.set_model_role(&name, &fallback.sha256, "retired", Some("its slot died"), ts)?;
            }
            let to = self.slots[index].models.sha256.clone();
            self.ledger.record_swap(&name, None, &to, "refill", "flat", ts)?;
            self.ledger.set_slot_state(&name, "live")?;
            self.record_slot(index, &folder)?;
            tracing::info!(slot = %name, model = %short(&to), "dead slot refilled");
            // Its capital comes from the CWO (a dead slot gave its equity back): a pass now, or the Watchtower would
            // kill it again on the next tick. Without the CWO it trades on what it has.
            if let Some(params) = self.options.config.cwo.clone() {
                let now = self.markets[&self.slots[index].symbol].now_ns;
                self.reweight(now, &params)?;
                self.last_reweight_ns = Some(now);
            }
            return Ok(());
        }
        if self.pitcrew.holds(index, &models.sha256) || self.slots[index].models.sha256 == models.sha256 {
            return Ok(());
        }
        let slot = &self.slots[index];
        let market = &self.markets[&slot.symbol];
        let mark = if market.last_price.is_finite() { market.last_price } else { f64::NAN };
        let capital = if mark.is_finite() { slot.core.book().equity(mark) } else { slot.core.book().cash() };
        let params = self.options.config.rule.clone();
        let detail = format!("joined the bench with capital {capital:.2}");
        let record = model_row("challenger", detail);
        let challenger = Challenger::new(&name, models, found.folder, capital, params, market.instrument)?;
        self.ledger.record_model(&record)?;
        tracing::info!(slot = %name, model = %short(&record.model_id), capital, "challenger joined the bench");
        if let Some(retired) = self.pitcrew.join(index, challenger) {
            self.ledger.set_model_role(&name, &retired, "retired", Some("the bench was full"), ts)?;
        }
        Ok(())
    }

    /// Writes the slot's row with its current champion (its bundle and label; the configured capital: what the CWO
    /// moved is in `weights`, and a restart tells a changed config by this column).
    fn record_slot(&self, index: usize, folder: &str) -> Result<(), NexusError> {
        let slot = &self.slots[index];
        let configured = self.options.config.slots.iter().find(|s| s.name == slot.name).map(|s| s.capital);
        self.ledger.upsert_slot(&SlotRow {
            slot: slot.name.clone(),
            symbol: slot.symbol.clone(),
            account: slot.account.clone(),
            capital: configured.unwrap_or(slot.core.book().capital),
            bundle: folder.to_owned(),
            bundle_sha256: slot.models.sha256.clone(),
            model: slot.models.label.clone(),
        })
    }

    /// The touch of `symbol` a paper order fills against, in price units and, with the best levels, in quote and
    /// base, when the book is usable.
    fn touch(&self, symbol: &str) -> Option<(apex_book::Level, apex_book::Level, Touch)> {
        let snapshot = self.public.snapshot(symbol)?;
        let market = &self.markets[symbol];
        if !snapshot.synced || !market.synced {
            return None;
        }
        let (bid, ask) = (*snapshot.bids.first()?, *snapshot.asks.first()?);
        if bid.price >= ask.price {
            return None;
        }
        let quote = |levels: &[apex_book::Level]| -> Vec<(f64, f64)> {
            let best = levels.iter().take(crate::pitcrew::PAPER_LEVELS);
            best.map(|l| (market.price_scale.to_f64(l.price), market.qty_scale.to_f64(l.qty))).collect()
        };
        Some((bid, ask, Touch::from_levels(&quote(&snapshot.bids), &quote(&snapshot.asks))?))
    }

    /// A trade printed on `symbol`: the challengers' resting paper orders and brackets act on it.
    pub(super) fn pitcrew_on_trade(&mut self, symbol: &str, price: f64) {
        if self.pitcrew.benches.values().all(Vec::is_empty) {
            return;
        }
        let touch = self.touch(symbol).map(|t| t.2);
        let fees = self.pitcrew.settings.fees;
        for (index, bench) in &mut self.pitcrew.benches {
            if self.slots[*index].symbol == symbol {
                for challenger in bench {
                    challenger.on_trade(price, touch, &fees);
                }
            }
        }
    }

    /// After a bar's decisions are written: every challenger on the symbol decides on the same row and executes on
    /// paper, its shadow equity is written, and a challenger the rule promotes becomes its slot's champion before
    /// the next bar. Also writes what a fall back during the decisions left to write.
    pub(super) fn pitcrew_after_bar(
        &mut self,
        symbol: &str,
        open_ts: i64,
        row: &[f64],
        bar: &Bar,
        decisions: &[super::Decided],
    ) -> Result<(), NexusError> {
        let indices: Vec<usize> = (0..self.slots.len())
            .filter(|&i| self.slots[i].symbol == symbol && self.pitcrew.benches.get(&i).is_some_and(|b| !b.is_empty()))
            .collect();
        let mut rows = std::mem::take(&mut self.pitcrew.pending);
        if indices.is_empty() && rows.is_empty() {
            return Ok(());
        }
        let touch = self.touch(symbol);
        let fees = self.pitcrew.settings.fees;
        let max_notional = self.options.config.limits.max_order_notional;
        for &index in &indices {
            let name = self.slots[index].name.clone();
            let Some(decided) = decisions.iter().find(|d| d.row.slot == name) else { continue };
            let (champion_equity, champion_capital) = (decided.row.equity, self.slots[index].core.book().capital);
            let mut bench = std::mem::take(self.pitcrew.bench_mut(index));
            let market = &self.markets[symbol];
            let input = ShadowBar { row, bar, champion_equity, champion_capital, touch, max_notional };
            let mut kept = Vec::with_capacity(bench.len());
            for mut challenger in bench.drain(..) {
                match shadow_bar(&mut challenger, &input, market, &fees) {
                    Ok((equity, position)) => {
                        rows.push(Row::Shadow {
                            slot: name.clone(),
                            model_id: challenger.models.sha256.clone(),
                            equity,
                            position,
                            decisions: i64::try_from(challenger.decisions()).unwrap_or(i64::MAX),
                        });
                        kept.push(challenger);
                    }
                    // Its signal or its IEL policy failed: it leaves the bench (a champion would fall back).
                    Err(e) => rows.push(Row::Role {
                        slot: name.clone(),
                        model_id: challenger.models.sha256.clone(),
                        role: "retired",
                        detail: Some(format!("failed to run: {e}")),
                    }),
                }
            }
            *self.pitcrew.bench_mut(index) = kept;
            if let Some((challenger, verdict)) = self.pitcrew.promotable(index) {
                self.promote(index, challenger, &verdict, &mut rows);
            }
        }
        self.write_rows(&rows, open_ts)
    }

    /// The swap: the challenger's models become the slot's champion (the slot keeps its book, position and bracket:
    /// handed over), the old champion is kept as the fallback, the fallback before it retired.
    fn promote(&mut self, index: usize, challenger: Challenger, verdict: &Verdict, rows: &mut Vec<Row>) {
        let rule = self.pitcrew.settings.promotion;
        let reason = verdict.describe(&rule);
        let slot = &mut self.slots[index];
        let position = if slot.core.book().position == 0.0 { "flat" } else { "handed_over" };
        let old = std::mem::replace(&mut slot.models, challenger.models);
        let (name, to) = (slot.name.clone(), slot.models.sha256.clone());
        tracing::info!(slot = %name, from = %short(&old.sha256), to = %short(&to), %reason, "challenger promoted");
        rows.push(Row::Role {
            slot: name.clone(),
            model_id: to.clone(),
            role: "champion",
            detail: Some(reason.clone()),
        });
        rows.push(Row::Role {
            slot: name.clone(),
            model_id: old.sha256.clone(),
            role: "fallback",
            detail: Some(format!("replaced by {}", short(&to))),
        });
        rows.push(Row::Swap { slot: name.clone(), from: Some(old.sha256.clone()), to, reason, position });
        if let Some(previous) = self.pitcrew.fallbacks.insert(index, old) {
            rows.push(Row::Role {
                slot: name,
                model_id: previous.sha256,
                role: "retired",
                detail: Some("a newer fallback replaced it".into()),
            });
        }
        rows.push(Row::Slot { index, folder: challenger.folder.display().to_string() });
    }

    /// The champion of slot `index` failed to run (its signal on a bar, or its IEL policy on an entry): the fallback
    /// (the champion it replaced) becomes the champion, and the caller runs it in the failed model's place. The rows
    /// (`model_fallback`, the roles, the swap) are written with the bar's Pit Crew rows.
    ///
    /// # Errors
    /// [`NexusError::Runtime`] naming the slot and the model when the slot has no fallback: the engine stops.
    pub(super) fn fall_back(&mut self, index: usize, error: &NexusError) -> Result<(), NexusError> {
        let Some(fallback) = self.pitcrew.fallbacks.remove(&index) else {
            let slot = &self.slots[index];
            let model = short(&slot.models.sha256);
            return Err(NexusError::Runtime(format!("slot {}: model {model} failed to run: {error}", slot.name)));
        };
        let slot = &mut self.slots[index];
        let failed = std::mem::replace(&mut slot.models, fallback);
        let (name, to) = (slot.name.clone(), slot.models.sha256.clone());
        tracing::warn!(slot = %name, model = %short(&failed.sha256), %error, "champion failed: falling back");
        let position = if slot.core.book().position == 0.0 { "flat" } else { "handed_over" };
        let rows = &mut self.pitcrew.pending;
        rows.push(Row::Event {
            kind: "model_fallback",
            detail: format!("{name}: {} failed ({error}); {} decides", short(&failed.sha256), short(&to)),
        });
        rows.push(Row::Role {
            slot: name.clone(),
            model_id: failed.sha256.clone(),
            role: "retired",
            detail: Some(format!("failed to run: {error}")),
        });
        rows.push(Row::Role { slot: name.clone(), model_id: to.clone(), role: "champion", detail: None });
        rows.push(Row::Swap { slot: name, from: Some(failed.sha256), to, reason: "fallback".into(), position });
        Ok(())
    }

    /// Writes the Pit Crew's rows of a bar in one transaction.
    fn write_rows(&mut self, rows: &[Row], ts: i64) -> Result<(), NexusError> {
        if rows.is_empty() {
            return Ok(());
        }
        self.ledger.begin()?;
        let written = rows.iter().try_for_each(|row| match row {
            Row::Event { kind, detail } => self.ledger.record_event(kind, detail, Some(ts)),
            Row::Role { slot, model_id, role, detail } => {
                self.ledger.set_model_role(slot, model_id, role, detail.as_deref(), Some(ts))
            }
            Row::Shadow { slot, model_id, equity, position, decisions } => {
                self.ledger.record_shadow_equity(slot, model_id, *equity, *position, *decisions, Some(ts))
            }
            Row::Swap { slot, from, to, reason, position } => {
                self.ledger.record_swap(slot, from.as_deref(), to, reason, position, Some(ts))
            }
            Row::Slot { index, folder } => self.record_slot(*index, folder),
        });
        match written {
            Ok(()) => self.ledger.commit(),
            Err(e) => {
                let _ = self.ledger.connection().execute_batch("ROLLBACK");
                Err(e)
            }
        }
    }
}
