"""Artifact I/O: Parquet tables with provenance metadata, atomic writes, `-` for stdin/stdout, schema checks on read."""

from __future__ import annotations

import contextlib
import contextvars
import errno
import hashlib
import io
import itertools
import json
import math
import os
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent import futures
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from apexctl import __version__, signals
from apexctl.console import safe
from apexctl.errors import InputError, SchemaError, UsageError
from apexctl.forge.outputs import umask, written_path
from apexctl.forge.table_checks import check_timestamps
from apexctl.schemas.tables import TableSchema

META_SCHEMA = "apex.schema"
META_PRODUCER = "apex.producer"
META_INPUTS = "apex.inputs"
META_PARAMS = "apex.params"
META_INSTRUMENTS = "apex.instruments"

STDIO = "-"
#: Suffix of the temporary files outputs are written to before their rename (hidden: they start with a dot).
TMP_SUFFIX = ".tmp"
#: Largest JSON document read by default (a GP tree of 4096 nodes is well under 1 MB, a DSG a few kB).
JSON_MAX_BYTES = 16 << 20
#: Deepest nesting of objects and lists read by default (a GP tree of height 17 nests 36 deep).
JSON_MAX_DEPTH = 64

# The renames of the files written inside `publish_together()`, done once every file of the set is complete.
_PENDING: contextvars.ContextVar[list[tuple[str, Path]] | None] = contextvars.ContextVar("apex_pending", default=None)


@dataclass
class Table:
    """A table read from an artifact, with where it came from and its provenance metadata."""

    frame: pl.DataFrame
    source: str
    schema_name: str
    schema_version: int
    metadata: dict[str, Any] = field(default_factory=dict)
    sha256: str = ""

    def instruments(self) -> dict[str, dict[str, str]]:
        return recorded_instruments(self.metadata)


def recorded_instruments(metadata: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """Instrument info per symbol (tick_size, qty_step as decimal strings) when the producer recorded it."""
    value = metadata.get(META_INSTRUMENTS)
    return value if isinstance(value, dict) else {}


def describe(path: str | Path) -> str:
    return "stdin" if str(path) == STDIO else str(path)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def refuse_same_data(seen: dict[str, str], name: str, digest: str) -> None:
    """UsageError when input `name` holds the same bytes (sha256 `digest`) as one already read; `seen` (name ->
    digest) gains it. The same data twice, by one path given twice or a copy, would be counted twice: every trade's
    volume and count, every book message replayed."""
    repeat = next((other for other, known in seen.items() if known == digest), None)
    if repeat is not None:
        raise UsageError(f"{safe(name)}: the same data as {safe(repeat)} (sha256 {digest[:12]}); give each input once")
    seen[name] = digest


def sha256_file(path: str | Path) -> str:
    with open(path, "rb") as handle:
        return _sha256_stream(handle)


def _sha256_stream(handle: BinaryIO) -> str:
    digest = hashlib.sha256()
    for chunk in iter(lambda: handle.read(1 << 20), b""):
        digest.update(chunk)
    return digest.hexdigest()


def _write_all(stream: BinaryIO, data: bytes) -> None:
    """Writes every byte of `data`: a buffered write to a pipe whose reader left returns a short count instead of
    raising (SIGPIPE is ignored), so one write call could lose the rest and still succeed; the next call raises the
    broken pipe (exit 1, as `| head` expects)."""
    view = memoryview(data)
    while view:
        written = stream.write(view)
        if not written:
            raise BrokenPipeError(errno.EPIPE, os.strerror(errno.EPIPE))
        view = view[written:]
    stream.flush()


@contextlib.contextmanager
def atomic_output(path: str | Path) -> Iterator[BinaryIO]:
    """Yields a binary handle; on success the bytes appear under `path` in one rename (or go to stdout for `-`).

    A failure or a kill leaves no file under the final name; the temporary file sits in the same folder so the
    rename never crosses file systems.
    """
    if str(path) == STDIO:
        buffer = io.BytesIO()
        yield buffer
        _write_all(sys.stdout.buffer, buffer.getvalue())
        return
    target = written_path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp_name = None
    try:
        with signals.deferred():  # an interrupt between creating the file and knowing its name would leak it
            fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=TMP_SUFFIX, dir=target.parent)
        os.fchmod(fd, 0o666 & ~umask())  # mkstemp makes it private; the output gets the mode a plain open() gives
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        pending = _PENDING.get()
        if pending is None:
            os.replace(tmp_name, target)
        else:
            pending.append((tmp_name, target))
    except BaseException:
        if tmp_name is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_name)
        raise


@contextlib.contextmanager
def publish_together() -> Iterator[None]:
    """Files written (through `atomic_output`) inside the block appear under their names only once all of them are
    complete, renamed one after the other at the end; if the block fails, none appears and no temporary file is
    left. For outputs that sit side by side (a model and its report) rather than in a folder of their own."""
    pending: list[tuple[str, Path]] = []
    token = _PENDING.set(pending)
    try:
        yield
    except BaseException:
        for tmp_name, _ in pending:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_name)
        raise
    finally:
        _PENDING.reset(token)
    try:
        with signals.deferred():  # all renames or, if one fails, the rest removed; never half of them on Ctrl-C
            for tmp_name, target in pending:
                os.replace(tmp_name, target)
    finally:
        for tmp_name, _ in pending:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_name)


def jsonable(value: Any) -> Any:
    """`value` as strict JSON data: NaN and infinities become null (JSON has no such numbers), NumPy scalars and
    arrays plain numbers and lists, tuples lists, paths strings. Anything else that JSON cannot hold is a bug."""
    if isinstance(value, bool | int | str) or value is None:
        return value
    if isinstance(value, float | np.floating):
        number = float(value)
        return number if math.isfinite(number) else None
    if isinstance(value, np.integer | np.bool_):
        return value.item()
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"internal: {type(value).__name__} is not JSON data")


def first_non_finite(value: Any, where: str = "") -> str | None:
    """The path (`held_out.meta.loss[3]`) of the first NaN or infinite number in nested JSON-like data, or None."""
    if isinstance(value, float | np.floating):
        return None if math.isfinite(float(value)) else (where or "a value")
    if isinstance(value, Mapping):
        items = ((f"{where}.{k}" if where else str(k), v) for k, v in value.items())
    elif isinstance(value, list | tuple):
        items = ((f"{where}[{i}]", v) for i, v in enumerate(value))
    else:
        return None
    return next((found for path, v in items if (found := first_non_finite(v, path)) is not None), None)


def dumps(doc: Any, *, indent: int | None = None, sort_keys: bool = False) -> str:
    """Strict JSON text of `doc` (see `jsonable`): never a NaN or Infinity token."""
    return json.dumps(jsonable(doc), indent=indent, sort_keys=sort_keys, allow_nan=False)


def dumps_string_keyed(doc: Mapping[str, Any]) -> str:
    """`dumps(doc)` of a document whose mapping keys are all strings, without first walking all of it through
    `jsonable`: JSON's encoder calls `jsonable` only on the values it cannot write itself. The same text, in a quarter
    of the time for a large document (a checkpoint's 50,000 trees)."""
    try:
        return json.dumps(doc, allow_nan=False, default=jsonable)
    except ValueError:  # a NaN or an infinity, which `jsonable` writes as null
        return dumps(doc)


def write_json(doc: Mapping[str, Any], path: str | Path) -> None:
    """Writes a JSON document (with its "schema" field) as strict JSON, atomically; `-` = stdout."""
    with atomic_output(path) as handle:
        handle.write((dumps(doc, indent=2) + "\n").encode())


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"key {key!r} appears twice in one object")
        out[key] = value
    return out


def _depth(value: Any, limit: int) -> int:
    """Nesting depth of parsed JSON, stopping past `limit` (iterative: a deep document must not blow the stack)."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            if deepest > limit:
                return deepest
            stack.extend((child, level + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def read_bounded(path: str | Path, what: str, max_bytes: int = JSON_MAX_BYTES) -> bytes:
    """The bytes of a file (or of stdin for `-`), refusing more than `max_bytes` while reading: an oversized input
    is rejected after reading `max_bytes`, never loaded whole."""
    name = describe(path)
    try:
        if str(path) == STDIO:
            data = sys.stdin.buffer.read(max_bytes + 1)
        else:
            p = Path(path)
            if p.is_dir():
                raise InputError(f"{name}: is a folder, expected {what}")
            with open(p, "rb") as handle:
                data = handle.read(max_bytes + 1)
    except FileNotFoundError:
        raise InputError(f"{name}: no such file (expected {what})") from None
    except OSError as exc:
        raise InputError(f"{name}: cannot read: {exc.strerror or exc}") from None
    if len(data) > max_bytes:
        raise InputError(f"{name}: larger than {max_bytes >> 20} MB, too large for {what}")
    return data


def parse_json(data: bytes | str, name: str, what: str = "a JSON document", *, max_depth: int = JSON_MAX_DEPTH) -> Any:
    """Strict JSON: UTF-8, no NaN/Infinity tokens, no repeated keys, at most `max_depth` levels; errors name the
    source (`name`) and say what was expected."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        value = json.loads(text, parse_constant=_refuse_constant, object_pairs_hook=_no_duplicates)
    except UnicodeDecodeError as exc:
        raise InputError(f"{safe(name)}: not UTF-8 text (byte {exc.start}), expected {what}") from None
    except RecursionError:
        raise InputError(f"{safe(name)}: nested deeper than {max_depth} levels; not {what}") from None
    except ValueError as exc:
        raise InputError(f"{safe(name)}: not valid JSON ({safe(exc)}); expected {what}") from None
    if _depth(value, max_depth) > max_depth:
        raise InputError(f"{safe(name)}: nested deeper than {max_depth} levels; not {what}")
    return value


def read_json(
    path: str | Path,
    what: str = "a JSON document",
    *,
    max_bytes: int = JSON_MAX_BYTES,
    max_depth: int = JSON_MAX_DEPTH,
) -> Any:
    """A strict JSON file (`-` = stdin) read with a size bound: see `read_bounded` and `parse_json`."""
    return parse_json(read_bounded(path, what, max_bytes), describe(path), what, max_depth=max_depth)


def provenance(
    schema: TableSchema,
    producer: str,
    inputs: Mapping[str, str] | None = None,
    params: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, str]:
    """The file-level key-value metadata every table carries (values are JSON)."""
    meta = {
        META_SCHEMA: dumps({"name": schema.name, "version": schema.version}),
        META_PRODUCER: dumps({"command": producer, "version": __version__}),
        META_INPUTS: dumps(dict(inputs or {}), sort_keys=True),
        META_PARAMS: dumps(dict(params or {}), sort_keys=True),
    }
    for key, value in (extra or {}).items():
        meta[key] = dumps(value, sort_keys=True)
    return meta


def write_table(
    frame: pl.DataFrame,
    path: str | Path,
    *,
    schema: TableSchema,
    producer: str,
    inputs: Mapping[str, str] | None = None,
    params: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> None:
    """Writes `frame` as Parquet with provenance metadata, atomically; columns are put in schema order first."""
    with table_pieces(path, schema=schema, producer=producer, inputs=inputs, params=params, extra=extra) as write:
        write(frame)


def _arrow_table(frame: pl.DataFrame, schema: TableSchema, metadata: dict[str, str]) -> pa.Table:
    """`frame` in schema order and types, as Arrow with `metadata`."""
    missing = [name for name in schema.column_names if name not in frame.columns]
    if missing:
        raise SchemaError(f"internal: table '{schema.name}' to write lacks columns {missing}")
    ordered = schema.column_names + [c for c in frame.columns if c not in schema.column_names]
    arrow = frame.select(ordered).cast(schema.polars_schema(), strict=True).to_arrow()
    return arrow.replace_schema_metadata(metadata)


@contextlib.contextmanager
def table_pieces(
    path: str | Path,
    *,
    schema: TableSchema,
    producer: str,
    inputs: Mapping[str, str] | None = None,
    params: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
    compression: str = "zstd",
) -> Iterator[Callable[[pl.DataFrame], None]]:
    """Yields `write(frame)`, which appends a piece of the table: the file `write_table` would write of the pieces
    concatenated (in row groups of at most a piece), made atomically, without holding more than two pieces.
    `compression` is the Parquet codec: a scratch table, read back once, wants a faster one than zstd.

    A piece is encoded on a thread of its own while the caller makes the next one (Arrow's Parquet encoding releases
    the GIL); `write` waits for the piece before, so one is in flight at most, and its error is raised there."""
    metadata = provenance(schema, producer, inputs, params, extra)
    with atomic_output(path) as handle, ThreadPoolExecutor(1, thread_name_prefix="write-behind") as worker:
        writer: pq.ParquetWriter | None = None
        in_flight: Future[None] | None = None

        def encode(arrow: pa.Table) -> None:
            nonlocal writer
            if writer is None:
                writer = pq.ParquetWriter(handle, arrow.schema, compression=compression)
            writer.write_table(arrow)

        def write(frame: pl.DataFrame) -> None:
            nonlocal in_flight
            arrow = _arrow_table(frame, schema, metadata)
            if in_flight is not None:
                in_flight.result()
            in_flight = worker.submit(encode, arrow)

        try:
            yield write
            if in_flight is not None:
                in_flight.result()
            if writer is None:
                encode(_arrow_table(pl.DataFrame(schema=schema.polars_schema()), schema, metadata))
        finally:
            if in_flight is not None:
                futures.wait([in_flight])  # never close the file under a piece still being written
            if writer is not None:
                writer.close()


def existing_file(path: str | Path, expected: str) -> Path:
    """`path` once it names a file; InputError otherwise, saying what was `expected` where it names a folder."""
    if str(path) == "":  # Path("") is the current folder, which would be reported as "." being a directory
        raise InputError(f"an empty path was given where {expected} was expected; name the file")
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such file")
    if p.is_dir():
        raise InputError(f"{p}: is a directory, expected {expected}")
    return p


def _read_bytes(path: str | Path) -> bytes:
    if str(path) == STDIO:
        data = sys.stdin.buffer.read()
        if not data:
            raise InputError("stdin is empty: expected a Parquet table (pipe the output of another apexctl command)")
        return data
    p = existing_file(path, "a Parquet file")
    try:
        return p.read_bytes()
    except OSError as exc:
        raise InputError(f"{p}: cannot read: {exc.strerror or exc}") from exc


def _decode_metadata(raw: Mapping[bytes, bytes] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in (raw or {}).items():
        name = key.decode("utf-8", "replace")
        if not name.startswith("apex."):
            continue
        try:
            out[name] = json.loads(value)
        except ValueError:
            out[name] = value.decode("utf-8", "replace")
    return out


@dataclass(frozen=True)
class _Origin:
    """Where a table's rows are read from: the file that was opened and hashed (each read opens it anew, so reads
    may run on several threads, and refuses it if it has been replaced or rewritten since), or the bytes of a
    stream, read once."""

    path: Path | None
    identity: tuple[int, int, int, int] | None
    data: bytes | None

    @contextlib.contextmanager
    def open(self, name: str) -> Iterator[BinaryIO | bytes]:
        if self.data is not None:
            yield self.data
            return
        assert self.path is not None
        try:
            handle = open(self.path, "rb")  # noqa: SIM115 (closed below, once it is known to be the file opened)
        except FileNotFoundError:
            raise _changed(name, "removed") from None
        with handle:
            if _identity(os.fstat(handle.fileno())) != self.identity:
                raise _changed(name, "replaced or rewritten")
            yield handle


def _changed(name: str, how: str) -> InputError:
    return InputError(f"{name}: changed while apexctl was reading it ({how}); run again on a complete file")


def _identity(stat: os.stat_result) -> tuple[int, int, int, int]:
    return (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)


@dataclass
class TableFile:
    """A table artifact opened and identified but not read: its provenance, and its rows by Parquet row group, so a
    reader can take a long table a piece at a time (`read`) or whole (`table`)."""

    parquet: pq.ParquetFile
    source: str
    schema: TableSchema
    schema_version: int
    metadata: dict[str, Any]
    sha256: str
    origin: _Origin

    @property
    def schema_name(self) -> str:
        return self.schema.name

    @property
    def rows(self) -> int:
        return int(self.parquet.metadata.num_rows)

    def group_rows(self) -> list[int]:
        """The number of rows of each row group, in file order."""
        meta = self.parquet.metadata
        return [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]

    def group_starts(self) -> list[int]:
        """The file row of each row group's first row, in file order."""
        return list(itertools.accumulate(self.group_rows(), initial=0))[:-1]

    def groups(self, columns: Sequence[str] | None = None) -> Iterator[tuple[int, int, pl.DataFrame]]:
        """Each row group as (number, file row of its first row, its rows of `columns`), read as `read` reads."""
        for number, first_row in enumerate(self.group_starts()):
            yield number, first_row, self.read([number], columns=columns, first_row=first_row)

    def take(self, rows: np.ndarray, columns: Sequence[str] | None = None) -> pl.DataFrame:
        """The file rows numbered `rows` (any order; the frame follows it), reading only the row groups that hold
        them: a few rows of a long table without reading it all."""
        rows = np.asarray(rows, dtype=np.int64)
        order = np.argsort(rows, kind="stable")
        ascending = rows[order]
        starts = np.asarray(self.group_starts(), dtype=np.int64)
        groups = np.searchsorted(starts, ascending, side="right") - 1
        parts = []
        for group in np.unique(groups):
            first_row = int(starts[group])
            part = self.read([int(group)], columns=columns, first_row=first_row)
            parts.append(part[ascending[groups == group] - first_row])
        if not parts:
            return self.read([], columns=columns)
        taken = pl.concat(parts)
        return taken[np.argsort(order, kind="stable")]

    def instruments(self) -> dict[str, dict[str, str]]:
        return recorded_instruments(self.metadata)

    def read(
        self, row_groups: Sequence[int] | None = None, columns: Sequence[str] | None = None, first_row: int = 0
    ) -> pl.DataFrame:
        """The rows of `row_groups` (all when None; `first_row` is the file row of their first), of `columns` (all
        of the schema's and the file's others when None), cast to the schema's types and checked as `read_table`
        checks them; errors name the file's rows."""
        spans = None if row_groups is None else self._row_spans(row_groups)
        try:
            # polars' own Parquet reader: Arrow's decodes the text columns (`symbol`) three times slower, and
            # converting its tables copies them once more.
            with self.origin.open(self.source) as source:
                frame = _read_rows(source, spans, columns)
        except (pl.exceptions.PolarsError, pl.exceptions.PanicException, OSError, ValueError) as exc:
            raise InputError(f"{self.source}: not a readable Parquet file ({exc})") from exc
        frame = _conform(frame, self.schema, self.source, first_row)
        if "ts" in frame.columns and frame.schema["ts"].is_integer():
            check_timestamps(frame, self.source, first_row=first_row)
        return frame

    def _row_spans(self, row_groups: Sequence[int]) -> list[tuple[int, int]]:
        """The file rows of `row_groups` as (first row, rows) runs, adjacent groups in one run."""
        starts, rows = self.group_starts(), self.group_rows()
        spans: list[tuple[int, int]] = []
        for group in row_groups:
            if spans and sum(spans[-1]) == starts[group]:
                spans[-1] = (spans[-1][0], spans[-1][1] + rows[group])
            else:
                spans.append((starts[group], rows[group]))
        return spans

    def table(self) -> Table:
        """The whole table."""
        return Table(self.read(), self.source, self.schema.name, self.schema_version, self.metadata, self.sha256)


def _read_rows(
    source: BinaryIO | bytes, spans: Sequence[tuple[int, int]] | None, columns: Sequence[str] | None
) -> pl.DataFrame:
    """The file rows of `spans` ((first row, rows) runs; all rows when None) of `columns` (all when None), one chunk
    per column (polars reads a chunk per row group)."""
    frames = []
    for first, rows in [(0, None)] if spans is None else spans or [(0, 0)]:
        if not isinstance(source, bytes):
            source.seek(0)
        scan = pl.scan_parquet(source, hive_partitioning=False)
        if columns is not None:
            scan = scan.select(columns)
        frames.append(scan.slice(first, rows).collect())
    if len(frames) == 1 and max(frames[0].n_chunks("all"), default=1) == 1:
        return frames[0]
    return contiguous(frames)


def contiguous(frames: list[pl.DataFrame]) -> pl.DataFrame:
    """`frames` (of one schema) as one frame of one chunk per column, copied a column at a time: polars copies a
    frame of many chunks whole into one (twice its memory) when a column of one chunk joins it, as most
    operations do. `frames` is emptied."""
    chunked = pl.concat(frames, rechunk=False)
    frames.clear()
    columns = []
    for name in chunked.columns:
        columns.append(chunked.get_column(name).rechunk())
        chunked = chunked.drop(name)  # frees the pieces of the column just copied
    return pl.DataFrame(columns)


def open_table(path: str | Path, expect: TableSchema | Sequence[TableSchema]) -> TableFile:
    """Opens a Parquet artifact and checks it holds one of the expected tables, of a version this apexctl knows,
    with all of its columns; reads no rows (but the whole of stdin, which cannot be read twice).

    Files without apexctl metadata (made by other tools) are accepted when their columns fit one expected schema.
    """
    expected = [expect] if isinstance(expect, TableSchema) else list(expect)
    name = describe(path)
    try:
        if str(path) == STDIO or not existing_file(path, "a Parquet file").is_file():
            # stdin, or a pipe such as `<(zstdcat t.parquet.zst)`: it can be read once only, so it is held in memory
            data = _read_bytes(path)
            digest = sha256_bytes(data)
            handle: Any = io.BytesIO(data)
            origin = _Origin(None, None, data)
        else:
            handle = Path(path)
            with open(handle, "rb") as stream:
                origin = _Origin(handle, _identity(os.fstat(stream.fileno())), None)
                digest = _sha256_stream(stream)
        # Arrow reads the footer only (the rows are polars', `TableFile.read`), on no I/O or CPU thread of its own: with
        # polars loaded, Arrow's thread pools sometimes abort the interpreter at exit ("terminate called without an
        # active exception", apache/arrow#34314), ~1 run in 4.
        parquet = pq.ParquetFile(handle, pre_buffer=False)
        names = parquet.schema_arrow.names
    except OSError as exc:
        if isinstance(exc, FileNotFoundError | IsADirectoryError | PermissionError):
            raise InputError(f"{name}: cannot read: {exc.strerror or exc}") from exc
        raise InputError(f"{name}: not a readable Parquet file ({exc})") from exc
    except (pa.ArrowException, ValueError) as exc:
        raise InputError(f"{name}: not a readable Parquet file ({exc})") from exc
    metadata = _decode_metadata(parquet.schema_arrow.metadata)
    seen: set[str] = set()
    for column in names:  # polars refuses such a table with a DuplicateError traceback
        if column in seen:
            raise SchemaError(
                f"{safe(name)}: column '{safe(column)}' appears {names.count(column)} times; a table's column names "
                "must be unique (re-write the file with one column of each name)"
            )
        seen.add(column)
    declared = metadata.get(META_SCHEMA)
    if isinstance(declared, dict) and "name" in declared:
        schema = next((s for s in expected if s.name == declared["name"]), None)
        wanted = " or ".join(f"'{s.name}'" for s in expected)
        if schema is None:
            raise SchemaError(f"{name}: holds a '{declared['name']}' table, expected {wanted}")
        version = declared.get("version")
        if not isinstance(version, int) or version > schema.version or version < 1:
            raise SchemaError(
                f"{name}: '{schema.name}' table of schema version {version}; this apexctl {__version__} reads "
                f"versions 1 to {schema.version} (upgrade apexctl or re-create the file)"
            )
    else:
        # Without provenance the columns are all there is to go by: a closed table (trades, book, bars ...) must have
        # exactly its columns, or a features table (which holds the bars' columns and more) would pass for bars.
        complete = [s for s in expected if all(c in names for c in s.column_names)]
        fits = [s for s in complete if s.open or set(names) == set(s.column_names)]
        if complete and not fits:
            schema = complete[0]
            extra = [c for c in names if c not in schema.column_names]
            raise SchemaError(
                f"{safe(name)}: has no apexctl metadata (apex.schema) and columns a '{schema.name}' table does not "
                f"have ({', '.join(map(safe, extra[:8]))}{', ...' if len(extra) > 8 else ''}), so what it holds is "
                "unknown; re-create it with apexctl, or keep only the table's columns"
            )
        schema = fits[0] if fits else expected[0]
        version = schema.version
    missing = [c for c in schema.column_names if c not in names]
    if missing:
        raise SchemaError(
            f"{name}: missing column{'s' if len(missing) > 1 else ''} {', '.join(repr(m) for m in missing)} "
            f"of the '{schema.name}' table (has: {', '.join(names)})"
        )
    return TableFile(parquet, name, schema, int(version), metadata, digest, origin)


def read_table(path: str | Path, expect: TableSchema | Sequence[TableSchema]) -> Table:
    """The whole table of a Parquet artifact, checked as `open_table` and `TableFile.read` check it."""
    return open_table(path, expect).table()


def _conform(frame: pl.DataFrame, schema: TableSchema, name: str, first_row: int = 0) -> pl.DataFrame:
    """Checks the schema's columns among `frame`'s have castable types and no unexpected nulls (rows counted from
    `first_row`); casts them to the schema's types."""
    present = [column for column in schema.columns if column.name in frame.columns]
    casts = []
    for column in present:
        target = column.dtype() if isinstance(column.dtype, type) else column.dtype
        actual = frame.schema[column.name]
        if actual == target:
            continue
        if target.is_numeric() and not actual.is_numeric():
            raise SchemaError(f"{name}: column '{column.name}' has type {actual}, expected {target}")
        casts.append(pl.col(column.name).cast(target, strict=True))
    if casts:
        try:
            frame = frame.with_columns(casts)
        except pl.exceptions.PolarsError as exc:
            raise SchemaError(f"{name}: cannot convert columns to the '{schema.name}' schema: {exc}") from exc
    for column in present:
        if not column.nullable:
            nulls = frame[column.name].null_count()
            if nulls:
                row = first_row + frame.with_row_index("_row").filter(pl.col(column.name).is_null())["_row"][0]
                raise SchemaError(f"{name}: column '{column.name}' has {nulls} null values (first at row {row})")
    return frame


def check_numeric_columns(frame: pl.DataFrame, names: Sequence[str], source: str, option: str) -> None:
    """SchemaError naming `source` and `option` unless every column of `names` is in `frame` and numeric."""
    absent = [name for name in names if name not in frame.columns]
    if absent:
        has = ", ".join(frame.columns)
        raise SchemaError(f"{source}: {option} names columns the table lacks: {absent} (has: {has})")
    wrong = [name for name in names if not frame.schema[name].is_numeric()]
    if wrong:
        raise SchemaError(f"{source}: {option} names non-numeric columns {wrong}")


def open_tables(paths: Sequence[str | Path], expect: TableSchema | Sequence[TableSchema]) -> list[TableFile]:
    """`open_table` of each path; InputError if stdin is given more than once."""
    if sum(1 for p in paths if str(p) == STDIO) > 1:
        raise InputError("stdin ('-') can be given only once")
    return [open_table(p, expect) for p in paths]
