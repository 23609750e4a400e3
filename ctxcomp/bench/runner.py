"""Running methods over examples and budgets, with timing and memory sampling.

For each method (loaded once, outside the timed region), each target ratio and each
example: the budget is ``tokens_in / ratio`` tokens of the target tokenizer; the method
compresses; the wall time of that call, the output's token count (recounted with the
target tokenizer, whatever the method reports) and the scores are recorded. While a method
runs, a sampler thread records the process's resident memory every 20 ms; a method's
``peak_rss_mb`` is the highest value seen during its calls (models it shares with an
earlier method stay resident and count for both).
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ctxcomp.bench.data import Example
from ctxcomp.bench.methods import Method
from ctxcomp.bench.metrics import Record, aggregate, score
from ctxcomp.tokens import get_counter
from ctxcomp.types import CHUNK_SEPARATOR, Budget

log = logging.getLogger(__name__)


class RssSampler:
    """Samples this process's RSS in a thread; :meth:`peak_mb` since the last reset."""

    def __init__(self, interval: float = 0.02) -> None:
        from ctxcomp._deps import require

        self._process = require("psutil", "bench", "memory sampling in benchmarks").Process()
        self._interval = interval
        self._peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            self.sample()

    def sample(self) -> None:
        self._peak = max(self._peak, self._process.memory_info().rss)

    def reset(self) -> None:
        self._peak = 0
        self.sample()

    def peak_mb(self) -> float:
        self.sample()
        return self._peak / 2**20

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@dataclass(frozen=True)
class Cell:
    """One row of the results: a method at a ratio (and a setting, e.g. needle length)."""

    method: str
    ratio: float
    setting: tuple[tuple[str, Any], ...] = ()


def _group_key(example: Example, group_by: Sequence[str]) -> tuple[tuple[str, Any], ...]:
    return tuple((k, example.setting[k]) for k in group_by if k in example.setting)


def run_one(method: Method, example: Example, ratio: float, model: str, ledger: Any = None) -> Record:
    """Compress ``example`` with ``method`` at ``ratio`` and score the output; with a
    ``ledger``, account the compression there (tenant ``bench``, pipeline = the method)."""
    counter = get_counter(model)
    tokens_in = counter.count(CHUNK_SEPARATOR.join(c.text for c in example.chunks if c.text))
    budget = Budget(ratio=ratio, model=model)
    started = time.perf_counter()
    outcome = method.run(example.query, example.chunks, budget)
    seconds = time.perf_counter() - started
    gold = {c.id: len(c.text) for c in example.chunks if c.id in example.gold_ids}
    answer_hit, gold_hit, evidence = score(outcome.text, outcome.chunks, example.answers, gold)
    tokens_out = counter.count(outcome.text) if outcome.text else 0
    if ledger is not None:
        from ctxcomp.reporting.records import CompressionRecord

        ledger.add(CompressionRecord.from_counts(model, tokens_in, tokens_out, tenant="bench", seconds=seconds,
                                                 pipeline=method.label))
    return Record(tokens_in=tokens_in, tokens_out=tokens_out,
                  limit=budget.limit(tokens_in), seconds=seconds, answer_hit=answer_hit,
                  gold_hit=gold_hit, evidence=evidence)


class _Tally:
    """Records, per-example hits and peak memory of one method, grouped into cells."""

    def __init__(self, method: Method, load_seconds: float, ledger: Any = None) -> None:
        self.method = method
        self.load_seconds = load_seconds
        self.ledger = ledger
        self.records: dict[Cell, list[Record]] = {}
        self.hits: dict[Cell, dict[str, bool]] = {}
        self.peak_mb = 0.0

    def run(self, example: Example, ratio: float, model: str, sampler: RssSampler,
            group_by: Sequence[str]) -> None:
        cell = Cell(self.method.label, ratio, _group_key(example, group_by))
        sampler.reset()
        record = run_one(self.method, example, ratio, model, self.ledger)
        self.peak_mb = max(self.peak_mb, sampler.peak_mb())
        self.records.setdefault(cell, []).append(record)
        self.hits.setdefault(cell, {})[example.id] = record.answer_hit

    def rows(self) -> list[dict[str, Any]]:
        rows = []
        for cell, cell_records in self.records.items():
            row: dict[str, Any] = {"method": cell.method, "ratio_target": cell.ratio, **dict(cell.setting)}
            row.update(aggregate(cell_records))
            row["peak_rss_mb"] = round(self.peak_mb, 1)
            row["load_s"] = round(self.load_seconds, 3)
            row["provenance"] = bool(self.method.provenance)
            row["hits"] = self.hits[cell]
            rows.append(row)
        return rows


def _setup(method: Method, ledger: Any = None) -> _Tally:
    started = time.perf_counter()
    method.setup()
    return _Tally(method, time.perf_counter() - started, ledger)


def _bar(total: int, desc: str, progress: bool) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="ex", file=sys.stderr, disable=not progress, dynamic_ncols=True)


def run_method(
    method: Method,
    examples: Sequence[Example],
    ratios: Sequence[float],
    model: str,
    sampler: RssSampler,
    group_by: Sequence[str] = (),
    progress: bool = True,
    ledger: Any = None,
) -> list[dict[str, Any]]:
    """The result rows of one method: one per ratio (x setting group)."""
    return _run_tallies([_setup(method, ledger)], examples, ratios, model, sampler, group_by, progress, method.label)


def run_interleaved(
    methods: Sequence[Method],
    examples: Sequence[Example],
    ratios: Sequence[float],
    model: str,
    sampler: RssSampler,
    group_by: Sequence[str] = (),
    progress: bool = True,
    ledger: Any = None,
) -> list[dict[str, Any]]:
    """Every method on each example in turn, so that all meet the same machine load.

    On a shared machine the load drifts over a long run; interleaving keeps latencies
    comparable between methods. Every model stays loaded throughout, so peak RSS is that
    of the whole process during each method's calls.
    """
    tallies = [_setup(m, ledger) for m in methods]
    return _run_tallies(tallies, examples, ratios, model, sampler, group_by, progress, "all methods")


def _run_tallies(tallies: Sequence[_Tally], examples: Sequence[Example], ratios: Sequence[float], model: str,
                 sampler: RssSampler, group_by: Sequence[str], progress: bool, desc: str) -> list[dict[str, Any]]:
    """Each ratio, each example, each tally in turn; the tallies' rows in tally order."""
    with _bar(len(examples) * len(ratios) * len(tallies), desc, progress) as bar:
        for ratio in ratios:
            for example in examples:
                for tally in tallies:
                    tally.run(example, ratio, model, sampler, group_by)
                    bar.update(1)
    return [row for tally in tallies for row in tally.rows()]


def _warm_up(model: str) -> None:
    """Load the tokenizer and the price table once, outside every timed call."""
    from ctxcomp.pricing import prompt_costs

    get_counter(model).count("warm-up")
    prompt_costs(model, 1, 1)


def run_suite(
    methods: Sequence[Method],
    examples: Sequence[Example],
    ratios: Sequence[float],
    model: str,
    group_by: Sequence[str] = (),
    progress: bool = True,
    on_method_done: Callable[[list[dict[str, Any]]], None] | None = None,
    interleave: bool = False,
    ledger: Any = None,
) -> list[dict[str, Any]]:
    """Every method over every example and ratio; ``on_method_done`` gets the rows so far.

    With ``interleave`` the methods take turns on each example (see :func:`run_interleaved`).
    With a ``ledger`` (:class:`ctxcomp.reporting.ledger.Ledger`) every compression is accounted there.
    """
    rows: list[dict[str, Any]] = []
    _warm_up(model)
    with RssSampler() as sampler:
        if interleave:
            rows = run_interleaved(methods, examples, ratios, model, sampler, group_by, progress, ledger)
            if on_method_done is not None:
                on_method_done(rows)
            return rows
        for method in methods:
            log.info("running %s on %d examples x %d ratios", method.label, len(examples), len(ratios))
            rows.extend(run_method(method, examples, ratios, model, sampler, group_by, progress, ledger))
            if on_method_done is not None:
                on_method_done(rows)
    return rows
