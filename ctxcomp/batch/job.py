"""A batch job: read records, skip those already done, compress the rest on an engine,
write results and errors as they come, and sum up the savings.

Resume: every request is keyed by a hash of its content and the pipeline's config
(:func:`ctxcomp.batch.records.request_key`); a re-run reads the keys already in the output
and compresses only the others, so a job killed half-way loses at most the micro-batches
in flight. A bad record (undecodable, missing chunks, a budget it cannot meet) goes to the
error file with its line and the reason, and the job goes on.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ctxcomp.batch.engines import EngineSettings, make_engine
from ctxcomp.batch.engines.base import Batch
from ctxcomp.batch.io import ErrorSink, Raw, Sink
from ctxcomp.batch.records import parse_record
from ctxcomp.batch.work import PipelineRecipe, summable
from ctxcomp.config import PipelineSpec, load_spec
from ctxcomp.errors import ConfigError, InputError
from ctxcomp.types import Budget


@dataclass(frozen=True)
class BatchSummary:
    """What a batch run did (this run only; requests skipped as done are not summed).

    Attributes:
        records: records read from the input.
        compressed: requests compressed and written in this run.
        skipped: requests already in the output (resumed) or repeated in the input.
        errors: records that went to the error file.
        tokens_in, tokens_out: target-model tokens before and after, summed.
        cost_before, cost_after: USD of sending them as prompt tokens (unknown prices as 0).
        seconds: wall time of the run (models loading included).
        engine, workers: where it ran.
    """

    records: int
    compressed: int
    skipped: int
    errors: int
    tokens_in: int
    tokens_out: int
    cost_before: float
    cost_after: float
    seconds: float
    engine: str
    workers: int

    @property
    def tokens_saved(self) -> int:
        return self.tokens_in - self.tokens_out

    @property
    def cost_saved(self) -> float:
        return self.cost_before - self.cost_after

    @property
    def requests_per_s(self) -> float:
        return self.compressed / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "tokens_saved": self.tokens_saved, "cost_saved": self.cost_saved,
                "requests_per_s": self.requests_per_s}

    def render(self) -> str:
        """Two lines for a person: counts and speed, then tokens and dollars saved."""
        ratio = f"{self.tokens_in / self.tokens_out:.2f}x" if self.tokens_out else "-"
        return (f"batch: {self.records:,} records in {self.seconds:.1f} s on {self.engine} x{self.workers}: "
                f"{self.compressed:,} compressed ({self.requests_per_s:.2f}/s), {self.skipped:,} skipped "
                f"(already done), {self.errors:,} errors\n"
                f"saved {self.tokens_saved:,} tokens ({self.tokens_in:,} -> {self.tokens_out:,}, {ratio}) "
                f"and ${self.cost_saved:.4f} (${self.cost_before:.4f} -> ${self.cost_after:.4f})")


@dataclass
class _Tally:
    records: int = 0
    compressed: int = 0
    skipped: int = 0
    errors: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost_before: float = 0.0
    cost_after: float = 0.0

    def add(self, record: Mapping[str, Any]) -> None:
        self.compressed += 1
        self.tokens_in += int(record["tokens_in"])
        self.tokens_out += int(record["tokens_out"])
        self.cost_before += summable(record["cost_before"])
        self.cost_after += summable(record["cost_after"])


def make_recipe(pipeline: Any, *, cache: Any = None, tenant: str | None = None,
                threads: int | None = None) -> PipelineRecipe:
    """A picklable recipe from a spec (a dict, a YAML/TOML/JSON path, a PipelineSpec) or
    None (the default pipeline). ``cache`` overrides the spec's (a mapping, a redis:// URL,
    False for none); ``tenant`` overrides its tenant."""
    if pipeline is None:
        from ctxcomp.defaults import default_spec

        spec = load_spec(default_spec())
    elif isinstance(pipeline, PipelineSpec):
        spec = pipeline
    elif isinstance(pipeline, (Mapping, str, Path)):
        spec = load_spec(pipeline)
    else:
        raise ConfigError(f"a batch pipeline must be a spec (dict, file or PipelineSpec) that every worker can "
                          f"build, got {type(pipeline).__name__}")
    overrides: dict[str, Any] = {}
    if cache is not None:
        overrides["cache"] = cache
    if tenant is not None:
        overrides["tenant"] = tenant
    return PipelineRecipe(spec, overrides, threads)


def run_job(
    source: Iterable[tuple[int, Raw]],
    sink: Sink,
    errors: ErrorSink | Any,
    *,
    settings: EngineSettings,
    engine: str = "local",
    budget: Budget | None = None,
    batch_size: int = 16,
    progress: Callable[[int], None] | None = None,
) -> BatchSummary:
    """Run a job from decoded records to a sink (see :func:`ctxcomp.batch.compress_file`).

    Args:
        source: ``(line, record)`` pairs (a record may be the InputError that stopped it).
        sink: where result records go (its ``done_keys`` are skipped).
        errors: where error records go (anything with ``write(list)``).
        settings: the recipe, workers and resources of the engine.
        engine: ``local``, ``processes`` or ``ray``.
        budget: the default budget (records may carry their own); the spec's if None.
        batch_size: requests per micro-batch (one ``compress_batch`` call).
        progress: called with the number of records just finished.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch_size must be an int >= 1, got {batch_size!r}")
    started = time.perf_counter()
    recipe = settings.recipe
    pipe = recipe.spec.build(**dict(recipe.overrides))  # cheap: models load on first use
    runner = make_engine(engine, settings, pipe)
    budget = budget if budget is not None else recipe.spec.budget
    digest, needs_query = pipe.config_digest(), pipe.requires_query
    seen = sink.done_keys()
    tally = _Tally()
    tick = progress or (lambda n: None)

    def batches() -> Iterator[Batch]:
        batch: Batch = []
        for line, raw in source:
            tally.records += 1
            try:
                if isinstance(raw, InputError):
                    raise raw
                pending = parse_record(raw, line, default_budget=budget, digest=digest, needs_query=needs_query)
            except InputError as exc:
                tally.errors += 1
                errors.write([{"line": line, "reason": _reason(exc, line)}])
                tick(1)
                continue
            if pending.key in seen:
                tally.skipped += 1
                tick(1)
                continue
            seen.add(pending.key)
            batch.append((pending.key, pending.payload))
            if len(batch) >= batch_size:
                yield batch
                batch = []
        if batch:
            yield batch

    try:
        for results in runner.map(batches()):
            good = [r for r in results if "error" not in r]
            bad = [{"line": r["line"], "reason": r["error"], "key": r["key"]} for r in results if "error" in r]
            sink.write(good)
            errors.write(bad)
            for record in good:
                tally.add(record)
            tally.errors += len(bad)
            tick(len(results))
    finally:
        runner.close()
        sink.close()
    return BatchSummary(**asdict(tally), seconds=time.perf_counter() - started, engine=engine,
                        workers=1 if engine == "local" else settings.workers)


def _reason(exc: InputError, line: int) -> str:
    message, prefix = str(exc), f"line {line}: "
    return message[len(prefix):] if message.startswith(prefix) else message


def progress_bar(total: int | None, enabled: bool) -> tuple[Callable[[int], None], Callable[[], None]]:
    """An ``(update, close)`` pair drawing a tqdm bar on stderr (no-ops when disabled)."""
    if not enabled:
        return (lambda n: None), (lambda: None)
    from tqdm import tqdm

    bar = tqdm(total=total, desc="batch", unit="req", file=sys.stderr, dynamic_ncols=True)
    return bar.update, bar.close
