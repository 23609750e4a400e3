from __future__ import annotations

import json
from pathlib import Path

import pytest

from ctxcomp.errors import InputError
from ctxcomp.reporting.ledger import Ledger
from ctxcomp.reporting.reader import LedgerReader, parse_since
from ctxcomp.reporting.records import CompressionRecord, to_row


def _row(stamp: float, tenant: str = "a") -> str:
    return json.dumps(to_row(CompressionRecord.from_counts("gpt-4o-mini", 100, 10, tenant=tenant, timestamp=stamp)))


def test_truncated_last_line_is_skipped_with_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "l.jsonl"
    path.write_text(_row(1) + "\n" + _row(2) + "\n" + _row(3)[:40])
    reader = LedgerReader(path)
    assert [r.timestamp for r in reader] == [1, 2]
    assert reader.skipped == 1 and "l.jsonl:3: truncated last line" in reader.problems[0]


def test_bad_middle_lines_are_listed_and_the_rest_read(tmp_path: Path) -> None:
    path = tmp_path / "l.jsonl"
    path.write_text("\n".join([_row(1), "{not json", "", '{"kind": "alien"}', _row(2)]) + "\n")
    reader = LedgerReader(path)
    assert [r.timestamp for r in reader] == [1, 2]
    assert reader.skipped == 2
    assert "l.jsonl:2: not JSON" in reader.problems[0] and "unknown row kind" in reader.problems[1]


def test_since_filters(tmp_path: Path) -> None:
    path = tmp_path / "l.jsonl"
    path.write_text("".join(_row(t) + "\n" for t in (10, 20, 30)))
    assert [r.timestamp for r in LedgerReader(path, since=20)] == [20, 30]


def test_parse_since() -> None:
    assert parse_since("90m", now=10_000.0) == 10_000 - 5400
    assert parse_since("2d", now=200_000.0) == 200_000 - 172_800
    assert parse_since("1970-01-02") == 86400
    assert parse_since("1970-01-01T01:00+01:00") == 0
    with pytest.raises(InputError, match="duration"):
        parse_since("yesterday")


def test_poll_follows_appends_and_waits_for_a_complete_line(tmp_path: Path) -> None:
    path = tmp_path / "l.jsonl"
    reader = LedgerReader(path)
    assert reader.poll() == []  # not there yet
    line = _row(1)
    path.write_text(line[:30])
    assert reader.poll() == []  # mid-line: not a problem, not yet a record
    with path.open("a") as fh:
        fh.write(line[30:] + "\n" + _row(2) + "\n")
    assert [r.timestamp for r in reader.poll()] == [1, 2]
    assert reader.poll() == [] and reader.problems == []
    path.write_text(_row(3) + "\n")  # rotated: a new, shorter file
    assert [r.timestamp for r in reader.poll()] == [3]


def test_sqlite_ledger_reads_and_follows(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite"
    with Ledger(path) as ledger:
        for t in range(5):
            ledger.add(CompressionRecord.from_counts("gpt-4o-mini", 100, 10, timestamp=float(t)))
    reader = LedgerReader(path)
    assert [r.timestamp for r in reader.poll()] == [0, 1, 2, 3, 4]
    with Ledger(path) as ledger:
        ledger.add(CompressionRecord.from_counts("gpt-4o-mini", 100, 10, timestamp=5.0))
    assert [r.timestamp for r in reader.poll()] == [5]


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        list(LedgerReader(tmp_path / "nope.jsonl"))
    with pytest.raises(InputError, match="folder"):
        list(LedgerReader(tmp_path))
