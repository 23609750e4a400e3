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


def run_one(method: Method, example: Example, ratio: float, model: str) -> Record:
    """Compress ``example`` with ``method`` at ``ratio`` and score the output."""
    counter = get_counter(model)
    tokens_in = counter.count(CHUNK_SEPARATOR.join(c.text for c in example.chunks if c.text))
    budget = Budget(ratio=ratio, model=model)
    started = time.perf_counter()
    outcome = method.run(example.query, example.chunks, budget)
    seconds = time.perf_counter() - started
    gold = {c.id: len(c.text) for c in example.chunks if c.id in example.gold_ids}
    answer_hit, gold_hit, evidence = score(outcome.text, outcome.chunks, example.answers, gold)
    return Record(tokens_in=tokens_in, tokens_out=counter.count(outcome.text) if outcome.text else 0,
                  limit=budget.limit(tokens_in), seconds=seconds, answer_hit=answer_hit,
                  gold_hit=gold_hit, evidence=evidence)


def run_method(
    method: Method,
    examples: Sequence[Example],
    ratios: Sequence[float],
    model: str,
    sampler: RssSampler,
    group_by: Sequence[str] = (),
    progress: bool = True,
) -> list[dict[str, Any]]:
    """The result rows of one method: one per ratio (x setting group)."""
    from tqdm import tqdm

    started = time.perf_counter()
    method.setup()
    load_seconds = time.perf_counter() - started
    sampler.reset()
    records: dict[Cell, list[Record]] = {}
    per_example: dict[Cell, dict[str, bool]] = {}
    bar = tqdm(total=len(examples) * len(ratios), desc=method.label, unit="ex", file=sys.stderr,
               disable=not progress, dynamic_ncols=True)
    with bar:
        for ratio in ratios:
            for example in examples:
                cell = Cell(method.label, ratio, _group_key(example, group_by))
                record = run_one(method, example, ratio, model)
                records.setdefault(cell, []).append(record)
                per_example.setdefault(cell, {})[example.id] = record.answer_hit
                bar.update(1)
    peak = sampler.peak_mb()
    rows = []
    for cell, cell_records in records.items():
        row: dict[str, Any] = {"method": cell.method, "ratio_target": cell.ratio, **dict(cell.setting)}
        row.update(aggregate(cell_records))
        row["peak_rss_mb"] = round(peak, 1)
        row["load_s"] = round(load_seconds, 3)
        row["provenance"] = bool(method.provenance)
        row["hits"] = per_example[cell]
        rows.append(row)
    return rows


def run_suite(
    methods: Sequence[Method],
    examples: Sequence[Example],
    ratios: Sequence[float],
    model: str,
    group_by: Sequence[str] = (),
    progress: bool = True,
    on_method_done: Callable[[list[dict[str, Any]]], None] | None = None,
) -> list[dict[str, Any]]:
    """Every method over every example and ratio; ``on_method_done`` gets the rows so far."""
    rows: list[dict[str, Any]] = []
    with RssSampler() as sampler:
        for method in methods:
            log.info("running %s on %d examples x %d ratios", method.label, len(examples), len(ratios))
            rows.extend(run_method(method, examples, ratios, model, sampler, group_by, progress))
            if on_method_done is not None:
                on_method_done(rows)
    return rows
