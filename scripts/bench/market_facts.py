"""Measurement: how realistic the simulated market is at a DSG, per preset symbol, averaged over seeds.

Prints, for each symbol, the return predictability (lag-1 ACF of 1-minute close and mid returns, of 10-second mid
returns), the share of a fair-value shock in the mid within 5 s, the largest 1-minute move away from fair-value
jumps, trade-sign ACF at lags 1/10/100/1000, excess kurtosis and |r| ACF of 1-minute returns, impact concavity and
crossed books, each against its target (issue 14). The acceptance measurement is the default: 8 seeds x 6 hours.
"""

from __future__ import annotations

import time
from pathlib import Path

from common import arguments

from apexctl import _core
from apexctl.forge.market_facts import TARGETS, aggregate, failures, run_facts

SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
SHOWN = (
    "acf1_close_1m",
    "acf1_mid_1m",
    "acf1_mid_10s",
    "acf5_mid_1m",
    "shock_0s",
    "shock_5s",
    "shock_30s",
    "shock_5s_no_lead",
    "max_move_bps",
    "max_move_no_jump_bps",
    "max_fv_move_no_jump_bps",
    "max_mid_fv_gap_move_bps",
    "sign_acf_1",
    "sign_acf_10",
    "sign_acf_100",
    "sign_acf_1000",
    "kurt_1m",
    "kurt_close_1m",
    "absret_acf_1",
    "absret_acf_min",
    "impact_small_bps",
    "impact_large_bps",
    "impact_concavity",
    "crossed",
    "spread_bps",
    "trades_per_min",
    "vol_1m_bps",
    "vol_fv_1m_bps",
    "gap_sd_bps",
    "gap_acf_10s",
    "gap_acf_60s",
    "beta_fv_same_min",
    "beta_fv_prev_min",
)


def main() -> None:
    parser = arguments(__doc__, seed=None)
    parser.add_argument("--seeds", type=int, default=8, help="seeds 1..N per symbol (default 8)")
    parser.add_argument("--hours", type=float, default=6.0, help="simulated hours per run (default 6)")
    parser.add_argument("--symbols", default=",".join(SYMBOLS), help="comma-separated preset symbols")
    parser.add_argument("--dsg", type=Path, help="a DSG document (default: the default DSG)")
    parser.add_argument("--per-seed", action="store_true", help="also print every seed's values")
    args = parser.parse_args()
    dsg_json = args.dsg.read_text() if args.dsg else None
    symbols = [s.strip() for s in args.symbols.split(",") if s.strip()]
    seeds = range(1, args.seeds + 1)

    started = time.perf_counter()
    summaries: dict[str, dict[str, float]] = {}
    per_seed: dict[str, list[dict[str, float]]] = {}
    for symbol in symbols:
        rows = [run_facts(_core.sim_run(symbol, dsg_json=dsg_json, seed=s, hours=args.hours)) for s in seeds]
        per_seed[symbol] = rows
        summaries[symbol] = aggregate(rows)
    elapsed = time.perf_counter() - started

    source = args.dsg or "default DSG"
    print(f"market facts: {source}, {args.seeds} seeds x {args.hours:g} h per symbol ({elapsed:.0f} s)")
    targets = {t.name: t.text for t in TARGETS}
    print(f"  {'statistic':<26}" + "".join(f"{s:>12}" for s in symbols) + "   target")
    for name in SHOWN:
        cells = "".join(f"{summaries[s][name]:>12.4g}" for s in symbols)
        print(f"  {name:<26}{cells}   {targets.get(name, '')}")
        if args.per_seed:
            for i in range(args.seeds):
                cells = "".join(f"{per_seed[s][i][name]:>12.4g}" for s in symbols)
                print(f"    seed {i + 1:<19}{cells}")
    missed = {s: failures(summaries[s]) for s in symbols}
    for symbol in symbols:
        verdict = "all targets met" if not missed[symbol] else "MISSED: " + "; ".join(missed[symbol])
        print(f"  {symbol}: {verdict}")
    print(f"  overall: {'PASS' if not any(missed.values()) else 'FAIL'}")


if __name__ == "__main__":
    main()
