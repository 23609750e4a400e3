"""Payload encoding: exact round trips, zlib above the threshold, corrupt input is an error."""

from __future__ import annotations

import dataclasses
import json
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ctxcomp.cache.codec import SCHEMA_VERSION, CorruptPayload, decode, encode
from ctxcomp.types import Chunk, ChunkPlan, CompressedChunk, CompressedContext, Plan, StageReport


def _ctx(text: str = "alpha beta", score: float | None = 0.25) -> CompressedContext:
    chunk = CompressedChunk(text, "doc-1", ((0, 5), (6, len(text))), 7, 3, score, {"ignored": True})
    return CompressedContext(
        chunks=(chunk,), text=text, tokens_in=7, tokens_out=3, model="gpt-4o-mini",
        cost_before=1.05e-06, cost_after=None, stages=(StageReport("embedding", 7, 3, 0.125),),
        budget_tokens=4, tokens_approximate=False,
    )


def test_round_trip_is_exact_and_reattaches_metadata() -> None:
    ctx = _ctx()
    source = Chunk("alpha beta", id="doc-1", metadata={"url": "https://x"})
    got = decode(encode(ctx, 1.5), [source])
    assert got.compute_s == 1.5
    assert got.context == ctx  # metadata is compare=False: checked below
    assert got.context.chunks[0].spans == ((0, 5), (6, 10))
    assert isinstance(got.context.chunks[0].spans[0], tuple)
    assert got.context.chunks[0].metadata == {"url": "https://x"}


def test_plan_and_stage_costs_round_trip() -> None:
    plan = Plan("knapsack", (ChunkPlan("doc-1", True, 3, 2.33, "rank 1 of 2", 7, 0.8, 3),
                             ChunkPlan("doc-2", False, None, None, "redundant with doc-1", 5, -0.1, None)),
                (6, 4), tier="mid", reason="greedy")
    stage = StageReport("summarize", 7, 3, 0.5, limit=4, llm_tokens_in=40, llm_tokens_out=9, llm_cost=None,
                        note="fallback: extractive")
    ctx = dataclasses.replace(_ctx(), plan=plan, stages=(stage,))
    got = decode(encode(ctx, 0.2), []).context
    assert got.plan == plan
    assert got.stages == (stage,)


def test_small_payload_is_plain_json_and_large_is_zlib() -> None:
    small = encode(_ctx(), 0.1)
    assert small[:1] == b"j"
    assert json.loads(small[1:])["v"] == SCHEMA_VERSION
    big_text = "word " * 2000
    big = encode(_ctx(big_text), 0.1)
    assert big[:1] == b"z"
    assert json.loads(zlib.decompress(big[1:]))["ctx"]["text"] == big_text
    assert len(big) < len(big_text) / 5
    assert decode(big).context.text == big_text


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"x{}",
        b"j{not json",
        b"z" + b"\x00\x01garbage",
        b"j[]",
        b"j" + json.dumps({"v": SCHEMA_VERSION + 1, "ctx": {}}).encode(),
        b"\x80\x04\x95pickle",
    ],
)
def test_undecodable_payloads_raise_corrupt(payload: bytes) -> None:
    with pytest.raises(CorruptPayload):
        decode(payload)


def _mutated(path: list, value: object) -> bytes:
    body = json.loads(encode(_ctx(), 0.1)[1:])
    node = body
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    return b"j" + json.dumps(body).encode()


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (["ctx", "tokens_in"], "7"),
        (["ctx", "tokens_out"], -1),
        (["ctx", "text"], None),
        (["ctx", "chunks", 0, 2], [[5, 0]]),
        (["ctx", "chunks", 0, 2], [[0, 1, 2]]),
        (["ctx", "chunks", 0], ["only", "three", "fields"]),
        (["ctx", "stages", 0, 1], True),
        (["ctx", "tokens_approximate"], "no"),
        (["compute_s"], "fast"),
    ],
)
def test_payloads_with_wrong_field_types_raise_corrupt(path: list, value: object) -> None:
    with pytest.raises(CorruptPayload):
        decode(_mutated(path, value))


@settings(max_examples=50, deadline=None)
@given(
    text=st.text(max_size=300),
    score=st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False)),
    compute_s=st.floats(min_value=0, max_value=1e4),
)
def test_any_context_round_trips(text: str, score: float | None, compute_s: float) -> None:
    chunk = CompressedChunk(text, "s", ((0, len(text)),), 10, 5, score)
    ctx = CompressedContext((chunk,), text, 10, 5, cost_before=0.5, cost_after=0.25,
                            stages=(StageReport("x", 10, 5, 0.1),), budget_tokens=5)
    got = decode(encode(ctx, compute_s, compress_threshold=64))
    assert got.context == ctx
    assert got.compute_s == compute_s
