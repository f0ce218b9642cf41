"""Where outputs may go. Behind symbolic links: a file or folder output that is a link is written through to its
target (as a shell's `>` does); the link itself stays a link, so `-o /dev/stdout` never replaces the system's link.
Not inside another output that is replaced as a whole, not to stdout where files are written beside it, and the
same input data is not read twice."""

from __future__ import annotations

import os
import shutil

import polars as pl
import pytest

from apexctl.forge import io, outputs
from tests.conftest import run_here


def test_a_file_output_that_is_a_link_is_written_through_and_the_link_kept(tiny, tmp_path):
    target = tmp_path / "kept" / "target.parquet"
    target.parent.mkdir()
    target.write_bytes(b"old")
    link = tmp_path / "link.parquet"
    link.symlink_to(target)
    ran = run_here("features", str(tiny.data / "bars.parquet"), "--grain", "1m", "-o", str(link))
    assert ran.code == 0, ran.stderr
    assert link.is_symlink()
    assert link.resolve() == target
    assert pl.read_parquet(target).height > 0
    assert sorted(p.name for p in target.parent.iterdir()) == ["target.parquet"], "no temporary file left beside it"


def test_a_folder_output_that_is_a_link_is_published_into_its_target(tmp_path):
    real = tmp_path / "runs" / "2026-12-03"
    real.mkdir(parents=True)
    latest = tmp_path / "latest"
    latest.symlink_to(real, target_is_directory=True)
    ran = run_here("simulate", "--hours", "0.02", "--seed", "3", "-o", str(latest))
    assert ran.code == 0, ran.stderr
    assert latest.is_symlink()
    assert latest.resolve() == real
    assert (real / "summary.json").is_file()
    assert sorted(p.name for p in real.parent.iterdir()) == ["2026-12-03"], "no staging folder or lock left"


def test_written_path_follows_a_chain_of_links_and_leaves_plain_paths_alone(tmp_path):
    end = tmp_path / "end.json"
    (tmp_path / "middle.json").symlink_to(end)
    (tmp_path / "first.json").symlink_to(tmp_path / "middle.json")
    assert outputs.written_path(tmp_path / "first.json") == end
    assert outputs.written_path(tmp_path / "plain.json") == tmp_path / "plain.json"
    with io.atomic_output(tmp_path / "first.json") as handle:
        handle.write(b"{}")
    assert end.read_bytes() == b"{}"
    assert os.path.islink(tmp_path / "first.json")
    assert os.path.islink(tmp_path / "middle.json")


def test_an_output_inside_a_folder_output_is_refused(tiny, tmp_path):
    """judge's -o inside its --report folder: the folder is published by a rename over it, so the -o document
    written just before would be lost while the run said it wrote it."""
    report = tmp_path / "report"
    for earlier in (False, True):
        if earlier:
            assert run_here("judge", str(tiny.ledger), "-o", "-", "--report", str(report)).code == 0
        before = sorted(p.name for p in report.iterdir()) if earlier else None
        ran = run_here("judge", str(tiny.ledger), "-o", str(report / "copy.json"), "--report", str(report))
        assert ran.code == 2, ran.stderr
        assert f"{report / 'copy.json'}: is inside {report}, which is replaced as a whole" in ran.stderr
        assert (sorted(p.name for p in report.iterdir()) if earlier else None) == before
        assert report.exists() == earlier


def test_judge_names_the_one_of_its_outputs_at_fault(tiny, tmp_path):
    """judge checks -o and --report together: each error named "-o/--report", leaving the user to guess which."""
    (tmp_path / "folder").mkdir()
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    (tmp_path / "file").write_text("x")
    cases = [
        (("-o", str(tmp_path / "folder"), "--report", str(tmp_path / "r")), f"-o {tmp_path / 'folder'}: is a folder"),
        (("-o", str(tmp_path / "j.json"), "--report", str(tmp_path / "busy")), f"--report {tmp_path / 'busy'}: exists"),
        (("-o", str(tmp_path / "j.json"), "--report", str(tmp_path / "file")), f"--report {tmp_path / 'file'}: exists"),
        (("-o", str(tmp_path / "r" / "j.json"), "--report", str(tmp_path / "r")), f"-o {tmp_path / 'r' / 'j.json'}:"),
    ]
    for args, start in cases:
        ran = run_here("judge", str(tiny.ledger), *args)
        assert ran.code == 2, ran.stderr
        assert ran.stderr.strip().splitlines()[-1].startswith(f"apexctl: error: {start}"), ran.stderr
        assert "-o/--report" not in ran.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("simulate", "--hours", "0.02"),
        ("train", "iel", "--episodes", "4", "--envs", "2", "--eval-episodes", "2"),
        ("chimera", "--target", "{data}", "--budget", "2", "--popsize", "2", "--hours", "0.02"),
        ("train", "maml", "--features", "{features}"),
    ],
    ids=["simulate", "train-iel", "chimera", "train-maml"],
)
def test_stdout_is_refused_where_the_output_is_a_folder_or_has_files_beside_it(tiny, tmp_path, monkeypatch, args):
    monkeypatch.chdir(tmp_path)
    args = tuple(a.format(data=tiny.data, features=tiny.features) for a in args)
    ran = run_here(*args, "-o", "-")
    assert ran.code == 2, ran.stderr
    assert ran.stderr.count("\n") == 1, ran.stderr
    assert "-o" in ran.stderr
    assert "stdout" in ran.stderr or "file path" in ran.stderr, ran.stderr
    assert ran.stdout == b""
    assert list(tmp_path.iterdir()) == [], "nothing written (no file or folder named '-', no report beside it)"


def test_the_same_input_data_twice_is_refused(tiny, tmp_path):
    """The same trades twice would double every bar's volume and trade count: by one path given twice or a copy."""
    trades = tiny.data / "trades.parquet"
    copy = tmp_path / "copy.parquet"
    shutil.copyfile(trades, copy)
    for second in (trades, copy):
        ran = run_here("features", str(trades), str(second), "--grain", "1m", "-o", str(tmp_path / "f.parquet"))
        assert ran.code == 2, ran.stderr
        assert f"{second}: the same data as {trades}" in ran.stderr
        assert "give each input once" in ran.stderr
    assert not (tmp_path / "f.parquet").exists()
    ran = run_here("features", str(trades), str(tiny.data / "book.parquet"), "--grain", "1m", "-o", "-")
    assert ran.code == 0, ran.stderr


def test_trades_files_that_overlap_are_refused_naming_both_rows(tiny, tmp_path):
    """Two files that share some trades (two days around midnight, two recordings) would count those twice."""
    from apexctl.schemas.tables import TRADES

    trades = pl.read_parquet(tiny.data / "trades.parquet")
    third = trades.height // 3
    early, late = tmp_path / "early.parquet", tmp_path / "late.parquet"
    io.write_table(trades.slice(0, 2 * third), early, schema=TRADES, producer="test")
    io.write_table(trades.slice(third), late, schema=TRADES, producer="test")
    ran = run_here("features", str(early), str(late), "--grain", "1m", "-o", str(tmp_path / "f.parquet"))
    assert ran.code == 2, ran.stderr
    assert ran.stderr.count("\n") == 1, ran.stderr
    trade_id = trades["trade_id"][third]
    assert f"{late}: trades table, row 0: trade {trade_id} of " in ran.stderr
    assert f"is already at {early}: trades table, row {third}; the inputs overlap" in ran.stderr
    assert "Fetch the source files in one run (`apexctl fetch --source file A B` keeps each trade once)" in ran.stderr
    assert not (tmp_path / "f.parquet").exists()
    # One file that holds a trade twice says so.
    repeated = tmp_path / "repeated.parquet"
    io.write_table(pl.concat([trades, trades.slice(third, 1)]), repeated, schema=TRADES, producer="test")
    ran = run_here("features", str(repeated), "--grain", "1m", "-o", str(tmp_path / "f.parquet"))
    assert ran.code == 2, ran.stderr
    assert f"is already at {repeated}: trades table, row {third}; the file repeats it" in ran.stderr
    apart = tmp_path / "apart.parquet"
    io.write_table(trades.slice(2 * third), apart, schema=TRADES, producer="test")
    ran = run_here("features", str(early), str(apart), "--grain", "1m", "-o", str(tmp_path / "f.parquet"))
    assert ran.code == 0, ran.stderr


@pytest.mark.parametrize(
    "command",
    [
        ["causal", "{loop}", "-o", "{out}/c.json"],
        ["causal", "{bars}", "-o", "{loop}"],
        ["features", "{loop}", "-o", "{out}/f.parquet"],
        ["judge", "{loop}", "-o", "{out}/j.json"],
        ["venue", "--accounts", "{loop}", "--duration", "1"],
    ],
)
def test_a_loop_of_symbolic_links_is_named_not_a_traceback(tiny, tmp_path, command):
    """Path.resolve raises a bare RuntimeError on a link loop: every path a command checks names it instead."""
    loop = tmp_path / "l1"
    (tmp_path / "l2").symlink_to(loop)
    loop.symlink_to(tmp_path / "l2")
    names = {"{loop}": str(loop), "{out}": str(tmp_path), "{bars}": str(tiny.data / "bars.parquet")}
    ran = run_here(*[names.get(a, a).replace("{out}", str(tmp_path)) for a in command])
    assert ran.code == 2, ran.stderr
    assert ran.stderr.count("\n") == 1, ran.stderr
    assert f"{loop}: a loop of symbolic links" in ran.stderr


def test_an_output_name_too_long_for_its_temporary_files_is_refused_before_any_work(tiny, tmp_path):
    name = "z" * 245 + ".json"
    ran = run_here("causal", str(tiny.data / "bars.parquet"), "-o", str(tmp_path / name))
    assert ran.code == 2, ran.stderr
    assert "the name is 250 bytes long; keep it under 200" in ran.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_copy_of_a_ledger_is_the_same_ledger_given_twice(tiny, tmp_path):
    copy = tmp_path / "copy.sqlite"
    shutil.copyfile(tiny.ledger, copy)
    ran = run_here("judge", str(tiny.ledger), str(copy), "-o", str(tmp_path / "j.json"))
    assert ran.code == 2, ran.stderr
    assert f"{copy}: the same data as {tiny.ledger}" in ran.stderr
    assert not (tmp_path / "j.json").exists()


def test_trades_and_a_book_that_never_overlap_are_refused(tiny, tmp_path):
    """A book of another day gave every bar NaN book columns and exit 0: it is refused naming both files."""
    from apexctl.schemas.tables import TRADES

    later = pl.read_parquet(tiny.data / "trades.parquet").with_columns(pl.col("ts") + 10 * 86_400 * 10**9)
    shifted = tmp_path / "shifted.parquet"
    io.write_table(later, shifted, schema=TRADES, producer="test")
    book = tiny.data / "book.parquet"
    ran = run_here("features", str(shifted), str(book), "--grain", "1m", "-o", str(tmp_path / "f.parquet"))
    assert ran.code == 2, ran.stderr
    assert ran.stderr.startswith(f"apexctl: error: {shifted}, {book}: "), ran.stderr
    assert "do not overlap, so every bar would have no book" in ran.stderr
    assert not (tmp_path / "f.parquet").exists()


def test_two_sources_of_one_symbol_are_refused_naming_both_rows(tmp_path):
    """Two simulated runs share their clock and number trades and book updates from 1: given together, their trades
    (and their books) were mixed into one bar series of two markets, exit 0."""
    from apexctl.schemas.tables import BOOK, TRADES

    for seed in ("1", "2"):
        ran = run_here(
            "fetch", "--source", "sim", "--symbols", "BTCUSDT", "--hours", "0.02", "--seed", seed,
            "-o", str(tmp_path / seed),
        )  # fmt: skip
        assert ran.code == 0, ran.stderr
    a, b = (tmp_path / s / "trades.parquet" for s in ("1", "2"))
    ran = run_here("features", str(a), str(b), "--grain", "1m", "-o", str(tmp_path / "f.parquet"))
    assert ran.code == 2, ran.stderr
    assert ran.stderr.count("\n") == 1, ran.stderr
    assert f"{a}: trades table, row 0" in ran.stderr
    assert f"{b}: trades table, row 0" in ran.stderr
    assert "trades table, row 0: trade 1 of BTCUSDT twice with different content (ts " in ran.stderr
    assert "these look like two different sources of one symbol" in ran.stderr
    # One file that holds an id twice with another price says the same.
    trades = pl.read_parquet(a)
    changed = tmp_path / "changed.parquet"
    io.write_table(
        pl.concat([trades, trades.slice(5, 1).with_columns(pl.col("price") + 1)]), changed, schema=TRADES,
        producer="test",
    )  # fmt: skip
    ran = run_here("features", str(changed), "--grain", "1m", "-o", str(tmp_path / "f.parquet"))
    assert ran.code == 2, ran.stderr
    assert f"{changed}: trades table, row 5 and {changed}: trades table, row {trades.height}: trade " in ran.stderr
    assert "(price " in ran.stderr
    books = [str(tmp_path / s / "book.parquet") for s in ("1", "2")]
    for grain, trades_of_one in (("update", []), ("1m", [str(a)])):
        ran = run_here("features", *trades_of_one, *books, "--grain", grain, "-o", str(tmp_path / "f.parquet"))
        assert ran.code == 2, ran.stderr
        assert ran.stderr.count("\n") == 1, ran.stderr
        assert (
            f"{books[0]}: book table, row 0 and {books[1]}: book table, row 0: book message 1 of BTCUSDT" in ran.stderr
        )
        assert "two different sources of one symbol's book" in ran.stderr
    assert not (tmp_path / "f.parquet").exists()
    # Two overlapping pieces of one book are one source: not refused.
    book = pl.read_parquet(books[0])

    def message_start(row: int) -> int:
        return int(book["ts"].search_sorted(book["ts"][row]))

    early, late = tmp_path / "early.parquet", tmp_path / "late.parquet"
    io.write_table(book.slice(0, message_start(book.height * 2 // 3)), early, schema=BOOK, producer="test")
    io.write_table(book.slice(message_start(book.height // 3)), late, schema=BOOK, producer="test")
    ran = run_here("features", str(early), str(late), "--grain", "update", "-o", str(tmp_path / "f.parquet"))
    assert "two different sources" not in ran.stderr
