"""`apexctl fetch --source file`: trade CSVs, ob archives and message lines into tables, against a Python reference."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import zipfile
from decimal import Decimal
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest

from apexctl import _core
from apexctl.errors import DataError
from apexctl.forge.io import read_table
from apexctl.schemas.tables import BOOK, TRADES
from tests.conftest import BYBIT, replay_book, run_cli

DERIV_HEADER = "timestamp,symbol,side,size,price,tickDirection,trdMatchID,grossValue,homeNotional,foreignNotional"


def tardis_messages() -> list[dict]:
    return json.loads((BYBIT / "tardis/bybit_v5_derivatives_messages.json").read_text()) + json.loads(
        (BYBIT / "tardis/bybit_v5_spot_messages.json").read_text()
    )


def reference_book(lines: list[str]) -> list[tuple]:
    """The `book` rows by the protocol text, with plain json.loads and Decimal prices."""
    rows = []
    for line in lines:
        msg = json.loads(line)
        if not msg.get("topic", "").startswith("orderbook."):
            continue
        d = msg["data"]
        levels = [(1, p, q) for p, q in d["b"]] + [(-1, p, q) for p, q in d["a"]]
        for side, p, q in levels or [(0, None, None)]:
            price = float(Decimal(p)) if p is not None else None
            size = float(Decimal(q)) if q is not None else None
            rows.append((msg["ts"] * 1_000_000, d["s"], msg["type"], side, price, size, d["u"], d["seq"]))
    return sorted(rows, key=lambda r: r[0])


def book_lines() -> list[str]:
    return [json.dumps(m) for m in tardis_messages() if m["topic"].startswith("orderbook.")]


def make_ob_zip(path: Path, lines: list[str]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(path.name.removesuffix(".zip"), "\n".join(lines) + "\n")
    return path


def test_ob_zip_matches_reference(tmp_path):
    empty = {"s": "BTCPERP", "b": [], "a": [], "u": 20683570, "seq": 10916156560}
    lines = [
        *book_lines(),
        json.dumps({"topic": "orderbook.50.BTCPERP", "type": "delta", "ts": 1680673821700, "data": empty}),
    ]
    archive = make_ob_zip(tmp_path / "2024-12-01_BTCUSDT_ob200.data.zip", lines)
    out = tmp_path / "book.parquet"
    result = run_cli("fetch", "--source", "file", str(archive), "-o", str(out))
    assert result.returncode == 0, result.stderr.decode()
    table = read_table(out, BOOK)
    got = list(table.frame.iter_rows())
    assert got == reference_book(lines)
    assert table.metadata["apex.schema"] == {"name": "book", "version": 1}
    assert table.metadata["apex.inputs"] == {str(archive): hashlib.sha256(archive.read_bytes()).hexdigest()}
    markers = table.frame.filter(pl.col("side") == 0)
    assert markers.height == 1
    assert markers["price"].null_count() == markers["size"].null_count() == 1


def test_derivatives_csv_gz_descending_exact_timestamps(tmp_path):
    rows = [
        "1585180700.0647,BTCUSDT,Buy,0.5,6634.5,PlusTick,a1,3317250000,0.5,3317.25",
        "1585180700.0647,BTCUSDT,Sell,0.25,6634,MinusTick,a2,1658500000,0.25,1658.5",
        "1585180699.9,BTCUSDT,Sell,1.001,6633.5,ZeroMinusTick,a3,663682350000,1.001,6640.13",
        "1585180642,BTCUSDT,Buy,0.002,6630,PlusTick,a4,1326000000,0.002,13.26",
    ]
    path = tmp_path / "BTCUSDT2020-03-25.csv.gz"
    path.write_bytes(gzip.compress(("\n".join([DERIV_HEADER, *rows]) + "\n").encode()))
    out = tmp_path / "trades.parquet"
    result = run_cli("fetch", str(path), "-o", str(out))
    assert result.returncode == 0, result.stderr.decode()
    frame = read_table(out, TRADES).frame
    assert frame["ts"].to_list() == [
        1585180642_000000000,
        1585180699_900000000,
        1585180700_064700000,
        1585180700_064700000,
    ]
    # Equal timestamps keep file order (stable sort).
    assert frame["trade_id"].to_list() == ["a4", "a3", "a1", "a2"]
    assert frame["side"].to_list() == [1, -1, 1, -1]
    assert frame["price"].to_list() == [6630.0, 6633.5, 6634.5, 6634.0]
    assert frame["size"].to_list() == [0.002, 1.001, 0.5, 0.25]


def test_spot_csv_and_stdin(tmp_path):
    body = "id,timestamp,price,volume,side,rpi\n1,1747612800123,2.345,10.5,buy,0\n2,1747612800123,2.344,3,sell,1\n"
    path = tmp_path / "1INCHUSDT_2025-05-19.csv"
    path.write_text(body)
    out = tmp_path / "spot.parquet"
    assert run_cli("fetch", str(path), "-o", str(out)).returncode == 0
    frame = read_table(out, TRADES).frame
    assert frame.rows() == [
        (1747612800123_000000, "1INCHUSDT", 1, 2.345, 10.5, "1"),
        (1747612800123_000000, "1INCHUSDT", -1, 2.344, 3.0, "2"),
    ]
    # From stdin the name is unknown: --symbol supplies it; without it, a clear error.
    result = run_cli("fetch", "-", "-o", str(tmp_path / "x.parquet"), stdin=body.encode())
    assert result.returncode == 2
    assert "--symbol" in result.stderr.decode()
    result = run_cli("fetch", "-", "--symbol", "1INCHUSDT", "-o", "-", stdin=gzip.compress(body.encode()))
    assert result.returncode == 0, result.stderr.decode()
    piped = pq.read_table(io.BytesIO(result.stdout))
    assert piped.num_rows == 2
    assert json.loads(piped.schema.metadata[b"apex.schema"]) == {"name": "trades", "version": 1}


def test_stdout_pipes_into_a_reader(tmp_path):
    """`fetch ... -o - | next-stage -` : stdout carries exactly one readable book table."""
    archive = make_ob_zip(tmp_path / "2025-06-01_BTCUSDT_ob200.data.zip", book_lines())
    result = run_cli("fetch", str(archive), "-o", "-")
    assert result.returncode == 0, result.stderr.decode()
    frame = pl.read_parquet(io.BytesIO(result.stdout))
    assert frame.columns[:8] == BOOK.column_names
    assert frame.height == len(reference_book(book_lines()))


def test_plain_lines_file_replays(tmp_path):
    """A .jsonl of one clean stream replays through apex-book with no incidents."""
    msgs = [m for m in tardis_messages() if m["topic"] == "orderbook.50.BTCPERP"]
    path = tmp_path / "perp.jsonl"
    path.write_text("\n".join(json.dumps(m) for m in msgs) + "\n")
    out = tmp_path / "perp.parquet"
    assert run_cli("fetch", str(path), "-o", str(out)).returncode == 0
    summary = replay_book(read_table(out, BOOK).frame)
    assert summary["incidents"] == []
    assert summary["books"][0]["best_bid"] == (28555.2, 0.677)


def one_error_line(result) -> str:
    assert result.returncode == 2, (result.returncode, result.stderr.decode())
    text = result.stderr.decode().strip()
    assert len(text.splitlines()) == 1, text
    return text


def test_bad_inputs_exit_2_with_one_line_and_no_output(tmp_path):
    out = tmp_path / "out.parquet"
    assert "no such file" in one_error_line(run_cli("fetch", str(tmp_path / "missing.csv.gz"), "-o", str(out)))

    corrupt = tmp_path / "2024-12-01_XRPUSDT_ob500.data.zip"
    corrupt.write_bytes(b"PK\x03\x04" + b"\x00" * 64)
    assert "zip" in one_error_line(run_cli("fetch", str(corrupt), "-o", str(out)))

    table = tmp_path / "trades.parquet"  # a table fetch wrote: features reads it, fetch does not
    pl.DataFrame({"ts": [1]}).write_parquet(table)
    line = one_error_line(run_cli("fetch", str(table), "-o", str(out)))
    assert line.endswith(f"{table}: a Parquet table, not a Bybit file: fetch --source file reads Bybit's trade CSVs "
                         "and order-book archives; `apexctl features` reads tables"), line  # fmt: skip

    html = tmp_path / "2024-12-01_BTCUSDT_ob200.data.zip.html.zip"
    html.write_text("<html>Not Found</html>")
    assert "not a readable zip archive" in one_error_line(run_cli("fetch", str(html), "-o", str(out)))

    truncated = make_ob_zip(tmp_path / "t_ob200.data.zip", book_lines())
    data = truncated.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    assert "zip" in one_error_line(run_cli("fetch", str(truncated), "-o", str(out)))

    lines = book_lines()
    lines[2] = lines[2].replace('"u": ', '"u": "x')
    bad = make_ob_zip(tmp_path / "bad_ob200.data.zip", lines)
    message = one_error_line(run_cli("fetch", str(bad), "-o", str(out)))
    assert "bad_ob200.data.zip:bad_ob200.data: line 3: malformed JSON" in message

    lines = book_lines()
    lines[2] = lines[2].replace('"28555.30"', '"28555.3O"')
    bad = tmp_path / "price.data"
    bad.write_text("\n".join(lines) + "\n")
    message = one_error_line(run_cli("fetch", str(bad), "-o", str(out)))
    assert message.endswith("price.data: line 3: orderbook.50.BTCPERP: non-numeric price in data.a[0] '28555.3O'")

    header = tmp_path / "odd.csv"
    header.write_text("time,px,qty\n1,2,3\n")
    message = one_error_line(run_cli("fetch", str(header), "-o", str(out)))
    assert "unknown CSV header 'time,px,qty'" in message
    assert DERIV_HEADER in message
    assert "id,timestamp,price,volume,side" in message

    csv = tmp_path / "BTCUSDT2020-03-25.csv"
    csv.write_text(f"{DERIV_HEADER}\n1585180700.0647,BTCUSDT,Buy,0.5,abc,PlusTick,a1,1,0.5,1\n")
    message = one_error_line(run_cli("fetch", str(csv), "-o", str(out)))
    assert "line 2: column 'price' holds 'abc'" in message
    for column, row in (("price", "0.5,-5"), ("size", "0,28555.3")):
        csv.write_text(f"{DERIV_HEADER}\n1585180700.0647,BTCUSDT,Buy,{row},PlusTick,a1,1,0.5,1\n")
        message = one_error_line(run_cli("fetch", str(csv), "-o", str(out)))
        assert f"line 2: column '{column}' holds" in message
        assert message.endswith("expected a positive decimal number")

    assert "is a folder" in one_error_line(run_cli("fetch", str(csv), "-o", str(tmp_path)))

    assert not out.exists()
    assert not list(tmp_path.glob(".out.parquet.*"))


def test_mixed_kinds_need_separate_runs(tmp_path):
    archive = make_ob_zip(tmp_path / "2025-06-01_BTCUSDT_ob200.data.zip", book_lines())
    csv = tmp_path / "BTCUSDT_2025-06-01.csv"
    csv.write_text("id,timestamp,price,volume,side,rpi\n1,1747612800123,2.345,10.5,buy,0\n")
    message = one_error_line(run_cli("fetch", str(archive), str(csv), "-o", str(tmp_path / "o.parquet")))
    assert "run fetch once per kind" in message
    # Several inputs of one kind concatenate, sorted by time.
    csv2 = tmp_path / "BTCUSDT_2025-05-31.csv"
    csv2.write_text("id,timestamp,price,volume,side,rpi\n7,1747612700000,2.3,1,sell,0\n")
    out = tmp_path / "t.parquet"
    assert run_cli("fetch", str(csv), str(csv2), "-o", str(out)).returncode == 0
    assert read_table(out, TRADES).frame["trade_id"].to_list() == ["7", "1"]


def test_binding_errors_are_data_errors():
    with pytest.raises(DataError, match=r"^line 7: malformed JSON"):
        _core.bybit_parse_lines(b"{", first_line=7)
    result = _core.bybit_parse_lines(("\n".join(book_lines()) + "\n").encode())
    assert result["symbols"] == ["BTCUSDT", "BTCPERP"]
    assert result["book"]["symbol"].dtype == np.uint32
    assert result["lines"] == len(book_lines())


def test_gzipped_lines_and_empty_input(tmp_path):
    path = tmp_path / "recording.jsonl.gz"
    path.write_bytes(gzip.compress(("\n".join(book_lines()) + "\n").encode()))
    out = tmp_path / "book.parquet"
    assert run_cli("fetch", str(path), "-o", str(out)).returncode == 0
    assert list(read_table(out, BOOK).frame.iter_rows()) == reference_book(book_lines())
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert one_error_line(run_cli("fetch", str(empty), "-o", str(out))).endswith("empty.csv: empty input")


def test_an_empty_symbol_list_for_the_simulator_is_refused_not_defaulted(tmp_path):
    out = tmp_path / "sim"
    message = one_error_line(run_cli("fetch", "--source", "sim", "--symbols", "", "--hours", "0.01", "-o", str(out)))
    assert message == "apexctl: error: --symbols: give at least one symbol"
    assert not out.exists()


def test_the_same_input_twice_is_refused_and_overlapping_trade_files_keep_each_trade_once(tmp_path):
    rows = [
        "1585180642,BTCUSDT,Buy,0.002,6630,PlusTick,a1,1326000000,0.002,13.26",
        "1585180699.9,BTCUSDT,Sell,1.001,6633.5,ZeroMinusTick,a2,663682350000,1.001,6640.13",
        "1585180700.0647,BTCUSDT,Buy,0.5,6634.5,PlusTick,a3,3317250000,0.5,3317.25",
    ]

    def csv(name: str, lines: list[str]) -> Path:
        path = tmp_path / name
        path.write_bytes(gzip.compress(("\n".join([DERIV_HEADER, *lines]) + "\n").encode()))
        return path

    day = csv("BTCUSDT2020-03-25.csv.gz", rows)
    copy = tmp_path / "copy.csv.gz"
    copy.write_bytes(day.read_bytes())
    out = tmp_path / "trades.parquet"
    for twice in ([day, day], [day, copy]):
        result = run_cli("fetch", *map(str, twice), "-o", str(out))
        assert result.returncode == 2, result.stderr.decode()
        line = one_error_line(result)
        assert f"the same data as {day}" in line, line
        assert "give each input once" in line, line
        assert not out.exists()
    # Two files that overlap by one trade (a2): every trade once, the first file's row kept.
    overlap = csv("late.csv.gz", [rows[1].replace("ZeroMinusTick", "MinusTick"), rows[2]])
    result = run_cli("fetch", str(day), str(overlap), "-o", str(out))
    assert result.returncode == 0, result.stderr.decode()
    assert "dropped 2 trades repeated across the inputs" in result.stderr.decode()
    assert read_table(out, TRADES).frame["trade_id"].to_list() == ["a1", "a2", "a3"]
    # An id used again for another trade is no repeat but a second source of the symbol (simulated runs number their
    # trades from 1), which `features` refuses: fetch refuses it already, naming both files and what differs.
    out.unlink()
    reused = csv("reused.csv.gz", [rows[2].replace("1585180700.0647", "1585180800").replace(",a3,", ",a1,")])
    result = run_cli("fetch", str(day), str(reused), "-o", str(out))
    assert result.returncode == 2, result.stderr.decode()
    assert one_error_line(result) == (
        f"apexctl: error: {day} and {reused} hold trade a1 of BTCUSDT twice with different content (ts "
        "1585180642000000000 vs 1585180800000000000, price 6630.0 vs 6634.5, size 0.002 vs 0.5); these look like two "
        "different sources of one symbol: fetch the files of one source into one table"
    )
    assert not out.exists()
    one_file = csv("one.csv.gz", [*rows, rows[2].replace("1585180700.0647", "1585180800").replace(",a3,", ",a1,")])
    result = run_cli("fetch", str(one_file), "-o", str(out))
    assert result.returncode == 2, result.stderr.decode()
    assert f"{one_file} holds trade a1 of BTCUSDT twice with different content" in one_error_line(result)


def test_a_symbol_outside_bybits_spelling_is_refused_and_lower_case_is_raised(tiny, tmp_path):
    """A spot CSV holds no symbol: --symbol names it, and every later stage (and the live engine) expects Bybit's
    spelling, so 'bad sym' is refused before anything is read; 'btcusdt' is BTCUSDT."""
    from tests.conftest import run_here

    ran = run_here("fetch", "--source", "file", str(tiny.csv), "--symbol", "bad sym", "-o", str(tmp_path / "t.parquet"))
    assert ran.code == 2, ran.stderr
    assert ran.stderr.strip() == (
        "apexctl: error: --symbol: 'BAD SYM' is not a symbol the live engine trades: upper-case letters and digits, "
        "e.g. BTCUSDT"
    )
    assert not (tmp_path / "t.parquet").exists()


def test_file_source_refuses_the_options_of_the_other_sources(tiny, tmp_path):
    """--hours or --seed beside an archive file (the default source) changed nothing and said nothing."""
    from tests.conftest import run_here

    ran = run_here("fetch", str(tiny.csv), "--hours", "3", "--seed", "2", "-o", str(tmp_path / "t.parquet"))
    assert ran.code == 2, ran.stderr
    assert ran.stderr.strip() == (
        "apexctl: error: --seed, --hours: not used by --source file (it reads the files as they are); drop them"
    )
    assert run_here("fetch", str(tiny.csv), "--symbol", "BTCUSDT", "-o", str(tmp_path / "t.parquet")).code == 0


@pytest.mark.parametrize("source", ["sim", "bybit", "file"])
def test_symbol_and_symbols_given_together_are_refused(tmp_path, source):
    """--symbol and --symbols are one option: `--symbols BTCUSDT --symbol ETHUSDT` fetched ETHUSDT alone, exit 0."""
    from tests.conftest import run_here

    out = tmp_path / ("out.parquet" if source == "file" else "out")
    ran = run_here("fetch", "--source", source, "--symbols", "BTCUSDT", "--symbol", "ETHUSDT", "-o", str(out))
    assert ran.code == 2, ran.stderr
    assert ran.stderr == (
        "apexctl: error: --symbol/--symbols given 2 times ('BTCUSDT', 'ETHUSDT'): they are one option and only the "
        "last would count; give it once, comma separated (--symbols BTCUSDT,ETHUSDT)\n"
    )
    assert not out.exists()
    ran = run_here("fetch", "--source", "sim", "--symbol", "ETHUSDT", "--hours", "0.01", "-o", str(tmp_path / "one"))
    assert ran.code == 0, ran.stderr
    assert pl.read_parquet(tmp_path / "one" / "book.parquet")["symbol"].unique().to_list() == ["ETHUSDT"]


def test_two_sources_of_one_book_are_refused_and_overlapping_pieces_of_one_are_kept(tmp_path):
    """Book messages with one update id at one time but other levels in two inputs are two books of one symbol
    (simulated runs share their clock and number updates from 1); `features` refuses such inputs, and a table
    fetched from them would hide that behind one file."""
    msgs = [m for m in tardis_messages() if m["topic"] == "orderbook.50.BTCPERP"]
    assert len(msgs) >= 2

    def lines(name: str, messages: list[dict]) -> Path:
        path = tmp_path / name
        path.write_text("\n".join(json.dumps(m) for m in messages) + "\n")
        return path

    out = tmp_path / "book.parquet"
    early, late = lines("early.jsonl", msgs), lines("late.jsonl", msgs[1:])
    result = run_cli("fetch", str(early), str(late), "-o", str(out))
    assert result.returncode == 0, result.stderr.decode()
    assert read_table(out, BOOK).frame["update_id"].n_unique() == len({m["data"]["u"] for m in msgs})
    out.unlink()
    other = json.loads(json.dumps(msgs[1]))
    side = "b" if other["data"]["b"] else "a"
    other["data"][side][0][1] = str(Decimal(other["data"][side][0][1]) + 1)
    second = lines("second.jsonl", [other])
    result = run_cli("fetch", str(early), str(second), "-o", str(out))
    when = np.datetime64(msgs[1]["ts"] // 1000, "s").astype(str).replace("T", " ")
    assert one_error_line(result) == (
        f"apexctl: error: {early} and {second} hold book message {msgs[1]['data']['u']} of BTCPERP at {when} UTC "
        "twice with different content (the same number of levels at other prices or sizes); these look like two "
        "different sources of one symbol's book: fetch the files of one source into one table"
    )
    assert not out.exists()
