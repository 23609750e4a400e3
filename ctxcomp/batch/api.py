"""The Python entry points of batch compression: a file to a file, or records in memory."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ctxcomp.batch.engines import ENGINES, EngineSettings
from ctxcomp.batch.io import ErrorSink, count_records, open_sink, read_records
from ctxcomp.batch.job import BatchSummary, make_recipe, progress_bar, run_job
from ctxcomp.errors import InputError, UnknownNameError
from ctxcomp.types import Budget


def _settings(pipeline: Any, engine: str, workers: int, cache: Any, tenant: str | None, timings: bool,
              ray: Mapping[str, Any] | None) -> EngineSettings:
    if engine not in ENGINES:
        raise UnknownNameError("engine", engine, ENGINES)
    ray_opts = dict(ray or {})
    threads = None
    if engine == "processes":  # share the cores: N workers of N threads each would thrash
        threads = max(1, (os.cpu_count() or 1) // workers)
    elif engine == "ray":
        threads = max(1, int(ray_opts.get("num_cpus", 1)))
    recipe = make_recipe(pipeline, cache=cache, tenant=tenant, threads=threads)
    return EngineSettings(recipe, workers=workers, timings=timings, **ray_opts)


def compress_file(
    input: str | Path,
    output: str | Path,
    *,
    pipeline: Any = None,
    budget: Budget | None = None,
    engine: str = "local",
    workers: int = 1,
    batch_size: int = 16,
    errors: str | Path | None = None,
    cache: Any = None,
    tenant: str | None = None,
    timings: bool = True,
    progress: bool = False,
    ray: Mapping[str, Any] | None = None,
) -> BatchSummary:
    """Compress every request of a JSONL or Parquet file into a JSONL or Parquet output.

    Each input record is ``{"query", "chunks", "budget"?}`` (chunks: strings or
    ``{"text", "id"?, "metadata"?}``; budget: a token count or ``{"max_tokens"|"ratio"}``).
    Each output record holds the request's ``key`` and ``line``, the compressed ``text``,
    ``tokens_in``/``tokens_out``, ``cost_before``/``cost_after`` (USD) and the full
    ``context`` (:meth:`CompressedContext.to_dict`: kept chunks with spans, plan, stages).
    A re-run skips the requests already in ``output``.

    Args:
        input, output: file paths; ``.parquet``/``.pq`` means Parquet, anything else JSONL.
        pipeline: a spec (dict, YAML/TOML/JSON path or PipelineSpec); None: the default.
        budget: the budget of records without one (default: the spec's).
        engine: ``local``, ``processes`` or ``ray``.
        workers: processes or Ray actors.
        batch_size: requests per micro-batch.
        errors: the error file (default: ``<output>.errors.jsonl``).
        cache: overrides the spec's cache (``"redis://..."``, a settings mapping, False).
        tenant: overrides the spec's tenant (cache keys, ledger).
        timings: keep stage wall times (False writes 0.0: reruns are byte-identical).
        progress: draw a progress bar on stderr.
        ray: ``ray_address``, ``num_cpus``, ``num_gpus`` (per actor), ``window``.

    Raises:
        InputError: the input cannot be read or the output or error file written.
        UnknownNameError: an unknown engine.
        ConfigError: a bad spec or setting.
    """
    settings = _settings(pipeline, engine, workers, cache, tenant, timings, ray)
    if not Path(input).is_file():
        raise InputError(f"cannot read {input}: no such file")
    if Path(input).resolve() == Path(output).resolve():
        raise InputError("the output must not be the input file")
    sink = open_sink(output)
    error_sink = ErrorSink(errors if errors is not None else f"{output}.errors.jsonl")
    update, close = progress_bar(count_records(input) if progress else None, progress)
    try:
        return run_job(read_records(input), sink, error_sink, settings=settings, engine=engine, budget=budget,
                       batch_size=batch_size, progress=update)
    finally:
        close()
        error_sink.close()


class _ListSink:
    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    def done_keys(self) -> set[str]:
        return set()

    def write(self, records: Sequence[dict[str, Any]]) -> None:
        self.records.extend(records)

    def close(self) -> None:
        pass


@dataclass(frozen=True)
class BatchResult:
    """What :func:`compress_dataset` returns: output records in input order, error records
    (``line``, ``reason``) and the summary."""

    records: list[dict[str, Any]]
    errors: list[dict[str, Any]]
    summary: BatchSummary


def compress_dataset(
    records: Iterable[Mapping[str, Any]],
    *,
    pipeline: Any = None,
    budget: Budget | None = None,
    engine: str = "local",
    workers: int = 1,
    batch_size: int = 16,
    cache: Any = None,
    tenant: str | None = None,
    timings: bool = True,
    ray: Mapping[str, Any] | None = None,
) -> BatchResult:
    """:func:`compress_file` for records in memory (``line`` is the 1-based position).
    Repeated requests are compressed once (the later ones count as skipped)."""
    settings = _settings(pipeline, engine, workers, cache, tenant, timings, ray)
    sink, errors = _ListSink(), _ListSink()
    summary = run_job(enumerate(records, start=1), sink, errors, settings=settings, engine=engine, budget=budget,
                      batch_size=batch_size)
    return BatchResult(sink.records, errors.records, summary)
