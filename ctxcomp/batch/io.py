"""Batch input and output: JSONL or Parquet, chosen by the file's suffix.

Input is streamed record by record; a line that cannot be decoded is reported with its
number and the job goes on. Output is written so that a crash never leaves something a
re-run would misread: JSONL gets whole lines appended and fsynced per micro-batch (a torn
last line, if the machine died mid-write, is cut off when the job resumes); Parquet is
rewritten to a temporary file and renamed over the output every ``checkpoint_rows`` rows.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

from ctxcomp._deps import require
from ctxcomp.errors import InputError

log = logging.getLogger(__name__)

#: A JSONL line longer than this is refused (one request of 64 MB is not a record).
MAX_LINE_BYTES = 64 * 1024 * 1024
PARQUET_SUFFIXES = (".parquet", ".pq")
Raw = Any  # a decoded record, or the InputError that stopped it


def is_parquet(path: str | Path) -> bool:
    return Path(path).suffix.lower() in PARQUET_SUFFIXES


# -- input -------------------------------------------------------------------------------
def read_records(path: str | Path) -> Iterator[tuple[int, Raw]]:
    """``(line, record)`` for every record of a JSONL or Parquet file, in order; a record
    that cannot be decoded comes as ``(line, InputError)``.

    Raises:
        InputError: the file cannot be opened or is not Parquet.
    """
    return _read_parquet(Path(path)) if is_parquet(path) else _read_jsonl(Path(path))


def _open(path: Path) -> Any:
    try:
        return path.open("rb")
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None


def _read_jsonl(path: Path) -> Iterator[tuple[int, Raw]]:
    with _open(path) as fh:
        for number, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            yield number, _decode_line(raw, number)


def _decode_line(raw: bytes, number: int) -> Raw:
    if len(raw) > MAX_LINE_BYTES:
        return InputError(f"the line has {len(raw):,} bytes, over the limit of {MAX_LINE_BYTES:,}", line=number)
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        return InputError(f"not UTF-8 (byte {exc.start} of the line)", line=number)
    except json.JSONDecodeError as exc:
        return InputError(f"malformed JSON: {exc.msg} (column {exc.colno})", line=number)
    except RecursionError:
        return InputError("JSON nested too deeply", line=number)
    except ValueError as exc:  # e.g. an integer of more than 4,300 digits
        return InputError(f"unreadable JSON value: {exc}", line=number)


def _read_parquet(path: Path) -> Iterator[tuple[int, Raw]]:
    pq = require("pyarrow.parquet", "batch", "Parquet input")
    if not path.exists():
        raise InputError(f"cannot read {path}: No such file or directory")
    try:
        parquet = pq.ParquetFile(path)
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read {path} as Parquet: {exc}") from None
    number = 0
    for table in parquet.iter_batches(batch_size=1024):
        for row in table.to_pylist():
            number += 1
            yield number, {k: v for k, v in row.items() if v is not None}


def count_records(path: str | Path) -> int | None:
    """How many records (lines, rows) the input holds, for the progress bar (None: unknown)."""
    try:
        if is_parquet(path):
            pq = require("pyarrow.parquet", "batch", "Parquet input")
            return int(pq.ParquetFile(path).metadata.num_rows)
        count = 0
        with Path(path).open("rb") as fh:
            for raw in fh:
                count += bool(raw.strip())
        return count
    except (OSError, ValueError):
        return None


# -- output ------------------------------------------------------------------------------
class Sink(Protocol):
    """Where output records go."""

    def done_keys(self) -> set[str]:
        """Keys of the requests already in the output (a resumed job skips them)."""
        ...

    def write(self, records: Sequence[dict[str, Any]]) -> None:
        """Add records durably."""
        ...

    def close(self) -> None: ...


def _check_writable(path: Path) -> None:
    try:
        with path.open("ab"):
            pass
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror}") from None


def _line(record: dict[str, Any]) -> bytes:
    return (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8", "surrogatepass")


class JsonlSink:
    """Appends whole JSON lines, flushed and fsynced per :meth:`write`."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        _check_writable(self.path)
        self._fh: Any = None

    def done_keys(self) -> set[str]:
        keys: set[str] = set()
        good = 0  # bytes of whole lines
        with self.path.open("rb+") as fh:
            for number, raw in enumerate(fh, start=1):
                if not raw.endswith(b"\n"):  # a torn last line from a crash mid-write: drop it
                    log.warning("%s: cutting off an incomplete last line (%d bytes)", self.path, len(raw))
                    fh.truncate(good)
                    break
                good += len(raw)
                try:
                    keys.add(json.loads(raw)["key"])
                except (ValueError, KeyError, TypeError):
                    log.warning("%s line %d is not an output record; ignored", self.path, number)
        return keys

    def write(self, records: Sequence[dict[str, Any]]) -> None:
        if not records:
            return
        if self._fh is None:
            self._fh = self.path.open("ab")
        self._fh.write(b"".join(_line(r) for r in records))
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


class ParquetSink:
    """Keeps the rows and rewrites the file (temporary file, then rename) at every
    checkpoint: a reader never sees a half-written Parquet file. The rewrite is whole,
    so for very large jobs JSONL output is the cheaper choice."""

    COLUMNS = ("key", "line", "id", "query", "text", "model", "tokens_in", "tokens_out", "cost_before",
               "cost_after", "context")

    def __init__(self, path: str | Path, checkpoint_rows: int = 1024) -> None:
        self.pa = require("pyarrow", "batch", "Parquet output")
        self.pq = require("pyarrow.parquet", "batch", "Parquet output")
        self.path = Path(path)
        self.checkpoint_rows = checkpoint_rows
        existed = self.path.exists()
        _check_writable(self.path)
        if not existed:
            self.path.unlink()  # created by the check; an empty file is not Parquet
        self._tables: list[Any] = []
        self._rows: list[dict[str, Any]] = []

    def _schema(self) -> Any:
        pa = self.pa
        return pa.schema([("key", pa.string()), ("line", pa.int64()), ("id", pa.string()), ("query", pa.string()),
                          ("text", pa.string()), ("model", pa.string()), ("tokens_in", pa.int64()),
                          ("tokens_out", pa.int64()), ("cost_before", pa.float64()), ("cost_after", pa.float64()),
                          ("context", pa.string())])

    def done_keys(self) -> set[str]:
        if not self.path.exists() or self.path.stat().st_size == 0:
            return set()
        try:
            table = self.pq.read_table(self.path)
        except (OSError, ValueError) as exc:
            raise InputError(f"the output {self.path} exists but is not readable Parquet: {exc}") from None
        self._tables = [table.select(list(self.COLUMNS)).cast(self._schema())]
        return set(table.column("key").to_pylist())

    def write(self, records: Sequence[dict[str, Any]]) -> None:
        for r in records:
            row = {k: r.get(k) for k in self.COLUMNS}
            row["id"] = json.dumps(r["id"], ensure_ascii=False) if "id" in r else None
            row["context"] = json.dumps(r["context"], ensure_ascii=False)
            self._rows.append(row)
        if len(self._rows) >= self.checkpoint_rows:
            self._checkpoint()

    def _checkpoint(self) -> None:
        if self._rows:
            self._tables.append(self.pa.Table.from_pylist(self._rows, schema=self._schema()))
            self._rows = []
        if not self._tables:
            return
        tmp = self.path.with_name(self.path.name + ".tmp")
        self.pq.write_table(self.pa.concat_tables(self._tables), tmp)
        with tmp.open("rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)

    def close(self) -> None:
        self._checkpoint()


class ErrorSink:
    """The error file: one JSON line per bad record (``line``, ``reason``, ``key`` when
    known), fsynced as written. It describes the last run: a re-run retries those records."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self._fh = self.path.open("wb")
        except OSError as exc:
            raise InputError(f"cannot write the error file {path}: {exc.strerror}") from None
        self.count = 0

    def write(self, errors: Sequence[dict[str, Any]]) -> None:
        if errors:
            self._fh.write(b"".join(_line(e) for e in errors))
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self.count += len(errors)

    def close(self) -> None:
        self._fh.close()


def open_sink(path: str | Path) -> JsonlSink | ParquetSink:
    """The sink for ``path``: Parquet for ``.parquet``/``.pq``, JSONL otherwise."""
    return ParquetSink(path) if is_parquet(path) else JsonlSink(path)
