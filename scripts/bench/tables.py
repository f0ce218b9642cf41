"""Benchmark: reading a `book` table a Parquet row group at a time, as `features` and `chimera` read it (the survey's
five columns, then every column of each window), through `io.TableFile.read` (polars' Parquet reader) against
Arrow's reader (`pyarrow.parquet.ParquetFile.read_row_group` then `pl.from_arrow`, the reader before); frames
checked equal first."""

from __future__ import annotations

import tempfile

import polars as pl
import pyarrow.parquet as pq
from common import arguments, best_of, report

from apexctl.forge import io, time_windows
from apexctl.forge.fetch import fetch_sim
from apexctl.forge.sim import MarketSim
from apexctl.schemas import BOOK


def read_all(file: io.TableFile, columns: list[str] | None) -> list[pl.DataFrame]:
    return [frame for _, _, frame in file.groups(columns)]


def read_all_arrow(parquet: pq.ParquetFile, columns: list[str] | None) -> list[pl.DataFrame]:
    frames = []
    for group in range(parquet.metadata.num_row_groups):
        frame = pl.from_arrow(parquet.read_row_group(group, columns=columns, use_threads=False))
        assert isinstance(frame, pl.DataFrame)
        frames.append(frame)
    return frames


def main() -> None:
    parser = arguments(__doc__, seed=1, repeats=3)
    parser.add_argument("--hours", type=float, default=4.0, help="simulated hours of the default symbols (default 4)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        fetch_sim(MarketSim(seed=args.seed, hours=args.hours), f"{folder}/market")
        path = f"{folder}/market/book.parquet"
        file = io.open_table(path, BOOK)
        parquet = pq.ParquetFile(path, pre_buffer=False)
        groups = parquet.metadata.num_row_groups
        for what, columns in (("the survey's columns", time_windows.SURVEY_COLUMNS), ("every column", None)):
            ours, theirs = read_all(file, columns), read_all_arrow(parquet, columns)
            if not all(a.equals(b) for a, b in zip(ours, theirs, strict=True)):
                raise SystemExit(f"{what}: polars' and Arrow's readers gave different rows")
            ours_s = best_of(lambda columns=columns: read_all(file, columns), args.repeats)
            peer_s = best_of(lambda columns=columns: read_all_arrow(parquet, columns), args.repeats)
            report(
                f"tables: {file.rows:,} book rows in {groups} row groups, {what}",
                "rows",
                file.rows,
                ours_s,
                peer_s,
                "pyarrow",
            )


if __name__ == "__main__":
    main()
