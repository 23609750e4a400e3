"""What the ledger stores: one :class:`CompressionRecord` per compression and one
:class:`~ctxcomp.reporting.usage.LLMUsage` per LLM call, and their JSON rows.

A row is a flat JSON object with ``"kind"`` (``"compression"`` or ``"llm_usage"``) and
``"v"`` (the row schema). Rows written before the schema had ``"v"`` (version 1: no
pipeline, no stages) still read. Money is USD or ``null`` when the model's price is
unknown; an unknown price is never written as 0.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, fields
from typing import Any

from ctxcomp.errors import InputError
from ctxcomp.reporting.usage import LLMUsage
from ctxcomp.types import CompressedContext, StageReport

ROW_VERSION = 2
COMPRESSION = "compression"
LLM_USAGE = "llm_usage"


def ratio_of(tokens_in: int, tokens_out: int) -> float:
    """Compression ratio ``tokens_in / tokens_out``: inf when nothing was kept of a non-empty
    input, 1 for an empty one."""
    if tokens_out == 0:
        return math.inf if tokens_in else 1.0
    return tokens_in / tokens_out


@dataclass(frozen=True, slots=True)
class CompressionRecord:
    """One compression as accounted.

    Attributes:
        timestamp: when it finished, seconds since the epoch.
        tenant: who it was for.
        model: the target model whose tokenizer counted and whose price applies.
        tokens_in, tokens_out: context tokens before and after.
        cost_before, cost_after: USD of sending them as prompt tokens (None: unknown price).
        seconds: compression latency as the caller saw it (cache lookup included).
        cache_hit: served from the context cache.
        pipeline: a digest of the pipeline's stages and settings ("" when not given).
        stages: each stage's report: tokens in/out, seconds, the LLM tokens and USD it
            spent. On a cache hit these are the stored reports of the original run.
        tokens_approximate: the tokenizer only approximates ``model``'s.
    """

    timestamp: float
    tenant: str
    model: str
    tokens_in: int
    tokens_out: int
    cost_before: float | None
    cost_after: float | None
    seconds: float
    cache_hit: bool
    pipeline: str = ""
    stages: tuple[StageReport, ...] = ()
    tokens_approximate: bool = False

    @classmethod
    def from_context(cls, ctx: CompressedContext, *, tenant: str = "default", seconds: float = 0.0,
                     cache_hit: bool = False, pipeline: str = "",
                     timestamp: float | None = None) -> CompressionRecord:
        """The record of a pipeline's or compressor's result."""
        return cls(time.time() if timestamp is None else timestamp, tenant, ctx.model, ctx.tokens_in,
                   ctx.tokens_out, ctx.cost_before, ctx.cost_after, seconds, cache_hit, pipeline,
                   tuple(ctx.stages), ctx.tokens_approximate)

    @classmethod
    def from_counts(cls, model: str, tokens_in: int, tokens_out: int, *, tenant: str = "default",
                    seconds: float = 0.0, cache_hit: bool = False, pipeline: str = "",
                    stages: tuple[StageReport, ...] = (), timestamp: float | None = None) -> CompressionRecord:
        """A record from token counts alone (prices looked up; None for an unpriced model),
        for callers that have no :class:`CompressedContext` (benchmark peers, the proxy)."""
        from ctxcomp.pricing import prompt_costs

        before, after = prompt_costs(model, tokens_in, tokens_out)
        return cls(time.time() if timestamp is None else timestamp, tenant, model, tokens_in, tokens_out,
                   before, after, seconds, cache_hit, pipeline, stages)

    @property
    def tokens_saved(self) -> int:
        return self.tokens_in - self.tokens_out

    @property
    def ratio(self) -> float:
        """tokens_in / tokens_out (inf when nothing was kept of a non-empty input)."""
        return ratio_of(self.tokens_in, self.tokens_out)

    def compressor_cost(self) -> tuple[int, int, float | None, float]:
        """``(llm_tokens_in, llm_tokens_out, llm_cost, compressor_seconds)`` in one pass
        over the stages (all zero on a cache hit; llm_cost None when a price is unknown)."""
        if self.cache_hit:
            return 0, 0, 0.0, 0.0
        tokens_in = tokens_out = 0
        usd: float | None = 0.0
        spent = 0.0
        for stage in self.stages:
            tokens_in += stage.llm_tokens_in
            tokens_out += stage.llm_tokens_out
            spent += stage.seconds
            usd = None if usd is None or stage.llm_cost is None else usd + stage.llm_cost
        return tokens_in, tokens_out, usd, spent

    @property
    def llm_tokens_in(self) -> int:
        """Tokens the stages sent to a model for this request (0 on a cache hit)."""
        return self.compressor_cost()[0]

    @property
    def llm_tokens_out(self) -> int:
        return self.compressor_cost()[1]

    @property
    def llm_cost(self) -> float | None:
        """USD the stages spent on models for this request (0 on a cache hit: no stage
        ran); None when a stage called a model whose price is unknown."""
        return self.compressor_cost()[2]

    @property
    def compressor_seconds(self) -> float:
        """Seconds the stages ran for this request (0 on a cache hit)."""
        return self.compressor_cost()[3]

    @property
    def cost_saved(self) -> float | None:
        """Prompt USD saved, before the compressor's own cost (None: unknown price)."""
        if self.cost_before is None or self.cost_after is None:
            return None
        return self.cost_before - self.cost_after

    @property
    def net_saved(self) -> float | None:
        """USD saved net of the compressor's own model cost (None: a price is unknown)."""
        saved, spent = self.cost_saved, self.llm_cost
        return None if saved is None or spent is None else saved - spent


Record = CompressionRecord | LLMUsage


_STAGE_FIELDS = tuple(f.name for f in fields(StageReport))
_COMPRESSION_FIELDS = tuple(f.name for f in fields(CompressionRecord) if f.name != "stages")
_USAGE_FIELDS = tuple(f.name for f in fields(LLMUsage))


def to_row(record: Record) -> dict[str, Any]:
    """The JSON-ready row of a record."""
    # Built field by field: dataclasses.asdict deep-copies and was most of the writer's time.
    if isinstance(record, CompressionRecord):
        row: dict[str, Any] = {"kind": COMPRESSION, "v": ROW_VERSION}
        for name in _COMPRESSION_FIELDS:
            row[name] = getattr(record, name)
        row["stages"] = [{name: getattr(stage, name) for name in _STAGE_FIELDS} for stage in record.stages]
        return row
    row = {"kind": LLM_USAGE, "v": ROW_VERSION}
    for name in _USAGE_FIELDS:
        row[name] = getattr(record, name)
    return row


def _number(row: dict[str, Any], key: str, *, optional: bool = False, integer: bool = False) -> Any:
    value = row.get(key)
    if value is None and optional:
        return None
    kinds: tuple[type, ...] = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds):
        raise InputError(f"{key!r} must be a number, got {value!r}")
    return value


def _text(row: dict[str, Any], key: str, default: str | None = None) -> str:
    value = row.get(key, default)
    if not isinstance(value, str):
        raise InputError(f"{key!r} must be a string, got {value!r}")
    return value


def _stages(raw: Any) -> tuple[StageReport, ...]:
    if not isinstance(raw, list):
        raise InputError(f"'stages' must be a list, got {type(raw).__name__}")
    out = []
    for item in raw:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise InputError(f"a stage must be an object with a name, got {item!r}")
        out.append(StageReport(**{k: v for k, v in item.items() if k in _STAGE_FIELDS}))
    return tuple(out)


def _compression(row: dict[str, Any]) -> CompressionRecord:
    return CompressionRecord(
        timestamp=_number(row, "timestamp"), tenant=_text(row, "tenant", "default"),
        model=_text(row, "model"), tokens_in=_number(row, "tokens_in", integer=True),
        tokens_out=_number(row, "tokens_out", integer=True),
        cost_before=_number(row, "cost_before", optional=True),
        cost_after=_number(row, "cost_after", optional=True),
        seconds=_number(row, "seconds"), cache_hit=bool(row.get("cache_hit", False)),
        pipeline=_text(row, "pipeline", ""), stages=_stages(row.get("stages", [])),
        tokens_approximate=bool(row.get("tokens_approximate", False)),
    )


def _usage(row: dict[str, Any]) -> LLMUsage:
    return LLMUsage(
        model=_text(row, "model"), input_tokens=_number(row, "input_tokens", integer=True),
        output_tokens=_number(row, "output_tokens", integer=True),
        cached_tokens=_number(row, "cached_tokens", integer=True) if "cached_tokens" in row else 0,
        cost=_number(row, "cost", optional=True), run_id=_text(row, "run_id", ""),
        timestamp=_number(row, "timestamp"), tenant=_text(row, "tenant", "default"),
        provider=_text(row, "provider", ""),
        expected_input_tokens=_number(row, "expected_input_tokens", optional=True, integer=True),
        expected_approximate=bool(row.get("expected_approximate", False)),
    )


def from_row(row: Any) -> Record:
    """The record of a row written by :func:`to_row` (or by an older ctxcomp).

    Raises:
        InputError: not a row object, an unknown kind, a missing or mistyped field.
    """
    if not isinstance(row, dict):
        raise InputError(f"a ledger row must be a JSON object, got {type(row).__name__}")
    version = row.get("v", 1)
    if not isinstance(version, int) or version > ROW_VERSION:
        raise InputError(f"row schema {version!r} is newer than this ctxcomp reads ({ROW_VERSION})")
    kind = row.get("kind")
    try:
        if kind == COMPRESSION:
            return _compression(row)
        if kind == LLM_USAGE:
            return _usage(row)
    except TypeError as exc:  # a stage object with a field of the wrong shape
        raise InputError(f"bad {kind} row: {exc}") from None
    raise InputError(f"unknown row kind {kind!r} (expected {COMPRESSION!r} or {LLM_USAGE!r})")
