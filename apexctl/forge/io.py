"""Artifact I/O: Parquet tables with provenance metadata, atomic writes, `-` for stdin/stdout, schema checks on read."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from apexctl import __version__
from apexctl.errors import InputError, SchemaError
from apexctl.schemas.tables import TableSchema

META_SCHEMA = "apex.schema"
META_PRODUCER = "apex.producer"
META_INPUTS = "apex.inputs"
META_PARAMS = "apex.params"
META_INSTRUMENTS = "apex.instruments"

STDIO = "-"


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
        """Instrument info per symbol (tick_size, qty_step as decimal strings) when the producer recorded it."""
        value = self.metadata.get(META_INSTRUMENTS)
        return value if isinstance(value, dict) else {}


def describe(path: str | Path) -> str:
    return "stdin" if str(path) == STDIO else str(path)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@contextlib.contextmanager
def atomic_output(path: str | Path) -> Iterator[BinaryIO]:
    """Yields a binary handle; on success the bytes appear under `path` in one rename (or go to stdout for `-`).

    A failure or a kill leaves no file under the final name; the temporary file sits in the same folder so the
    rename never crosses file systems.
    """
    if str(path) == STDIO:
        buffer = io.BytesIO()
        yield buffer
        sys.stdout.buffer.write(buffer.getvalue())
        sys.stdout.buffer.flush()
        return
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


def write_json(doc: Mapping[str, Any], path: str | Path) -> None:
    """Writes a JSON document (with its "schema" field) atomically; `-` = stdout."""
    with atomic_output(path) as handle:
        handle.write((json.dumps(doc, indent=2, sort_keys=False, default=str) + "\n").encode())


def provenance(
    schema: TableSchema,
    producer: str,
    inputs: Mapping[str, str] | None = None,
    params: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, str]:
    """The file-level key-value metadata every table carries (values are JSON)."""
    meta = {
        META_SCHEMA: json.dumps({"name": schema.name, "version": schema.version}),
        META_PRODUCER: json.dumps({"command": producer, "version": __version__}),
        META_INPUTS: json.dumps(dict(inputs or {}), sort_keys=True),
        META_PARAMS: json.dumps(dict(params or {}), sort_keys=True, default=str),
    }
    for key, value in (extra or {}).items():
        meta[key] = json.dumps(value, sort_keys=True)
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
    missing = [name for name in schema.column_names if name not in frame.columns]
    if missing:
        raise SchemaError(f"internal: table '{schema.name}' to write lacks columns {missing}")
    ordered = schema.column_names + [c for c in frame.columns if c not in schema.column_names]
    arrow = frame.select(ordered).cast(schema.polars_schema(), strict=True).to_arrow()
    arrow = arrow.replace_schema_metadata(provenance(schema, producer, inputs, params, extra))
    with atomic_output(path) as handle:
        pq.write_table(arrow, handle, compression="zstd")


def _read_bytes(path: str | Path) -> bytes:
    if str(path) == STDIO:
        data = sys.stdin.buffer.read()
        if not data:
            raise InputError("stdin is empty: expected a Parquet table (pipe the output of another apexctl command)")
        return data
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such file")
    if p.is_dir():
        raise InputError(f"{p}: is a directory, expected a Parquet file")
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


def read_table(path: str | Path, expect: TableSchema | Sequence[TableSchema]) -> Table:
    """Reads a Parquet artifact and checks it holds one of the expected tables, of a version this apexctl knows.

    Files without apexctl metadata (made by other tools) are accepted when their columns fit one expected schema.
    """
    expected = [expect] if isinstance(expect, TableSchema) else list(expect)
    name = describe(path)
    data = _read_bytes(path)
    try:
        # No Arrow I/O or CPU threads: with polars loaded, a parquet read on Arrow's thread pools sometimes aborts the
        # interpreter at exit ("terminate called without an active exception", apache/arrow#34314), ~1 run in 4.
        parquet = pq.ParquetFile(io.BytesIO(data), pre_buffer=False)
        arrow = parquet.read(use_threads=False)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise InputError(f"{name}: not a readable Parquet file ({exc})") from exc
    metadata = _decode_metadata(arrow.schema.metadata)
    frame = pl.from_arrow(arrow)
    assert isinstance(frame, pl.DataFrame)
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
        fits = [s for s in expected if all(c in frame.columns for c in s.column_names)]
        schema = fits[0] if fits else expected[0]
        version = schema.version
    frame = _conform(frame, schema, name)
    return Table(frame, name, schema.name, int(version), metadata, sha256_bytes(data))


def _conform(frame: pl.DataFrame, schema: TableSchema, name: str) -> pl.DataFrame:
    """Checks required columns exist with castable types and no unexpected nulls; casts to the schema's types."""
    missing = [c for c in schema.column_names if c not in frame.columns]
    if missing:
        raise SchemaError(
            f"{name}: missing column{'s' if len(missing) > 1 else ''} {', '.join(repr(m) for m in missing)} "
            f"of the '{schema.name}' table (has: {', '.join(frame.columns)})"
        )
    casts = []
    for column in schema.columns:
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
    for column in schema.columns:
        if not column.nullable:
            nulls = frame[column.name].null_count()
            if nulls:
                row = frame.with_row_index("_row").filter(pl.col(column.name).is_null())["_row"][0]
                raise SchemaError(f"{name}: column '{column.name}' has {nulls} null values (first at row {row})")
    return frame


def read_tables(paths: Sequence[str | Path], expect: TableSchema | Sequence[TableSchema]) -> list[Table]:
    if sum(1 for p in paths if str(p) == STDIO) > 1:
        raise InputError("stdin ('-') can be given only once")
    return [read_table(p, expect) for p in paths]
