"""Writing ledger records off the request path: a bounded queue and one writer thread.

:meth:`BackgroundWriter.submit` never blocks (unless asked to) and never raises: when the
queue is full the record is dropped and counted. The writer thread takes records in
batches and hands each batch to every sink; a sink that fails is logged and its lost
records counted, and the thread goes on. :meth:`BackgroundWriter.close` writes everything
still queued before it returns.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Sequence

from ctxcomp.errors import ConfigError
from ctxcomp.reporting.records import Record
from ctxcomp.reporting.sinks import Sink

log = logging.getLogger(__name__)

_STOP = object()


class BackgroundWriter:
    """Feeds ``sinks`` from a bounded queue in a daemon thread (started on first use).

    Args:
        sinks: where batches go, in order.
        maxsize: queue capacity in records.
        block: wait for room instead of dropping when the queue is full (for batch
            jobs and CLIs, where losing a record is worse than waiting).
        batch: the most records handed to a sink at once.
        on_drop: called with the number of records just dropped (e.g. a metric).
    """

    def __init__(self, sinks: Sequence[Sink], *, maxsize: int = 10_000, block: bool = False,
                 batch: int = 512, on_drop: Callable[[int], None] | None = None) -> None:
        for name, value in (("maxsize", maxsize), ("batch", batch)):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ConfigError(f"{name} must be an int > 0, got {value!r}")
        self.sinks = list(sinks)
        self.block = block
        self._batch = batch
        self._on_drop = on_drop
        self._queue: queue.Queue[object] = queue.Queue(maxsize)
        self._lock = threading.Lock()
        self._done = threading.Condition(self._lock)
        self._thread: threading.Thread | None = None
        self._closed = False
        self.submitted = 0
        self.written = 0
        self.dropped = 0
        self.failed = 0

    def submit(self, record: Record) -> bool:
        """Queue ``record``; False when it was dropped (queue full, or writer closed)."""
        with self._lock:
            if self._closed:
                self._count_drop_locked("the ledger is closed")
                return False
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="ctxcomp-ledger-writer", daemon=True)
                self._thread.start()
            self.submitted += 1
        try:
            if self.block:
                self._queue.put(record)
            else:
                self._queue.put_nowait(record)
        except queue.Full:
            with self._lock:
                self.submitted -= 1
                self._count_drop_locked("the ledger queue is full")
            return False
        return True

    def _count_drop_locked(self, why: str) -> None:
        self.dropped += 1
        if self.dropped & (self.dropped - 1) == 0:  # 1, 2, 4, 8 ...: visible, not a flood
            log.warning("%s: %d ledger record(s) dropped so far", why, self.dropped)
        if self._on_drop is not None:
            try:
                self._on_drop(1)
            except Exception:
                log.exception("the ledger's drop callback failed")

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every record submitted so far reached the sinks; False on timeout."""
        with self._done:
            target = self.submitted
            return self._done.wait_for(lambda: self.written + self.failed >= target, timeout)

    def close(self, timeout: float | None = 30.0) -> None:
        """Write what is queued, stop the thread and close the sinks (idempotent)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            thread = self._thread
        if thread is not None and thread.is_alive():
            self._queue.put(_STOP)  # blocking: the writer is draining, room will come
            thread.join(timeout)
            if thread.is_alive():
                log.error("the ledger writer did not finish within %s s; %d record(s) may be unwritten",
                          timeout, self.submitted - self.written - self.failed)
                return
        for sink in self.sinks:
            try:
                sink.close()
            except Exception:
                log.exception("closing ledger sink %r failed", sink)

    def _take(self) -> tuple[list[Record], bool]:
        first = self._queue.get()
        if first is _STOP:
            return [], True
        batch: list[Record] = [first]  # type: ignore[list-item]
        while len(batch) < self._batch:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is _STOP:
                return batch, True
            batch.append(item)  # type: ignore[arg-type]
        return batch, False

    def _loop(self) -> None:
        stop = False
        while not stop:
            batch, stop = self._take()
            if not batch:
                continue
            ok = True
            for sink in self.sinks:
                try:
                    sink.write(batch)
                except Exception:
                    ok = False
                    log.exception("ledger sink %r failed; %d record(s) not written to it", sink, len(batch))
            with self._done:
                if ok:
                    self.written += len(batch)
                else:
                    self.failed += len(batch)
                self._done.notify_all()
