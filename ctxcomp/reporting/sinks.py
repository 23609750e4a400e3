"""Where ledger records go: one small protocol, three sinks.

* :class:`MemorySink` keeps the latest ``maxlen`` records (bounded; older ones fall off).
* :class:`JsonlSink` appends one JSON row per record to a file (each batch is one
  ``write`` on a file opened for appending, so several processes may share a file).
* :class:`SQLiteSink` inserts rows into a ``ledger`` table (WAL mode, so a report or
  ``ctxcomp serve-metrics`` can read while a service writes).

A :class:`~ctxcomp.reporting.ledger.Ledger` calls ``write`` from its writer thread, never
on the request path. A sink need not be thread-safe: one thread writes to it.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections import deque
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Protocol, runtime_checkable

from ctxcomp.errors import ConfigError
from ctxcomp.reporting.records import Record, to_row

SQLITE_SUFFIXES = (".sqlite", ".sqlite3", ".db")
SQLITE_MAGIC = b"SQLite format 3\x00"

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS ledger (id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, "
    "timestamp REAL NOT NULL, tenant TEXT, model TEXT, pipeline TEXT, record TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS ledger_timestamp ON ledger (timestamp)",
)


@runtime_checkable
class Sink(Protocol):
    """Receives batches of records; ``close`` flushes and releases what it holds."""

    def write(self, records: Sequence[Record]) -> None: ...

    def close(self) -> None: ...


class MemorySink:
    """The latest ``maxlen`` records, in order (thread-safe).

    Args:
        maxlen: how many records to keep (> 0).
    """

    def __init__(self, maxlen: int = 10_000) -> None:
        if isinstance(maxlen, bool) or not isinstance(maxlen, int) or maxlen <= 0:
            raise ConfigError(f"maxlen must be an int > 0, got {maxlen!r}")
        self.maxlen = maxlen
        self._records: deque[Record] = deque(maxlen=maxlen)
        self._lock = threading.Lock()

    def write(self, records: Sequence[Record]) -> None:
        with self._lock:
            self._records.extend(records)

    def close(self) -> None:
        return None

    def snapshot(self) -> list[Record]:
        """A copy of the kept records, oldest first."""
        with self._lock:
            return list(self._records)

    def __len__(self) -> int:
        with self._lock:
            return len(self._records)

    def __iter__(self) -> Iterator[Record]:
        return iter(self.snapshot())


class JsonlSink:
    """Appends one JSON row per record to ``path`` (created with its folder if missing).

    Example:
        >>> ledger = Ledger(sinks=[JsonlSink("ledger.jsonl")])  # doctest: +SKIP
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._fh: IO[str] | None = None

    def write(self, records: Sequence[Record]) -> None:
        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = self.path.open("a", encoding="utf-8")
        text = "".join(json.dumps(to_row(r), ensure_ascii=False) + "\n" for r in records)
        self._fh.write(text)
        self._fh.flush()

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


class SQLiteSink:
    """Inserts each record as a row of table ``ledger`` in the SQLite file ``path``.

    Columns: ``id``, ``kind``, ``timestamp``, ``tenant``, ``model``, ``pipeline`` (for SQL
    queries) and ``record`` (the full JSON row, as :class:`JsonlSink` writes it).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._db: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, timeout=10.0, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        for statement in SCHEMA:
            db.execute(statement)
        db.commit()
        return db

    def write(self, records: Sequence[Record]) -> None:
        if self._db is None:
            self._db = self._connect()
        rows = []
        for record in records:
            row = to_row(record)
            rows.append((row["kind"], row["timestamp"], row["tenant"], row["model"], row.get("pipeline"),
                         json.dumps(row, ensure_ascii=False)))
        with self._db:  # one transaction per batch
            self._db.executemany(
                "INSERT INTO ledger (kind, timestamp, tenant, model, pipeline, record) VALUES (?, ?, ?, ?, ?, ?)",
                rows)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


def is_sqlite(path: str | Path) -> bool:
    """Whether ``path`` is (or, by its suffix, will be) a SQLite ledger."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            return fh.read(len(SQLITE_MAGIC)) == SQLITE_MAGIC
    except FileNotFoundError:
        return path.suffix.lower() in SQLITE_SUFFIXES
    except IsADirectoryError:
        raise ConfigError(f"ledger path {path} is a folder; give a file") from None


def sink_for(path: str | Path) -> Sink:
    """A :class:`SQLiteSink` for ``.sqlite``/``.sqlite3``/``.db`` files (or an existing
    SQLite file), else a :class:`JsonlSink`."""
    return SQLiteSink(path) if is_sqlite(path) else JsonlSink(path)
