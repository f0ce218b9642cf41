"""Benchmark: reading a `book` table a Parquet row group at a time, as `features` and `chimera` read it (the survey's
five columns, then every column of each window), through `io.TableFile.read` (polars' Parquet reader) against
Arrow's reader (`pyarrow.parquet.ParquetFile.read_row_group` then `pl.from_arrow`, the reader before); frames
checked equal first. Then writing: `features --grain update` on that book, its pieces encoded on a thread of their
own while the next window is replayed (`io.table_pieces`), against the same run with each piece encoded in line
(the writer before), each in a process of its own; output files checked byte-equal."""

from __future__ import annotations

import filecmp
import tempfile

import polars as pl
import pyarrow.parquet as pq
from common import arguments, best_of, child_usage, report

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


#: A child process running `features --grain update` on a book into `out`: with `io.table_pieces` as it is, or
#: ("in-line") with the writer before it, which encoded each piece on the caller's thread.
UPDATE_FEATURES = """
import contextlib, sys
import pyarrow.parquet as pq
from apexctl.forge import features, io

how, book, out = sys.argv[1:]

@contextlib.contextmanager
def in_line(path, *, schema, producer, inputs=None, params=None, extra=None, compression="zstd"):
    metadata = io.provenance(schema, producer, inputs, params, extra)
    with io.atomic_output(path) as handle:
        writer = None

        def write(frame):
            nonlocal writer
            arrow = io._arrow_table(frame, schema, metadata)
            if writer is None:
                writer = pq.ParquetWriter(handle, arrow.schema, compression=compression)
            writer.write_table(arrow)

        try:
            yield write
        finally:
            if writer is not None:
                writer.close()

if how == "in-line":
    features.table_pieces = in_line
features.run([book], out, features.FeatureConfig(grain=features.Grain.update))
"""


def main() -> None:
    parser = arguments(__doc__, seed=1, repeats=3)
    parser.add_argument("--hours", type=float, default=12.0, help="simulated hours of the default symbols (default 12)")
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
        outs = {how: f"{folder}/update-{how}.parquet" for how in ("behind", "in-line")}
        seconds = {how: float("inf") for how in outs}
        for _ in range(args.repeats):  # alternately, the best of each kept: a child's start-up varies by a few 0.1 s
            for how, out in outs.items():
                seconds[how] = min(seconds[how], child_usage(UPDATE_FEATURES, how, path, out)[0])
        if not filecmp.cmp(outs["behind"], outs["in-line"], shallow=False):
            raise SystemExit("features --grain update: the pieces written behind and in line gave different files")
        rows = pl.scan_parquet(outs["behind"]).select(pl.len()).collect().item()
        report(
            f"tables: features --grain update on {file.rows:,} book rows, {rows:,} rows written in pieces",
            "rows",
            rows,
            seconds["behind"],
            seconds["in-line"],
            "in line",
        )


if __name__ == "__main__":
    main()
