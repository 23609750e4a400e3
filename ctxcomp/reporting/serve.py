"""``ctxcomp serve-metrics``: Prometheus metrics of a ledger file, served over HTTP.

For processes that write a ledger file but serve no metrics themselves (CLI runs, batch
jobs, several workers sharing one SQLite file): the exporter reads the file from the
start, then follows what is appended, and serves the same metrics as
:class:`~ctxcomp.reporting.metrics.PrometheusMetrics` on ``/metrics``. (A process that
holds its own :class:`~ctxcomp.reporting.ledger.Ledger` can instead pass a
``PrometheusMetrics`` observer and call its ``serve``; its ``ctxcomp_ledger_dropped_total``
is known only there.)
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from ctxcomp.reporting.audit import AuditConfig, check
from ctxcomp.reporting.labels import LabelPolicy
from ctxcomp.reporting.metrics import PrometheusMetrics
from ctxcomp.reporting.reader import LedgerReader
from ctxcomp.reporting.records import CompressionRecord

log = logging.getLogger(__name__)


class LedgerFollower:
    """Feeds the records appended to a ledger file into Prometheus metrics.

    Args:
        path: a JSONL or SQLite ledger (it may not exist yet).
        metrics: where the records go (default: new metrics with their own registry).
        audit: the threshold for the usage-discrepancy counter.
    """

    def __init__(self, path: str | Path, metrics: PrometheusMetrics | None = None,
                 audit: AuditConfig | None = None) -> None:
        self.reader = LedgerReader(path)
        self.metrics = metrics or PrometheusMetrics()
        self.audit = audit or AuditConfig()
        self.records = 0
        self._problems_seen = 0

    def poll(self) -> int:
        """Feed what was appended since the last poll; returns how many records."""
        records = self.reader.poll()
        for record in records:
            if isinstance(record, CompressionRecord):
                self.metrics.on_compression(record)
            else:
                self.metrics.on_usage(record, check(record, self.audit))
        for problem in self.reader.problems[self._problems_seen:]:
            log.warning("%s", problem)
        self._problems_seen = len(self.reader.problems)
        self.records += len(records)
        return len(records)


def serve_metrics(path: str | Path, *, port: int = 9464, addr: str = "127.0.0.1", poll: float = 1.0,
                  labels: LabelPolicy | None = None, audit: AuditConfig | None = None,
                  stop: threading.Event | None = None, on_ready: Callable[[int], None] | None = None) -> int:
    """Serve the metrics of the ledger at ``path`` until ``stop`` is set.

    Args:
        port: TCP port (0: any free port; ``on_ready`` gets the one bound).
        addr: address to bind (default loopback; ``0.0.0.0`` for every interface).
        poll: seconds between reads of the file.

    Returns:
        How many records were read.
    """
    follower = LedgerFollower(path, PrometheusMetrics(labels=labels), audit)
    follower.poll()  # the history first, so the first scrape already sees it
    server = follower.metrics.serve(port, addr)
    if on_ready is not None:
        on_ready(server.server_port)
    stop = stop or threading.Event()
    try:
        while not stop.wait(poll):
            follower.poll()
    finally:
        server.shutdown()
        server.server_close()
    return follower.records
