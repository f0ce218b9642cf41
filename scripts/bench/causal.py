"""Benchmark: PCMCI for one target (target-only link assumptions + parallel MCI, default Benjamini-Hochberg) vs a plain
tigramite run_pcmci under the same correction; speed ratio measured where both ran, next to the extrapolated one."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import polars as pl
from common import arguments, timed

from apexctl.forge.causal import CausalConfig, benjamini_hochberg, discover, prepare

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "support"))
from planted_var import planted_parents
from planted_var import var_frame as planted_var_frame

#: The links var_frame plants into y.
PLANTED = planted_parents(width=2)


def var_frame(rows: int, features: int, seed: int) -> pl.DataFrame:
    """A stable VAR(2) of `features` AR(1) drivers (0.3) with sparse cross links, and a target y with 3 planted
    parents."""
    return planted_var_frame(rows, features, seed, ar=0.3, link_every=5, width=2)


def ours(frame: pl.DataFrame, tau_max: int, pc_alpha: float, jobs: int) -> tuple[float, set[tuple[str, int]]]:
    config = CausalConfig(target="y", tau_max=tau_max, pc_alpha=pc_alpha, jobs=jobs)
    seconds, doc = timed(lambda: discover(frame, config))
    return seconds, {(p["feature"], p["lag"]) for p in doc["parents"]}


def plain(frame: pl.DataFrame, tau_max: int, pc_alpha: float, alpha: float) -> tuple[float, set[tuple[str, int]]]:
    """tigramite's run_pcmci over every variable (same data after hygiene, same test, tau range, pc_alpha), then our
    default correction: Benjamini-Hochberg over the links into the target."""
    from tigramite.data_processing import DataFrame
    from tigramite.independence_tests.parcorr import ParCorr
    from tigramite.pcmci import PCMCI

    prepared = prepare(frame, CausalConfig(target="y", tau_max=tau_max), "bench")
    pcmci = PCMCI(DataFrame(prepared.arrays[0].copy(), var_names=prepared.var_names), ParCorr(), verbosity=0)
    elapsed, result = timed(lambda: pcmci.run_pcmci(tau_min=0, tau_max=tau_max, pc_alpha=pc_alpha))
    target = prepared.target_index
    links = [(i, tau) for i in range(target + 1) for tau in range(tau_max + 1) if i < target or tau > 0]
    q = benjamini_hochberg([result["p_matrix"][i, target, tau] for i, tau in links])
    found = {(prepared.var_names[i], tau) for (i, tau), q in zip(links, q, strict=True) if i < target and q <= alpha}
    return elapsed, found


def false_count(parents: set[tuple[str, int]]) -> str:
    return f"{len(parents & PLANTED)}/3 planted, {len(parents - PLANTED)} false"


def main() -> None:
    parser = arguments(__doc__, seed=11)
    parser.add_argument("--rows", type=int, default=20_000, help="rows of our run (default 20000)")
    parser.add_argument("--features", type=int, default=30)
    parser.add_argument("--tau-max", type=int, default=5)
    parser.add_argument("--pc-alpha", type=float, default=0.2)
    parser.add_argument(
        "--plain-rows",
        type=int,
        default=4_000,
        help="rows of the plain run_pcmci (default 4000: over all 31 variables it takes 6-10 min here, not monotone "
        "in rows; its time at --rows is then extrapolated linearly and labeled so)",
    )
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()

    import tigramite.pcmci  # noqa: F401  (the import takes seconds; keep it out of the first timing)

    frame = var_frame(args.rows, args.features, args.seed)
    small = frame.head(args.plain_rows)
    title = f"causal: {args.features} features, tau_max {args.tau_max}, parcorr, pc_alpha {args.pc_alpha}"
    print(title)
    ours_full, ours_parents = ours(frame, args.tau_max, args.pc_alpha, args.jobs)
    ours_one, _ = ours(frame, args.tau_max, args.pc_alpha, 1)
    print(
        f"  apexctl  {args.rows:>7,} rows, --jobs {args.jobs}: {ours_full:8.2f} s   parents {sorted(ours_parents)} "
        f"({false_count(ours_parents)})"
    )
    print(
        f"  apexctl  {args.rows:>7,} rows, --jobs 1   : {ours_one:8.2f} s   "
        f"(parallel MCI speed-up {ours_one / ours_full:.2f}x)"
    )
    ours_small, small_parents = ours(small, args.tau_max, args.pc_alpha, args.jobs)
    plain_small, plain_parents = plain(small, args.tau_max, args.pc_alpha, 0.05)
    found = false_count(small_parents)
    print(f"  apexctl  {args.plain_rows:>7,} rows, --jobs {args.jobs}: {ours_small:8.2f} s   ({found})")
    print(
        f"  run_pcmci{args.plain_rows:>7,} rows (all vars): {plain_small:8.2f} s   "
        f"target parents {sorted(plain_parents)} ({false_count(plain_parents)})"
    )
    measured = f"{plain_small / ours_small:.1f}x measured at {args.plain_rows:,} rows (both timed there)"
    if args.plain_rows == args.rows:
        print(f"  ratio     : {measured}")
        return
    estimate = plain_small * args.rows / args.plain_rows
    print(
        f"  run_pcmci{args.rows:>7,} rows EXTRAPOLATED (linear in rows from {args.plain_rows:,}): {estimate:8.1f} s "
        "(estimate, not measured)"
    )
    print(f"  ratio     : {measured}; ~{estimate / ours_full:.1f}x at {args.rows:,} rows extrapolated")


if __name__ == "__main__":
    main()
