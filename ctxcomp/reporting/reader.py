"""Reading a ledger file back: JSONL or SQLite, once (``ctxcomp report``) or following
new records as they are appended (``ctxcomp serve-metrics``).

A bad line does not stop the reading: it is skipped and described in
:attr:`LedgerReader.problems` (a truncated last line is the usual case: a writer was
killed mid-line, or is still appending). Times are seconds since the epoch; ``--since``
accepts a duration back from now (``30m``, ``24h``, ``7d``, ``2w``) or an ISO date/time
(UTC unless it names an offset).
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

from ctxcomp.errors import InputError
from ctxcomp.reporting.records import Record, from_row
from ctxcomp.reporting.sinks import is_sqlite

MAX_PROBLEMS = 20
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_since(text: str, now: float | None = None) -> float:
    """The epoch seconds that ``text`` names: a duration back from ``now`` or an ISO time.

    Raises:
        InputError: neither form.

    Example:
        >>> parse_since("1h", now=7200.0)
        3600.0
    """
    now = time.time() if now is None else now
    match = _DURATION.match(text)
    if match:
        return now - float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InputError(f"--since {text!r}: give a duration (30m, 24h, 7d, 2w) or an ISO date "
                         "such as 2025-01-31 or 2025-01-31T12:00") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.timestamp()


class LedgerReader:
    """The records of a ledger file, in file order.

    Args:
        path: a JSONL or SQLite ledger.
        since: skip records older than this (epoch seconds).

    Raises:
        InputError: the file does not exist or is not readable (when iterated).
    """

    def __init__(self, path: str | Path, since: float | None = None) -> None:
        self.path = Path(path)
        self.since = since
        self.problems: list[str] = []
        self.skipped = 0
        self._offset = 0  # JSONL: bytes consumed; SQLite: last row id
        self._line = 0

    def _problem(self, message: str) -> None:
        self.skipped += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(message)
        elif len(self.problems) == MAX_PROBLEMS:
            self.problems.append("(further problems not listed)")

    def _keep(self, record: Record) -> bool:
        return self.since is None or record.timestamp >= self.since

    def __iter__(self) -> Iterator[Record]:
        if not self.path.exists():
            raise InputError(f"ledger file {self.path} does not exist")
        if self.path.is_dir():
            raise InputError(f"ledger path {self.path} is a folder; give a JSONL or SQLite file")
        reader = self._sqlite if is_sqlite(self.path) else self._jsonl
        return reader(final=True)

    def poll(self) -> list[Record]:
        """The records appended since the last read (an incomplete last line waits)."""
        if not self.path.exists():
            return []
        reader = self._sqlite if is_sqlite(self.path) else self._jsonl
        return list(reader(final=False))

    def _jsonl(self, final: bool) -> Iterator[Record]:
        try:
            fh = self.path.open("rb")
        except OSError as exc:
            raise InputError(f"cannot read ledger {self.path}: {exc}") from exc
        with fh:
            size = fh.seek(0, 2)
            if size < self._offset:  # the file was truncated or replaced (log rotation)
                self._offset = self._line = 0
            fh.seek(self._offset)
            for raw in fh:
                if not raw.endswith(b"\n"):
                    if not final:
                        return  # a writer is mid-line: read it complete next time
                    self._offset += len(raw)
                    self._line += 1
                    if raw.strip():
                        yield from self._parse(raw, truncated=True)
                    return
                self._offset += len(raw)
                self._line += 1
                if raw.strip():
                    yield from self._parse(raw, truncated=False)

    def _parse(self, raw: bytes, truncated: bool) -> Iterator[Record]:
        try:
            record = from_row(json.loads(raw))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            reason = exc.msg if isinstance(exc, json.JSONDecodeError) else exc.reason
            what = "truncated last line" if truncated else f"not JSON ({reason})"
            self._problem(f"{self.path}:{self._line}: {what}, skipped")
            return
        except InputError as exc:
            self._problem(f"{self.path}:{self._line}: {exc}, skipped")
            return
        if self._keep(record):
            yield record

    def _sqlite(self, final: bool) -> Iterator[Record]:
        try:
            db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=10.0)
        except sqlite3.Error as exc:
            raise InputError(f"cannot open SQLite ledger {self.path}: {exc}") from exc
        try:
            cursor = db.execute("SELECT id, record FROM ledger WHERE id > ? ORDER BY id", (self._offset,))
            while rows := cursor.fetchmany(4096):  # streamed: a large ledger is not held in memory
                for row_id, text in rows:
                    self._offset = self._line = row_id
                    yield from self._parse(text.encode("utf-8"), truncated=False)
        except sqlite3.Error as exc:
            raise InputError(f"cannot read SQLite ledger {self.path}: {exc}") from exc
        finally:
            db.close()
