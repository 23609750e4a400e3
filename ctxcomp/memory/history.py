"""Chat-history compression: the framework-neutral logic behind the chat integrations.

A conversation is a list of :class:`Turn` s (role, text, tool-call links). The rules,
whatever the framework:

* system turns and the latest user turn are kept verbatim;
* the most recent ``keep_recent`` turns are kept verbatim, and the window is widened so
  that it never starts between a tool call and its result;
* older turns are compressed *together* by a ctxcomp compressor or :class:`Pipeline`
  (default: the embedding compressor, ranking each older turn's sentences by relevance
  to the latest user message) into the tokens left by the verbatim part;
* roles are never dropped or merged: every turn stays a turn of its own role (LLMLingua
  issue #68). An older turn whose text was dropped entirely keeps its role and an
  elision marker (``empty="mark"``, the default) or is removed together with the rest of
  its tool-call group (``empty="drop"``);
* an assistant turn that calls tools and the tool results answering it form one group:
  they are kept or removed together, so a tool call always has its result.

Token accounting counts each turn's text and its non-text payload (tool-call arguments)
with the target model's tokenizer plus a fixed per-message overhead.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ctxcomp.errors import BudgetError, ConfigError, InputError
from ctxcomp.pricing import prompt_costs
from ctxcomp.tokens import TokenCounter, get_counter
from ctxcomp.types import Budget, Chunk, CompressedChunk, CompressedContext, Span, StageReport

log = logging.getLogger(__name__)

Role = Literal["system", "user", "assistant", "tool"]
ROLES: tuple[str, ...] = ("system", "user", "assistant", "tool")
#: Tokens a chat API adds around every message (role and delimiters; OpenAI uses 3-4).
MESSAGE_OVERHEAD = 4
#: The text an older turn keeps when nothing of it survived (``empty="mark"``).
ELISION = "[…]"


@dataclass(frozen=True)
class Turn:
    """One chat message, reduced to what compression needs.

    Args:
        role: ``system``, ``user``, ``assistant`` or ``tool``.
        text: the message's text (may be empty, e.g. an assistant turn that only calls tools).
        tool_call_ids: ids of the tool calls an assistant turn makes.
        tool_call_id: for a tool turn, the id of the call it answers.
        payload_tokens: tokens of content that is sent but never compressed (tool-call
            arguments, images); counted, kept as is.
        compressible: False keeps the text verbatim (e.g. multi-part content).
    """

    role: Role
    text: str
    tool_call_ids: tuple[str, ...] = ()
    tool_call_id: str | None = None
    payload_tokens: int = 0
    compressible: bool = True

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise InputError(f"unknown chat role {self.role!r}; expected one of {', '.join(ROLES)}")
        if not isinstance(self.text, str):
            raise InputError(f"a {self.role} turn's text must be a str, got {type(self.text).__name__}")


@dataclass(frozen=True)
class HistoryConfig:
    """Settings of :func:`compress_history`.

    Attributes:
        keep_recent: how many of the latest turns stay verbatim (0: only system turns
            and the latest user turn).
        empty: what happens to an older turn none of whose text survived: ``"mark"``
            keeps the turn with :data:`ELISION` as its text, ``"drop"`` removes it with
            its whole tool-call group when no turn of the group kept any text.
        message_overhead: tokens counted per message on top of its content.
        keep_latest_user: keep the latest user turn verbatim even outside the recent
            window (False when the turns are an archive and the live question is elsewhere).
    """

    keep_recent: int = 4
    empty: Literal["mark", "drop"] = "mark"
    message_overhead: int = MESSAGE_OVERHEAD
    keep_latest_user: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.keep_recent, bool) or not isinstance(self.keep_recent, int) or self.keep_recent < 0:
            raise ConfigError(f"keep_recent must be an int >= 0, got {self.keep_recent!r}")
        if self.empty not in ("mark", "drop"):
            raise ConfigError(f"empty must be 'mark' or 'drop', got {self.empty!r}")
        if self.message_overhead < 0:
            raise ConfigError(f"message_overhead must be >= 0, got {self.message_overhead}")


@dataclass(frozen=True)
class KeptTurn:
    """A turn of the compressed history.

    Attributes:
        index: position of the turn in the input.
        text: the text to send (verbatim, compressed, or :data:`ELISION`).
        verbatim: True when ``text`` is the turn's whole original text.
        spans: character spans of the original text that ``text`` keeps.
    """

    index: int
    text: str
    verbatim: bool
    spans: tuple[Span, ...] = ()


@dataclass(frozen=True)
class HistoryCompression:
    """The result of :func:`compress_history`.

    Attributes:
        turns: the kept turns, in their original order.
        tokens_in: tokens of the whole input history (content, payload, overhead).
        tokens_out: tokens of the kept history, counted the same way.
        model: the target model whose tokenizer counted.
        cost_before / cost_after: USD of sending the history as prompt tokens (None: unpriced).
        budget_tokens: the limit that applied.
        context: what the compressor returned for the older turns (None: nothing to compress).
    """

    turns: tuple[KeptTurn, ...]
    tokens_in: int
    tokens_out: int
    model: str
    cost_before: float | None
    cost_after: float | None
    budget_tokens: int
    context: CompressedContext | None = field(default=None, compare=False)

    @property
    def tokens_saved(self) -> int:
        return self.tokens_in - self.tokens_out

    @property
    def ratio(self) -> float:
        return self.tokens_in / self.tokens_out if self.tokens_out else math.inf

    def to_context(self) -> CompressedContext:
        """The result as a :class:`CompressedContext` (one chunk per kept turn), for a Ledger."""
        chunks = tuple(
            CompressedChunk(t.text, source_id=str(t.index), spans=t.spans, tokens_in=0, tokens_out=0)
            for t in self.turns
        )
        stages = self.context.stages if self.context is not None else ()
        return CompressedContext(
            chunks=chunks, text="\n".join(t.text for t in self.turns), tokens_in=self.tokens_in,
            tokens_out=self.tokens_out, model=self.model, cost_before=self.cost_before,
            cost_after=self.cost_after, stages=(*stages, StageReport("history", self.tokens_in,
                                                                     self.tokens_out, 0.0)),
            budget_tokens=self.budget_tokens,
        )


def tool_groups(turns: Sequence[Turn]) -> list[list[int]]:
    """Partition turn indices into groups: an assistant turn with tool calls plus the tool
    turns answering those calls (wherever they follow) form one group; every other turn is
    a group of its own. Groups are ordered by their first turn."""
    owner: dict[str, int] = {}
    group_of: dict[int, int] = {}
    groups: list[list[int]] = []
    for i, turn in enumerate(turns):
        if turn.role == "tool" and turn.tool_call_id in owner:
            g = owner[turn.tool_call_id]
            groups[g].append(i)
            group_of[i] = g
            continue
        group_of[i] = len(groups)
        groups.append([i])
        for call_id in turn.tool_call_ids if turn.role == "assistant" else ():
            owner[call_id] = group_of[i]
    return groups


def turn_tokens(turn: Turn, text: str, counter: TokenCounter, overhead: int) -> int:
    """Tokens of sending ``turn`` with ``text`` as its content."""
    return (counter.count(text) if text else 0) + turn.payload_tokens + overhead


def _verbatim_indices(turns: Sequence[Turn], groups: list[list[int]], config: HistoryConfig) -> set[int]:
    """System turns, the latest user turn, non-compressible turns, and the recent window
    widened to whole tool-call groups."""
    keep = {i for i, t in enumerate(turns) if t.role == "system" or not t.compressible}
    users = [i for i, t in enumerate(turns) if t.role == "user"]
    if users and config.keep_latest_user:
        keep.add(users[-1])
    start = max(0, len(turns) - config.keep_recent)
    for group in groups:
        if max(group) >= start:
            keep.update(group)
    return keep


def latest_user_text(turns: Sequence[Turn]) -> str:
    """The text of the latest user turn with text ('' when there is none)."""
    for turn in reversed(turns):
        if turn.role == "user" and turn.text.strip():
            return turn.text
    return ""


def compress_history(
    turns: Sequence[Turn],
    budget: Budget | int,
    *,
    compressor: Any = None,
    query: str | None = None,
    config: HistoryConfig | None = None,
) -> HistoryCompression:
    """Compress a conversation to fit ``budget`` with the rules of this module.

    Args:
        turns: the conversation, oldest first.
        budget: the token limit for the whole history (an int is ``max_tokens`` for
            gpt-4o-mini), or a :class:`Budget` (``ratio`` applies to the whole history).
        compressor: a ctxcomp compressor or Pipeline (anything with
            ``compress(query, chunks, budget)``); default: the embedding compressor.
        query: what older turns are ranked against; default: the latest user turn.
        config: :class:`HistoryConfig` (recent window, empty-turn policy).

    Returns:
        A :class:`HistoryCompression`. When the history already fits, every turn is
        kept verbatim (a documented no-op). When the verbatim part alone exceeds the
        budget, the older turns shrink to their minimum (markers or nothing) and the
        result is over budget: verbatim turns are never cut (logged as a warning).

    Raises:
        InputError: ``turns`` is not a sequence of Turn.
        BudgetError: an invalid budget.
    """
    config = config or HistoryConfig()
    budget = _as_budget(budget)
    if isinstance(turns, (str, bytes)) or not isinstance(turns, Sequence):
        raise InputError("turns must be a list of Turn")
    for i, turn in enumerate(turns):
        if not isinstance(turn, Turn):
            raise InputError(f"turn {i} is a {type(turn).__name__}; expected Turn")
    counter = get_counter(budget.model)
    oh = config.message_overhead
    full = [turn_tokens(t, t.text, counter, oh) for t in turns]
    tokens_in = sum(full)
    limit = budget.limit(tokens_in)
    groups = tool_groups(turns)
    keep = _verbatim_indices(turns, groups, config)
    older = [i for i in range(len(turns)) if i not in keep]
    if tokens_in <= limit or not older:
        if tokens_in > limit:
            log.warning("history needs %d tokens, over the budget of %d, and every turn must stay "
                        "verbatim (system, recent or latest user turns)", tokens_in, limit)
        kept = [KeptTurn(i, t.text, True, _whole(t.text)) for i, t in enumerate(turns)]
        return _result(kept, tokens_in, tokens_in, budget, limit, None)
    room = limit - sum(full[i] for i in keep)
    ctx, kept, tokens_out = _fit_older(turns, groups, keep, older, room, limit, counter, budget.model,
                                       compressor, query, config)
    if tokens_out > limit:
        log.warning("history needs %d tokens, over the budget of %d: system, recent and latest "
                    "user turns are kept verbatim", tokens_out, limit)
    return _result(kept, tokens_in, tokens_out, budget, limit, ctx)


def _fit_older(
    turns: Sequence[Turn],
    groups: list[list[int]],
    keep: set[int],
    older: list[int],
    room: int,
    limit: int,
    counter: TokenCounter,
    model: str,
    compressor: Any,
    query: str | None,
    config: HistoryConfig,
) -> tuple[CompressedContext | None, list[KeptTurn], int]:
    """Compress the older turns into ``room`` tokens; (context, kept turns, tokens).

    ``"mark"`` reserves every older turn's overhead, payload and marker up front. ``"drop"``
    reserves nothing, since groups that keep no text vanish: it compresses into the whole
    room, once more into the room less the overshoot if needed, then removes the
    lowest-scored kept older turns until the history fits.
    """
    oh = config.message_overhead
    with_text = [i for i in older if turns[i].text.strip()]
    text_room = room
    if config.empty == "mark":
        floor = sum(turns[i].payload_tokens + oh for i in older)
        text_room = room - floor - sum(counter.count(ELISION) for _ in with_text)
    texts: dict[int, tuple[str, tuple[Span, ...]]] = {}
    ctx: CompressedContext | None = None

    def fit() -> tuple[list[KeptTurn], int]:
        kept = _assemble(turns, groups, keep, texts, config)
        return kept, sum(turn_tokens(turns[k.index], k.text, counter, oh) for k in kept)

    for _ in range(2 if config.empty == "drop" else 1):
        if not with_text or text_room <= 0:
            break
        texts, ctx = _compress_older(turns, with_text, text_room, model, compressor, query)
        kept, tokens_out = fit()
        if tokens_out <= limit:
            break
        text_room -= tokens_out - limit  # the overshoot is roughly the kept groups' overhead
    scores = {int(c.source_id): c.score or 0.0 for c in ctx.chunks} if ctx is not None else {}
    kept, tokens_out = fit()
    while tokens_out > limit and texts and config.empty == "drop":
        del texts[min(texts, key=lambda i: (scores.get(i, 0.0), i))]
        kept, tokens_out = fit()
    return ctx, kept, tokens_out


def _as_budget(budget: Budget | int) -> Budget:
    if isinstance(budget, Budget):
        return budget
    if isinstance(budget, bool) or not isinstance(budget, int):
        raise BudgetError(f"budget must be a Budget or an int of tokens, got {budget!r}")
    return Budget(max_tokens=budget)


def _whole(text: str) -> tuple[Span, ...]:
    return ((0, len(text)),) if text else ()


def _compress_older(
    turns: Sequence[Turn],
    with_text: list[int],
    text_room: int,
    model: str,
    compressor: Any,
    query: str | None,
) -> tuple[dict[int, tuple[str, tuple[Span, ...]]], CompressedContext]:
    """Kept text and spans per older turn index (absent: nothing kept)."""
    if compressor is None:
        from ctxcomp.compressors.embedding import EmbeddingCompressor

        compressor = EmbeddingCompressor()
    q = query if query is not None else latest_user_text(turns)
    chunks = [Chunk(turns[i].text, id=str(i), metadata={"role": turns[i].role}) for i in with_text]
    if not q.strip() and getattr(compressor, "requires_query", True):
        q = turns[with_text[-1]].text  # no user text at all: rank by the latest older turn
    ctx = compressor.compress(q, chunks, Budget(max_tokens=text_room, model=model))
    return {int(c.source_id): (c.text, tuple(c.spans)) for c in ctx.chunks if c.text}, ctx


def _assemble(
    turns: Sequence[Turn],
    groups: list[list[int]],
    keep: set[int],
    texts: dict[int, tuple[str, tuple[Span, ...]]],
    config: HistoryConfig,
) -> list[KeptTurn]:
    kept: list[KeptTurn] = []
    for group in groups:
        if config.empty == "drop" and not any(i in keep or i in texts for i in group):
            continue  # the whole group lost its text: remove it whole (calls and results)
        for i in group:
            turn = turns[i]
            if i in keep:
                kept.append(KeptTurn(i, turn.text, True, _whole(turn.text)))
            elif i in texts:
                text, spans = texts[i]
                kept.append(KeptTurn(i, text, text == turn.text, spans))
            elif not turn.text.strip():
                kept.append(KeptTurn(i, turn.text, True, _whole(turn.text)))
            else:
                kept.append(KeptTurn(i, ELISION, False, ()))
    kept.sort(key=lambda k: k.index)
    return kept


def _result(
    kept: list[KeptTurn],
    tokens_in: int,
    tokens_out: int,
    budget: Budget,
    limit: int,
    ctx: CompressedContext | None,
) -> HistoryCompression:
    before, after = prompt_costs(budget.model, tokens_in, tokens_out)
    return HistoryCompression(tuple(kept), tokens_in, tokens_out, budget.model, before, after, limit, ctx)
