"""Batch compression: many (query, chunks) requests from a file, on one machine or Ray.

``compress_file(input, output, ...)`` reads JSONL or Parquet and writes JSONL or Parquet,
resumably; ``compress_dataset(records, ...)`` does the same in memory. Engines: ``local``
(micro-batches through ``Pipeline.compress_batch``), ``processes`` (a spawned process
pool) and ``ray`` (Ray Data ``map_batches`` on an actor pool). See ``ctxcomp batch --help``.

Example:
    >>> from ctxcomp.batch import compress_file  # doctest: +SKIP
    >>> summary = compress_file("requests.jsonl", "out.jsonl", budget=Budget(ratio=4),
    ...                         pipeline={"stages": ["embedding"]}, engine="processes", workers=2)  # doctest: +SKIP
    >>> print(summary.render())  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ctxcomp._deps import lazy_exports

_LAZY = {
    "compress_file": "ctxcomp.batch.api",
    "compress_dataset": "ctxcomp.batch.api",
    "BatchResult": "ctxcomp.batch.api",
    "BatchSummary": "ctxcomp.batch.job",
    "ENGINES": "ctxcomp.batch.engines",
}

__all__ = list(_LAZY)

if TYPE_CHECKING:
    from ctxcomp.batch.api import BatchResult, compress_dataset, compress_file
    from ctxcomp.batch.engines import ENGINES
    from ctxcomp.batch.job import BatchSummary

__getattr__ = lazy_exports("ctxcomp.batch", _LAZY, globals())
