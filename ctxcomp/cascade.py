"""Running a plan: the stages coarse to fine over a batch of requests, with provenance.

:class:`~ctxcomp.pipeline.Pipeline` owns the public API (cache, ledger, specs); this
module does the work of one uncached computation for many requests at once: plan each
request, run each stage on every request that still has text (through the stage's own
``compress_batch`` when it has one), carry each stage's kept text on as the next stage's
input with its spans composed back to the source, and assemble the final context within
the budget.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from ctxcomp.assembly import Assembly, Unit, assemble, make_context, select_units, whole_units
from ctxcomp.inputs import input_tokens
from ctxcomp.planners.base import check_plan, stage_quotas
from ctxcomp.protocols import BatchCompressor, Compressor, Planner
from ctxcomp.provenance import SpanMap
from ctxcomp.score_memo import memo_scope
from ctxcomp.tokens import TokenCounter, get_counter
from ctxcomp.types import (
    Budget,
    Chunk,
    CompressedContext,
    Generated,
    Plan,
    StageReport,
    StageTarget,
    join_spans,
)


@dataclass
class Job:
    """One request on its way through the stages."""

    query: str
    chunks: list[Chunk]
    budget: Budget
    counter: TokenCounter
    tokens_in: int
    limit: int
    current: list[Chunk]
    maps: dict[str, SpanMap]
    plan: Plan | None = None
    reports: list[StageReport] = field(default_factory=list)
    #: Chunks whose text a stage generated: id -> (the generated text, how it was made).
    #: ``maps`` of such a chunk point into the generated text, not into the source.
    bases: dict[str, tuple[str, Generated]] = field(default_factory=dict)

    @classmethod
    def start(cls, query: str, chunks: list[Chunk], budget: Budget) -> Job:
        counter = get_counter(budget.model)
        tokens_in = input_tokens(chunks, counter)
        return cls(query, chunks, budget, counter, tokens_in, budget.limit(tokens_in), list(chunks),
                   {c.id: SpanMap.identity(len(c.text)) for c in chunks})

    @property
    def fits(self) -> bool:
        """The input already fits: a documented no-op, no planner and no stage runs."""
        return self.tokens_in <= self.limit


def _plan(job: Job, planner: Planner, targets: Sequence[StageTarget]) -> None:
    started = time.perf_counter()
    plan = planner.plan(job.query, job.chunks, job.budget, job.counter, stages=targets)
    job.plan = check_plan(plan, job.chunks, len(targets), job.limit)
    kept = {c.chunk_id for c in plan.chunks if c.keep}
    job.current = [c for c in job.chunks if c.id in kept]
    job.maps = {cid: m for cid, m in job.maps.items() if cid in kept}
    if len(kept) < len(job.chunks) or plan.quotas():
        job.reports.append(StageReport(f"plan:{planner.name}", job.tokens_in, input_tokens(job.current, job.counter),
                                       time.perf_counter() - started))


def _stage_report(stage: Compressor, out: CompressedContext, seconds: float, limit: int) -> StageReport:
    """The stage's line: its tokens and limit, plus any model cost its own reports carry."""
    costs = [s.llm_cost for s in out.stages]
    notes = [s.note for s in out.stages if s.note]
    return StageReport(
        stage.name, out.tokens_in, out.tokens_out, seconds, limit=limit,
        llm_tokens_in=sum(s.llm_tokens_in for s in out.stages),
        llm_tokens_out=sum(s.llm_tokens_out for s in out.stages),
        llm_cost=None if any(c is None for c in costs) else float(sum(c for c in costs if c is not None)),
        note="; ".join(notes) or None,
    )


def run_stage(
    stage: Compressor, requests: list[tuple[str, list[Chunk]]], budgets: list[Budget]
) -> list[CompressedContext]:
    """One stage over many requests: a nested pipeline computes (its cache and ledger are
    the outer pipeline's business), a batching compressor gets them all at once."""
    from ctxcomp.pipeline import Pipeline

    if isinstance(stage, Pipeline):
        return stage.compute_batch([(q, c, b) for (q, c), b in zip(requests, budgets, strict=True)])
    if isinstance(stage, BatchCompressor):
        return stage.compress_batch(requests, budgets)
    return [stage.compress(q, c, b) for (q, c), b in zip(requests, budgets, strict=True)]


def _carry(job: Job, out: CompressedContext) -> None:
    """The next stage's input and span maps.

    Extracted text is re-derived from its base (the source, or the text an earlier stage
    generated for that chunk) through the composed spans. Generated text becomes the
    chunk's new base: later stages read it and their spans point into it, and its
    ``source_spans`` are composed back to the source."""
    by_id = {c.id: c for c in job.chunks}
    nxt: list[Chunk] = []
    maps: dict[str, SpanMap] = {}
    bases: dict[str, tuple[str, Generated]] = {}
    for kept in out.chunks:
        source = by_id[kept.source_id]
        earlier = job.bases.get(kept.source_id)
        if kept.generated is not None:
            made = kept.generated
            if earlier is None:  # what the model read, as spans of the source
                made = dataclasses.replace(made, source_spans=job.maps[kept.source_id].to_source(made.source_spans))
            else:  # generated from generated text: it still summarizes what the first one read
                made = dataclasses.replace(made, source_spans=earlier[1].source_spans)
            bases[kept.source_id] = (kept.text, made)
            maps[kept.source_id] = SpanMap.identity(len(kept.text))
            nxt.append(Chunk(kept.text, id=source.id, metadata=source.metadata, score=kept.score))
            continue
        base_text = earlier[0] if earlier is not None else source.text
        if earlier is not None:
            bases[kept.source_id] = earlier
        spans = job.maps[kept.source_id].to_source(kept.spans)
        maps[kept.source_id] = SpanMap(spans)
        nxt.append(Chunk(join_spans(base_text, spans), id=source.id, metadata=source.metadata, score=kept.score))
    job.current, job.maps, job.bases = nxt, maps, bases


def _mark_generated(job: Job, assembly: Assembly) -> Assembly:
    """Kept chunks of generated bases marked generated: no source spans, the model, the
    source spans it read; tokens_in counted on the source."""
    by_id = {c.id: c for c in job.chunks}
    kept = []
    for c in assembly.chunks:
        base = job.bases.get(c.source_id)
        if base is not None:
            c = dataclasses.replace(c, spans=(), generated=base[1],
                                    tokens_in=job.counter.count(by_id[c.source_id].text))
        kept.append(c)
    return dataclasses.replace(assembly, chunks=tuple(kept))


def _finish(job: Job) -> CompressedContext:
    chunks = job.chunks
    if job.fits:
        units = whole_units(chunks)
        bases = chunks
    else:
        index = {c.id: i for i, c in enumerate(chunks)}
        units = [Unit(index[c.id], span, c.score if c.score is not None else 0.0)
                 for c in job.current for span in job.maps[c.id].spans]
        # a chunk whose text a stage generated is assembled from that text
        bases = [Chunk(job.bases[c.id][0], id=c.id, metadata=c.metadata, score=c.score) if c.id in job.bases else c
                 for c in chunks]
    assembly = assemble(bases, units, job.counter)
    if assembly.tokens > job.limit:  # a third-party stage overshot: enforce the budget
        assembly = select_units(bases, units, job.counter, job.limit)
    if job.bases:
        assembly = _mark_generated(job, assembly)
    ctx = make_context(chunks, assembly, job.tokens_in, job.budget, job.limit, job.counter, tuple(job.reports))
    if job.plan is None:
        return ctx
    kept = {c.source_id: c.tokens_out for c in ctx.chunks}
    plan = dataclasses.replace(job.plan, chunks=tuple(
        dataclasses.replace(c, tokens_kept=kept.get(c.chunk_id, 0)) for c in job.plan.chunks))
    return dataclasses.replace(ctx, plan=plan)


def run_jobs(
    jobs: list[Job], planner: Planner, stages: Sequence[Compressor], targets: Sequence[StageTarget]
) -> list[CompressedContext]:
    """Plan every job that does not fit, run the stages coarse to fine, assemble each.

    The run shares one score memo (:func:`~ctxcomp.score_memo.memo_scope`): a
    stage may reuse the sentence scores its planner's utility computed.
    """
    with memo_scope():
        return _run_jobs(jobs, planner, stages, targets)


def _run_jobs(
    jobs: list[Job], planner: Planner, stages: Sequence[Compressor], targets: Sequence[StageTarget]
) -> list[CompressedContext]:
    active = [j for j in jobs if not j.fits]
    for job in active:
        _plan(job, planner, targets)
    for i, stage in enumerate(stages):
        runnable = [j for j in active if j.current]
        if not runnable:
            break
        budgets = []
        for job in runnable:
            assert job.plan is not None
            sizes = {c.chunk_id: c.tokens_in for c in job.plan.chunks}
            budgets.append(Budget(max_tokens=job.plan.stage_limits[i], model=job.budget.model,
                                  quotas=stage_quotas(job.plan, i, sizes)))
        started = time.perf_counter()
        outs = run_stage(stage, [(j.query, j.current) for j in runnable], budgets)
        seconds = (time.perf_counter() - started) / len(runnable)
        for job, out, budget in zip(runnable, outs, budgets, strict=True):
            job.reports.append(_stage_report(stage, out, seconds, budget.max_tokens or 0))
            _carry(job, out)
    return [_finish(j) for j in jobs]
