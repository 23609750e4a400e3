"""Cache payloads: versioned JSON, zlib-compressed above a size threshold. Never pickle.

A payload is one byte of format tag followed by the body:

* ``b"j"`` + UTF-8 JSON,
* ``b"z"`` + zlib-compressed UTF-8 JSON,
* ``b"s"`` + a 32-byte HMAC-SHA256 + one of the above (when the cache has an ``hmac_key``;
  the MAC covers the entry's key too, so a signed payload cannot be replayed under
  another key).

The JSON is an envelope ``{"v": SCHEMA_VERSION, "compute_s": float, "ctx": {...}}``.

A cache is something others may write to (a shared Redis), so decoding trusts nothing:

* the payload, and its decompressed body, are bounded in bytes (``zlib`` with
  ``max_length``, so a zlib bomb costs at most the bound), relative to the request too;
  JSON nesting is bounded before parsing (no RecursionError from ``[[[[...``);
* every field's type is checked and the frozen dataclasses are rebuilt exactly;
* against the request (:func:`decode` with ``chunks``): every source id is one of the
  request's chunks (each at most once, in request order), every span lies inside its
  source, and the kept text is **rebuilt from the request's own chunks** and must equal
  what was stored, as must the token count of the whole text (recounted with the
  request's tokenizer) and the model; plan entries name request chunks only.
* a generated (abstractive) chunk cannot be rebuilt from the request: its source spans
  must lie inside its source and it must have no extracted spans, and its text is taken
  as stored (bounded, and counted in the recount of the whole text). Give the cache an
  ``hmac_key`` when others can write to it and generated stages are cached.

Chunk metadata is not stored: the cache key covers it, and :func:`decode` re-attaches it
from the request's chunks by source id. Anything that does not decode or validate raises
:class:`CorruptPayload`, which the cache treats as a miss (and then overwrites the entry).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ctxcomp.errors import CacheError
from ctxcomp.tokens import TokenCounter
from ctxcomp.types import (
    CHUNK_SEPARATOR,
    Chunk,
    ChunkPlan,
    CompressedChunk,
    CompressedContext,
    Generated,
    Plan,
    StageReport,
    join_spans,
)

#: Bumped whenever the payload layout or the key recipe changes; part of every key.
SCHEMA_VERSION = 3  # 3: a kept chunk may be generated (abstractive); older entries are misses
#: Bodies larger than this many bytes are zlib-compressed.
DEFAULT_COMPRESS_THRESHOLD = 2048
_RAW, _ZLIB, _SIGNED = b"j", b"z", b"s"
_MAC_BYTES = 32
#: No payload (nor its decompressed body) is read past this many bytes.
DEFAULT_MAX_PAYLOAD_BYTES = 64 * 1024 * 1024


class CorruptPayload(CacheError):
    """A cached payload does not decode or validate (treated as a miss)."""

    is_retryable = False


@dataclass(frozen=True)
class Decoded:
    """A decoded entry: the context and the seconds its compression took."""

    context: CompressedContext
    compute_s: float


def _chunk_dict(c: CompressedChunk) -> list[Any]:
    made = None if c.generated is None else [c.generated.model, c.generated.method,
                                             [[s, e] for s, e in c.generated.source_spans],
                                             c.generated.faithfulness]
    return [c.text, c.source_id, [[s, e] for s, e in c.spans], c.tokens_in, c.tokens_out, c.score, made]


def _stage_list(s: StageReport) -> list[Any]:
    return [s.name, s.tokens_in, s.tokens_out, s.seconds, s.limit, s.llm_tokens_in, s.llm_tokens_out,
            s.llm_cost, s.note]


def _plan_dict(plan: Plan | None) -> dict[str, Any] | None:
    if plan is None:
        return None
    return {"planner": plan.planner, "tier": plan.tier, "reason": plan.reason,
            "limits": list(plan.stage_limits),
            "chunks": [[c.chunk_id, c.keep, c.quota, c.ratio, c.reason, c.tokens_in, c.utility, c.tokens_kept]
                       for c in plan.chunks]}


def encode(
    ctx: CompressedContext, compute_s: float, *, compress_threshold: int = DEFAULT_COMPRESS_THRESHOLD
) -> bytes:
    """The payload bytes for ``ctx`` (which took ``compute_s`` seconds to compute)."""
    body = {
        "v": SCHEMA_VERSION,
        "compute_s": float(compute_s),
        "ctx": {
            "chunks": [_chunk_dict(c) for c in ctx.chunks],
            "text": ctx.text,
            "tokens_in": ctx.tokens_in,
            "tokens_out": ctx.tokens_out,
            "model": ctx.model,
            "cost_before": ctx.cost_before,
            "cost_after": ctx.cost_after,
            "stages": [_stage_list(s) for s in ctx.stages],
            "budget_tokens": ctx.budget_tokens,
            "tokens_approximate": ctx.tokens_approximate,
            "plan": _plan_dict(ctx.plan),
        },
    }
    raw = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    if len(raw) > compress_threshold:
        return _ZLIB + zlib.compress(raw, 1)  # level 1: ~3x on prose, fastest to write
    return _RAW + raw


def _mac(hmac_key: bytes, key: str, payload: bytes) -> bytes:
    return hmac.new(hmac_key, key.encode("utf-8") + b"\0" + payload, hashlib.sha256).digest()


def sign(payload: bytes, key: str, hmac_key: bytes) -> bytes:
    """``payload`` signed for the entry ``key`` with ``hmac_key``."""
    return _SIGNED + _mac(hmac_key, key, payload) + payload


def verify(data: bytes, key: str, hmac_key: bytes | None) -> bytes:
    """The unsigned payload of ``data``; with ``hmac_key``, only a valid signature passes.

    Raises:
        CorruptPayload: unsigned data when a key is set, a bad signature, or signed data
            when no key is set (it cannot be checked).
    """
    if not isinstance(data, (bytes, bytearray)):
        raise CorruptPayload("cache payload: not bytes")
    signed = data[:1] == _SIGNED
    if hmac_key is None:
        if signed:
            raise CorruptPayload("cache payload is signed but this cache has no hmac_key")
        return bytes(data)
    if not signed or len(data) < 1 + _MAC_BYTES + 2:
        raise CorruptPayload("cache payload is not signed (this cache requires an HMAC)")
    mac, payload = bytes(data[1 : 1 + _MAC_BYTES]), bytes(data[1 + _MAC_BYTES :])
    if not hmac.compare_digest(mac, _mac(hmac_key, key, payload)):
        raise CorruptPayload("cache payload has a bad HMAC signature")
    return payload


def _check(cond: bool, what: str) -> None:
    if not cond:
        raise CorruptPayload(f"cache payload: bad {what}")


def _int(value: Any, what: str) -> int:
    _check(isinstance(value, int) and not isinstance(value, bool) and value >= 0, what)
    return int(value)


def _opt_float(value: Any, what: str) -> float | None:
    if value is None:
        return None
    _check(isinstance(value, (int, float)) and not isinstance(value, bool), what)
    return float(value)


def _bool(value: Any, what: str) -> bool:
    _check(isinstance(value, bool), what)
    return bool(value)


def _str(value: Any, what: str) -> str:
    _check(isinstance(value, str), what)
    return str(value)


def _spans(value: Any) -> tuple[tuple[int, int], ...]:
    _check(isinstance(value, list), "spans")
    out: list[tuple[int, int]] = []
    for pair in value:
        _check(isinstance(pair, list) and len(pair) == 2, "span")
        start, end = _int(pair[0], "span start"), _int(pair[1], "span end")
        _check(start <= end, "span order")
        out.append((start, end))
    return tuple(out)


def _generated(value: Any) -> Generated | None:
    if value is None:
        return None
    _check(isinstance(value, list) and len(value) == 4, "generated")
    model, method, spans, faithful = value
    return Generated(_str(model, "generated model"), _str(method, "generated method"), _spans(spans),
                     _opt_float(faithful, "generated faithfulness"))


def _chunk(value: Any, metadata: Mapping[str, Mapping[str, Any]]) -> CompressedChunk:
    _check(isinstance(value, list) and len(value) == 7, "chunk")
    text, source_id, spans, t_in, t_out, score, made = value
    source_id = _str(source_id, "source_id")
    return CompressedChunk(
        text=_str(text, "chunk text"),
        source_id=source_id,
        spans=_spans(spans),
        tokens_in=_int(t_in, "chunk tokens_in"),
        tokens_out=_int(t_out, "chunk tokens_out"),
        score=_opt_float(score, "chunk score"),
        metadata=metadata.get(source_id, {}),
        generated=_generated(made),
    )


def _opt_int(value: Any, what: str) -> int | None:
    return None if value is None else _int(value, what)


def _opt_str(value: Any, what: str) -> str | None:
    return None if value is None else _str(value, what)


def _stage(value: Any) -> StageReport:
    _check(isinstance(value, list) and len(value) == 9, "stage report")
    name, t_in, t_out, seconds, limit, llm_in, llm_out, llm_cost, note = value
    secs = _opt_float(seconds, "stage seconds")
    return StageReport(_str(name, "stage name"), _int(t_in, "stage tokens_in"),
                       _int(t_out, "stage tokens_out"), secs if secs is not None else 0.0,
                       limit=_opt_int(limit, "stage limit"), llm_tokens_in=_int(llm_in, "stage llm_tokens_in"),
                       llm_tokens_out=_int(llm_out, "stage llm_tokens_out"),
                       llm_cost=_opt_float(llm_cost, "stage llm_cost"), note=_opt_str(note, "stage note"))


def _chunk_plan(value: Any) -> ChunkPlan:
    _check(isinstance(value, list) and len(value) == 8, "chunk plan")
    chunk_id, keep, quota, ratio, reason, t_in, utility, kept = value
    return ChunkPlan(_str(chunk_id, "plan chunk id"), _bool(keep, "plan keep"), _opt_int(quota, "plan quota"),
                     _opt_float(ratio, "plan ratio"), _str(reason, "plan reason"), _int(t_in, "plan tokens_in"),
                     _opt_float(utility, "plan utility"), _opt_int(kept, "plan tokens_kept"))


def _plan(value: Any) -> Plan | None:
    if value is None:
        return None
    _check(isinstance(value, dict), "plan")
    limits, chunks = value.get("limits"), value.get("chunks")
    _check(isinstance(limits, list) and isinstance(chunks, list), "plan limits/chunks")
    return Plan(_str(value.get("planner"), "planner"), tuple(_chunk_plan(c) for c in chunks),
                tuple(_int(x, "stage limit") for x in limits), _opt_str(value.get("tier"), "plan tier"),
                _str(value.get("reason"), "plan reason"))


def _load(data: bytes, max_bytes: int) -> Any:
    if not isinstance(data, (bytes, bytearray)) or len(data) < 2:
        raise CorruptPayload("cache payload: empty or not bytes")
    if len(data) > max_bytes:
        raise CorruptPayload(f"cache payload: {len(data)} bytes, over the bound of {max_bytes}")
    tag, body = data[:1], bytes(data[1:])
    try:
        if tag == _ZLIB:
            inflater = zlib.decompressobj()
            body = inflater.decompress(body, max_bytes)
            if inflater.unconsumed_tail or not inflater.eof:
                raise CorruptPayload(f"cache payload: inflates past the bound of {max_bytes} bytes, or is cut")
        elif tag != _RAW:
            raise CorruptPayload(f"cache payload: unknown format tag {tag!r}")
        return json.loads(body)
    except RecursionError:
        # json's parser stops at the interpreter's recursion limit, at a cost linear in the
        # depth reached (a valid payload is 6 deep); no pre-scan, which a crafted string of
        # escaped quotes would make quadratic.
        raise CorruptPayload("cache payload: JSON nested too deeply") from None
    except (zlib.error, UnicodeDecodeError, ValueError) as exc:
        raise CorruptPayload(f"cache payload does not decode: {exc}") from exc


def request_bound(chunks: Sequence[Chunk], max_bytes: int) -> int:
    """The most bytes a payload for ``chunks`` can take: its texts twice over, plus room for
    ids, spans, reports and a plan; never more than ``max_bytes``."""
    if not chunks:
        return max_bytes
    text_bytes = sum(len(c.text) for c in chunks) * 4  # UTF-8 is at most 4 bytes a character
    return min(max_bytes, 64 * 1024 + 2 * text_bytes + 2048 * len(chunks))


def decode(
    data: bytes,
    chunks: Sequence[Chunk] = (),
    *,
    key: str = "",
    hmac_key: bytes | None = None,
    counter: TokenCounter | None = None,
    model: str | None = None,
    max_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
) -> Decoded:
    """Rebuild the cached context; chunk metadata is re-attached from ``chunks``.

    Args:
        data: the stored bytes.
        chunks: the request's chunks; when given, the context is validated against them
            and its text is rebuilt from them (see the module docstring).
        key: the entry's key (what an HMAC signature covers).
        hmac_key: when set, only payloads signed with it are accepted.
        counter: the request's token counter: the text's token count must match.
        model: the request's target model: the payload's must match.
        max_bytes: the bound on the payload and on its decompressed body.

    Raises:
        CorruptPayload: the bytes do not decode, the schema version differs, a field has
            the wrong type, or the context does not match the request.
    """
    payload = verify(data, key, hmac_key)
    env = _load(payload, request_bound(chunks, max_bytes))
    _check(isinstance(env, dict), "envelope")
    _check(env.get("v") == SCHEMA_VERSION, "schema version")
    body = env.get("ctx")
    _check(isinstance(body, dict), "context")
    compute_s = _opt_float(env.get("compute_s"), "compute_s") or 0.0
    _check(math.isfinite(compute_s), "compute_s")
    metadata = {c.id: c.metadata for c in chunks}
    raw_chunks, raw_stages = body.get("chunks"), body.get("stages")
    _check(isinstance(raw_chunks, list) and isinstance(raw_stages, list), "chunks/stages")
    budget_tokens = body.get("budget_tokens")
    ctx = CompressedContext(
        chunks=tuple(_chunk(c, metadata) for c in raw_chunks),
        text=_str(body.get("text"), "text"),
        tokens_in=_int(body.get("tokens_in"), "tokens_in"),
        tokens_out=_int(body.get("tokens_out"), "tokens_out"),
        model=_str(body.get("model"), "model"),
        cost_before=_opt_float(body.get("cost_before"), "cost_before"),
        cost_after=_opt_float(body.get("cost_after"), "cost_after"),
        stages=tuple(_stage(s) for s in raw_stages),
        budget_tokens=None if budget_tokens is None else _int(budget_tokens, "budget_tokens"),
        tokens_approximate=_bool(body.get("tokens_approximate"), "tokens_approximate"),
        plan=_plan(body.get("plan")),
    )
    if chunks:
        ctx = _against_request(ctx, chunks, counter, model)
    return Decoded(ctx, compute_s)


def _check_spans(spans: Sequence[tuple[int, int]], length: int) -> None:
    prev_end = 0
    for start, end in spans:
        _check(prev_end <= start < end <= length, "span (outside its source or out of order)")
        prev_end = end


def _against_request(
    ctx: CompressedContext, chunks: Sequence[Chunk], counter: TokenCounter | None, model: str | None
) -> CompressedContext:
    """``ctx`` with every text rebuilt from ``chunks``; CorruptPayload if anything disagrees."""
    order = {c.id: i for i, c in enumerate(chunks)}
    _check(model is None or ctx.model == model, "model (not the request's)")
    last = -1
    for kept in ctx.chunks:
        position = order.get(kept.source_id)
        _check(position is not None, "source id (not in the request)")
        assert position is not None
        _check(position > last, "chunk order (repeated or out of request order)")
        last = position
        source = chunks[position].text
        if kept.generated is not None:  # model-written text: its source spans are checked, its text cannot be
            _check(not kept.spans and bool(kept.text), "generated chunk (has spans, or no text)")
            _check_spans(kept.generated.source_spans, len(source))
            continue
        _check_spans(kept.spans, len(source))
        _check(bool(kept.spans) and join_spans(source, kept.spans) == kept.text,
               "chunk text (does not match the request's chunk)")
    _check(CHUNK_SEPARATOR.join(c.text for c in ctx.chunks) == ctx.text, "text (not the kept chunks joined)")
    _check(ctx.tokens_out <= ctx.tokens_in, "token counts")
    if ctx.budget_tokens is not None:
        _check(ctx.tokens_out <= ctx.budget_tokens, "tokens_out (over the budget)")
    if counter is not None:
        _check((counter.count(ctx.text) if ctx.text else 0) == ctx.tokens_out, "tokens_out (recounted)")
    if ctx.plan is not None:
        _check(all(p.chunk_id in order for p in ctx.plan.chunks), "plan chunk id (not in the request)")
    return ctx
