from __future__ import annotations

import dataclasses
import json
import math

import pytest

from ctxcomp.errors import BudgetError, InputError
from ctxcomp.types import (
    Budget,
    Chunk,
    CompressedChunk,
    CompressedContext,
    StageReport,
    content_id,
    join_spans,
)


def test_chunk_gets_a_stable_content_id() -> None:
    a, b = Chunk("same text"), Chunk("same text")
    assert a.id == b.id and a.id.startswith("c") and len(a.id) == 13
    assert Chunk("other").id != a.id
    assert Chunk("x", id="doc-7").id == "doc-7"
    assert Chunk("x", id=7).id == "7"  # type: ignore[arg-type]


def test_chunk_rejects_non_text() -> None:
    with pytest.raises(InputError):
        Chunk(b"bytes")  # type: ignore[arg-type]


def test_types_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        Chunk("x").text = "y"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        Budget(max_tokens=5).max_tokens = 6  # type: ignore[misc]


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"max_tokens": 10, "ratio": 2.0},
        {"max_tokens": 0},
        {"max_tokens": -3},
        {"max_tokens": True},
        {"max_tokens": 2.5},
        {"ratio": 0.5},
        {"ratio": math.nan},
        {"ratio": math.inf},
        {"max_tokens": 5, "model": ""},
    ],
)
def test_budget_rejects_bad_values(kwargs: dict) -> None:
    with pytest.raises(BudgetError):
        Budget(**kwargs)


def test_budget_limit() -> None:
    assert Budget(max_tokens=300).limit(10_000) == 300
    assert Budget(ratio=4).limit(2_000) == 500
    assert Budget(ratio=10).limit(5) == 1  # never zero


def test_join_spans_runs_adjacent_spans_and_separates_gaps() -> None:
    src = "abcdefghij"
    assert join_spans(src, [(0, 2), (2, 4), (6, 8)]) == "abcd gh"
    assert join_spans(src, []) == ""


def test_compressed_context_numbers_and_json() -> None:
    chunk = CompressedChunk("ab", "c1", ((0, 2),), tokens_in=10, tokens_out=2, score=0.5)
    ctx = CompressedContext(
        chunks=(chunk,), text="ab", tokens_in=10, tokens_out=2, cost_before=1.0, cost_after=0.2,
        stages=(StageReport("s", 10, 2, 0.01),), budget_tokens=2,
    )
    assert ctx.ratio == 5.0 and ctx.tokens_saved == 8
    assert ctx.cost_saved == pytest.approx(0.8)
    data = json.loads(json.dumps(ctx.to_dict()))
    assert data["chunks"][0]["spans"] == [[0, 2]] and data["ratio"] == 5.0
    empty = CompressedContext(chunks=(), text="", tokens_in=10, tokens_out=0)
    assert empty.ratio == math.inf and empty.to_dict()["ratio"] is None
    assert empty.cost_saved is None


# -- issue 11: text policy and validation gaps ----------------------------------------------
def test_repro_lone_surrogates_become_replacement_characters_at_the_same_offsets() -> None:
    chunk = Chunk("a\ud800b\udfffc")
    assert chunk.text == "a\ufffdb\ufffdc" and len(chunk.text) == 5
    chunk.text.encode("utf-8")  # encodable: no UnicodeEncodeError anywhere downstream
    assert Chunk("ok").text == "ok"


def test_nul_and_control_characters_are_kept() -> None:
    assert Chunk("a\x00b\x07c").text == "a\x00b\x07c"


def test_repro_falsy_ids_are_kept() -> None:
    assert Chunk("a", id=0).id == "0"
    assert Chunk("a", id="").id == content_id("a") == Chunk("a", id=None).id  # type: ignore[arg-type]
    with pytest.raises(InputError, match="id must be a str or an int"):
        Chunk("a", id=True)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="id must be a str or an int"):
        Chunk("a", id=1.5)  # type: ignore[arg-type]


def test_repro_metadata_none_is_empty_and_other_types_are_refused() -> None:
    assert Chunk("a", metadata=None).metadata == {}  # type: ignore[arg-type]
    with pytest.raises(InputError, match="metadata must be a mapping"):
        Chunk("a", metadata=[1, 2])  # type: ignore[arg-type]


@pytest.mark.parametrize("score", [float("nan"), float("inf"), "0.5", True])
def test_scores_must_be_finite_numbers(score: object) -> None:
    with pytest.raises(InputError, match="score"):
        Chunk("a", score=score)  # type: ignore[arg-type]
