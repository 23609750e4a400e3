"""Core value types shared by every stage.

All types are frozen dataclasses: a stage never mutates what it was given. Numbers stay
numbers (token counts are ``int``, money is ``float`` US dollars, time is seconds).
Provenance is not optional: every :class:`CompressedChunk` says which character spans of
which source survived. This module imports nothing from ctxcomp but ``errors``.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from ctxcomp.errors import BudgetError, ConfigError, InputError

log = logging.getLogger(__name__)

Span = tuple[int, int]

#: Placed between chunks when a context is assembled into one text.
CHUNK_SEPARATOR = "\n\n"
#: Placed between two kept spans of one chunk that were not adjacent in the source.
SPAN_SEPARATOR = " "

DEFAULT_MODEL = "gpt-4o-mini"


def content_id(text: str) -> str:
    """A stable id for a text: ``c`` + the first 12 hex digits of its SHA-256."""
    return "c" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


@dataclass(frozen=True)
class Chunk:
    """One retrieved passage or memory record.

    Text policy: ``text`` must be a ``str``. Lone surrogates (``"\\ud800"``: not text, they
    cannot be encoded as UTF-8 and no LLM API accepts them) are replaced by U+FFFD, one
    code point for one, so every offset, and so every span, is the same as in the string
    passed in; a warning is logged. NUL and other control characters are valid text and
    are kept as they are. Nothing else is rewritten (no Unicode normalization: spans must
    point into the caller's string).

    Args:
        text: the passage text.
        id: a stable source id (a str, or an int such as ``0``, kept as its str); None or
            ``""`` (the default) gives a hash of the text.
        metadata: anything the caller wants carried along (a mapping, not interpreted;
            None means empty).
        score: an upstream retrieval score, if any (a finite number).

    Raises:
        InputError: text that is not a str, an id that is not a str or int, metadata
            that is not a mapping, or a score that is not a finite number.
    """

    text: str
    id: str = ""
    metadata: Mapping[str, Any] = field(default_factory=dict, compare=False)
    score: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.text, str):
            raise InputError(f"Chunk.text must be a str, got {type(self.text).__name__}")
        clean = replace_surrogates(self.text)
        if clean is not self.text:
            log.warning("chunk %r: lone surrogates replaced by U+FFFD (offsets unchanged)", self.id)
            object.__setattr__(self, "text", clean)
        object.__setattr__(self, "id", _chunk_id(self.id, self.text))
        if self.metadata is None:
            object.__setattr__(self, "metadata", {})
        elif not isinstance(self.metadata, Mapping):
            raise InputError(f"Chunk.metadata must be a mapping or None, got {type(self.metadata).__name__}")
        if self.score is not None and (isinstance(self.score, bool) or not isinstance(self.score, (int, float))
                                       or not math.isfinite(self.score)):
            raise InputError(f"Chunk.score must be a finite number or None, got {self.score!r}")


_SURROGATE = re.compile("[\ud800-\udfff]")


def replace_surrogates(text: str) -> str:
    """``text`` with each lone surrogate replaced by U+FFFD (the same object when it has none).

    One code point replaces one, so offsets into ``text`` stay valid. (A Python str never
    holds a valid surrogate pair: astral characters are single code points.)
    """
    if text.isascii() or not _SURROGATE.search(text):
        return text
    return _SURROGATE.sub("\ufffd", text)


def _chunk_id(value: object, text: str) -> str:
    if value is None or value == "":
        return content_id(text)
    if isinstance(value, str):
        return replace_surrogates(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)  # 0 is an id like any other
    raise InputError(f"Chunk.id must be a str or an int, got {type(value).__name__} {value!r}")


@dataclass(frozen=True)
class Budget:
    """What the compressed context may cost, counted with ``model``'s tokenizer.

    Give exactly one of ``max_tokens`` or ``ratio``.

    Args:
        max_tokens: the output may hold at most this many tokens.
        ratio: a compression factor >= 1; the output may hold ``tokens_in / ratio`` tokens.
        model: the target model whose tokenizer counts (and whose price is reported).
        quotas: per-chunk caps, ``{chunk_id: max tokens}`` (stored as sorted pairs): the
            kept text of that chunk may hold at most that many tokens. A planner sets them
            for each stage; compressors built on :class:`~ctxcomp.compressors.base.BaseCompressor`
            honour them, and one that ignores them still meets ``max_tokens``.

    Raises:
        BudgetError: both or neither given, or a value that is not a positive number.
    """

    max_tokens: int | None = None
    ratio: float | None = None
    model: str = DEFAULT_MODEL
    quotas: Mapping[str, int] | tuple[tuple[str, int], ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "quotas", _check_quotas(self.quotas))
        if (self.max_tokens is None) == (self.ratio is None):
            raise BudgetError("give exactly one of max_tokens or ratio")
        if self.max_tokens is not None:
            if isinstance(self.max_tokens, bool) or not isinstance(self.max_tokens, int):
                raise BudgetError(f"max_tokens must be an int, got {self.max_tokens!r}")
            if self.max_tokens <= 0:
                raise BudgetError(f"max_tokens must be > 0, got {self.max_tokens}")
        if self.ratio is not None:
            if isinstance(self.ratio, bool) or not isinstance(self.ratio, (int, float)):
                raise BudgetError(f"ratio must be a number, got {self.ratio!r}")
            if not math.isfinite(self.ratio) or self.ratio < 1:
                raise BudgetError(f"ratio must be a finite number >= 1, got {self.ratio}")
        if not isinstance(self.model, str) or not self.model:
            raise BudgetError("model must be a non-empty model name")

    def quota(self, chunk_id: str) -> int | None:
        """The token cap of chunk ``chunk_id`` (None: no cap of its own)."""
        return dict(self.quotas).get(chunk_id)  # normalized to sorted pairs in __post_init__

    def limit(self, tokens_in: int) -> int:
        """The token limit for an input of ``tokens_in`` tokens (at least 1)."""
        if self.max_tokens is not None:
            return self.max_tokens
        assert self.ratio is not None  # guaranteed by __post_init__
        return max(1, int(tokens_in / self.ratio))


def _check_quotas(quotas: Any) -> tuple[tuple[str, int], ...]:
    items = quotas.items() if isinstance(quotas, Mapping) else quotas
    try:
        pairs = [(str(k), v) for k, v in items]
    except (TypeError, ValueError):
        raise BudgetError(f"quotas must map chunk ids to token counts, got {quotas!r}") from None
    for key, value in pairs:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise BudgetError(f"the quota of chunk {key!r} must be an int >= 0, got {value!r}")
    return tuple(sorted(pairs))


def join_spans(source: str, spans: Sequence[Span]) -> str:
    """Text of ``spans`` of ``source``: adjacent spans run on, gaps get SPAN_SEPARATOR."""
    parts: list[str] = []
    prev_end: int | None = None
    for start, end in spans:
        if prev_end is not None and start != prev_end:
            parts.append(SPAN_SEPARATOR)
        parts.append(source[start:end])
        prev_end = end
    return "".join(parts)


@dataclass(frozen=True)
class Generated:
    """How the text of a generated (abstractive) chunk was made: not copied from its
    source but written by a model, so it has no spans into the source.

    Attributes:
        model: the model that wrote it.
        method: the stage that asked for it (``summarize``).
        source_spans: the character spans of the source text the model was given (what
            the text summarizes), sorted and non-overlapping.
        faithfulness: the share of the text's sentences that a source sentence supports
            (None: not measured).
    """

    model: str
    method: str
    source_spans: tuple[Span, ...]
    faithfulness: float | None = None


@dataclass(frozen=True)
class CompressedChunk:
    """What survived of one source chunk: extracted (copied spans) or generated.

    Attributes:
        text: the kept text. Extracted: the spans of the source joined by
            :func:`join_spans`. Generated: text a model wrote (see ``generated``).
        source_id: the id of the source :class:`Chunk`.
        spans: extracted: sorted, non-overlapping ``(start, end)`` character offsets into
            the source text; ``source.text[start:end]`` is exactly what was kept.
            Generated: empty (no character of ``text`` is claimed to be the source's).
        tokens_in: tokens of the source chunk text.
        tokens_out: tokens of ``text``.
        score: the compressor's relevance score for this chunk (higher is better).
        metadata: the source chunk's metadata, carried along.
        generated: None for extracted text; for generated text, the model, the stage and
            the source spans it was made from.
    """

    text: str
    source_id: str
    spans: tuple[Span, ...]
    tokens_in: int
    tokens_out: int
    score: float | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict, compare=False)
    generated: Generated | None = None

    @property
    def kind(self) -> str:
        """``"extracted"`` or ``"generated"``."""
        return "extracted" if self.generated is None else "generated"


@dataclass(frozen=True)
class StageReport:
    """What one stage did.

    Attributes:
        name: the stage (a compressor's name, or ``plan:<planner>`` for the planning step).
        tokens_in, tokens_out: target-model tokens the stage read and kept.
        seconds: wall time of the stage.
        cache_hit: whether a cache served the whole compression (None: no cache).
        limit: the token limit the plan gave the stage (None: not planned).
        llm_tokens_in, llm_tokens_out: tokens the stage itself sent to and got from a
            generative model (a summarizer, say); 0 for stages that call none.
        llm_cost: USD of those calls (None: the model's price is unknown).
        note: what the stage wants the caller to know (e.g. a fallback it took).
    """

    name: str
    tokens_in: int
    tokens_out: int
    seconds: float
    cache_hit: bool | None = None
    limit: int | None = None
    llm_tokens_in: int = 0
    llm_tokens_out: int = 0
    llm_cost: float | None = 0.0
    note: str | None = None


@dataclass(frozen=True)
class StageTarget:
    """A stage as a planner sees it: its name and the limit its spec asked for, if any.

    Attributes:
        name: the stage's name.
        ratio: the stage's own reduction of what it reads (>= 1), e.g. 2 halves its input.
        max_tokens: the stage's own cap on what it keeps.

    Raises:
        ConfigError: both given, a ratio below 1, or a cap that is not a positive int.
    """

    name: str
    ratio: float | None = None
    max_tokens: int | None = None

    def __post_init__(self) -> None:
        if self.ratio is not None and self.max_tokens is not None:
            raise ConfigError(f"stage {self.name!r}: give ratio or max_tokens, not both")
        if self.ratio is not None and (
            isinstance(self.ratio, bool) or not isinstance(self.ratio, (int, float))
            or not math.isfinite(self.ratio) or self.ratio < 1
        ):
            raise ConfigError(f"stage {self.name!r}: ratio must be a number >= 1, got {self.ratio!r}")
        if self.max_tokens is not None and (
            isinstance(self.max_tokens, bool) or not isinstance(self.max_tokens, int) or self.max_tokens < 1
        ):
            raise ConfigError(f"stage {self.name!r}: max_tokens must be an int >= 1, got {self.max_tokens!r}")


@dataclass(frozen=True)
class ChunkPlan:
    """The plan for one input chunk.

    Attributes:
        chunk_id: the source chunk's id.
        keep: whether the chunk goes on to the stages (False: dropped by the planner).
        quota: the most tokens the chunk may keep in the final context (None: no cap).
        ratio: the chunk's target ratio, tokens_in / quota (None: no target).
        reason: why, in words ("rank 2 of 20, utility 0.61", "redundant with doc 4" ...).
        tokens_in: the chunk's own tokens.
        utility: the planner's utility of the chunk (None when it scored none).
        tokens_kept: tokens of the chunk in the final context (filled in by the pipeline).
    """

    chunk_id: str
    keep: bool
    quota: int | None = None
    ratio: float | None = None
    reason: str = ""
    tokens_in: int = 0
    utility: float | None = None
    tokens_kept: int | None = None


@dataclass(frozen=True)
class Plan:
    """What a planner decided for one request.

    Attributes:
        planner: the planner's name.
        chunks: one :class:`ChunkPlan` per input chunk, in input order.
        stage_limits: the token limit of each stage, coarse to fine (non-increasing;
            the last one is the final budget's limit).
        tier: the tier a tier router chose (None: no tier routing).
        reason: the planner's explanation of the whole plan.
    """

    planner: str
    chunks: tuple[ChunkPlan, ...]
    stage_limits: tuple[int, ...]
    tier: str | None = None
    reason: str = ""

    def kept(self) -> tuple[ChunkPlan, ...]:
        return tuple(c for c in self.chunks if c.keep)

    def quotas(self) -> dict[str, int]:
        """``{chunk_id: quota}`` of the kept chunks that have one."""
        return {c.chunk_id: c.quota for c in self.chunks if c.keep and c.quota is not None}


@dataclass(frozen=True)
class CompressedContext:
    """The result of a compression.

    Attributes:
        chunks: the kept chunks, in their original order.
        text: the assembled context (chunk texts joined by CHUNK_SEPARATOR).
        tokens_in: tokens of the assembled input, counted for ``model``.
        tokens_out: tokens of ``text``, counted for ``model``.
        model: the target model whose tokenizer counted.
        cost_before: USD of sending the input as prompt tokens (None: no known price).
        cost_after: USD of sending ``text`` as prompt tokens (None: no known price).
        stages: one report per stage that ran.
        budget_tokens: the token limit that applied.
        tokens_approximate: True when the tokenizer is an approximation for ``model``.
        plan: what the planner decided, per chunk (kept or dropped, quota, tokens kept,
            reason) and per stage (its limit); None when no planner ran (the input fit).
    """

    chunks: tuple[CompressedChunk, ...]
    text: str
    tokens_in: int
    tokens_out: int
    model: str = DEFAULT_MODEL
    cost_before: float | None = None
    cost_after: float | None = None
    stages: tuple[StageReport, ...] = ()
    budget_tokens: int | None = None
    tokens_approximate: bool = False
    plan: Plan | None = None

    @property
    def ratio(self) -> float:
        """Compression achieved: tokens_in / tokens_out (inf when nothing was kept)."""
        if self.tokens_out == 0:
            return math.inf if self.tokens_in else 1.0
        return self.tokens_in / self.tokens_out

    @property
    def tokens_saved(self) -> int:
        return self.tokens_in - self.tokens_out

    @property
    def cost_saved(self) -> float | None:
        if self.cost_before is None or self.cost_after is None:
            return None
        return self.cost_before - self.cost_after

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (spans as lists; ratio included; inf written as None)."""
        data = asdict(self)
        data["chunks"] = [chunk_dict(c) for c in self.chunks]
        ratio = self.ratio
        data["ratio"] = ratio if math.isfinite(ratio) else None
        data["tokens_saved"] = self.tokens_saved
        data["cost_saved"] = self.cost_saved
        return data


def chunk_dict(c: CompressedChunk) -> dict[str, Any]:
    """A kept chunk as a JSON-ready dict: spans as lists, ``kind`` (extracted or
    generated) and, for generated text, ``generated`` with its model, method and source
    spans."""
    data = {**asdict(c), "spans": [list(s) for s in c.spans], "metadata": dict(c.metadata), "kind": c.kind}
    if c.generated is not None:
        data["generated"] = {"model": c.generated.model, "method": c.generated.method,
                             "source_spans": [list(s) for s in c.generated.source_spans],
                             "faithfulness": c.generated.faithfulness}
    return data
