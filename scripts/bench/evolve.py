"""Benchmark: wall time of `apexctl evolve` generations at a large population (default 50,000) on simulated bars,
without and with the LightGBM surrogate (SAE), side by side; optionally one dual-fitness (--dsg) run."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import polars as pl
from common import arguments, timed


def apexctl(*args: str) -> None:
    done = subprocess.run([sys.executable, "-m", "apexctl", *args], capture_output=True, check=False)
    if done.returncode != 0:
        sys.exit(f"apexctl {' '.join(args)} failed ({done.returncode}): {done.stderr.decode()[-2000:]}")


def run(root: Path, name: str, features: Path, pop: int, gens: int, *extra: str) -> tuple[float, pl.DataFrame]:
    command = ("evolve", "--features", str(features), "--pop", str(pop), "--gens", str(gens), "-o", str(root / name))
    seconds, _ = timed(lambda: apexctl(*command, *extra))
    return seconds, pl.read_parquet(root / name / "generations.parquet")


def show(label: str, total: float, log: pl.DataFrame) -> None:
    print(f"  {label} ({total:.1f} s in all, process start included)")
    for row in log.iter_rows(named=True):
        rho = row["surrogate_spearman"]
        note = f", {row['estimated']:,} estimated, holdout Spearman {rho:.2f}" if rho is not None else ""
        print(f"    generation {row['generation']}: {row['seconds']:7.2f} s, {row['evaluations']:,} evaluated{note}")


def main() -> None:
    parser = arguments(__doc__, seed=None)
    parser.add_argument("--pop", type=int, default=50_000, help="population size (default 50,000)")
    parser.add_argument("--gens", type=int, default=1, help="generations after the initial one (default 1)")
    parser.add_argument("--hours", type=float, default=4.0, help="simulated hours of BTCUSDT bars (default 4)")
    parser.add_argument("--dual-pop", type=int, default=0, help="also run --dsg default at this population (0: skip)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        apexctl("fetch", "--source", "sim", "--symbols", "BTCUSDT", "--hours", str(args.hours), "-o", str(root / "d"))
        apexctl("features", str(root / "d/trades.parquet"), str(root / "d/book.parquet"), "-o", str(root / "f.parquet"),
                "--grain", "1m")  # fmt: skip
        features = root / "f.parquet"
        bars = int(args.hours * 60)
        print(f"evolve --pop {args.pop:,} on {bars} one-minute bars")
        show("--no-surrogate", *run(root, "plain", features, args.pop, args.gens, "--no-surrogate"))
        show("--surrogate", *run(root, "sae", features, args.pop, args.gens, "--surrogate"))
        if args.dual_pop:
            print(f"evolve --dsg default --pop {args.dual_pop:,} (simulator PnL over seeds 1,2 of 1 hour; SAE on)")
            show("--dsg default", *run(root, "dual", features, args.dual_pop, args.gens, "--dsg", "default"))


if __name__ == "__main__":
    main()
