"""Cache keys cover everything that can change a compression, and nothing collides."""

from __future__ import annotations

import re

import pytest

from ctxcomp.cache import keys
from ctxcomp.cache.codec import SCHEMA_VERSION
from ctxcomp.pipeline import Pipeline
from ctxcomp.types import Budget, Chunk

BUDGET = Budget(max_tokens=20)


def _key(pipe: Pipeline, query: str, chunks: list[Chunk], budget: Budget = BUDGET, tenant: str = "t") -> str:
    return keys.request_key(pipe, query, chunks, budget, namespace="ns", tenant=tenant).key


@pytest.fixture
def _pipe(counting):
    return lambda **kw: Pipeline([counting(**kw)], cache=False)


def test_key_format_and_stability(chunks: list[Chunk], _pipe) -> None:
    key = _key(_pipe(), "q", chunks)
    assert re.fullmatch(rf"ctxcomp:ns:t:{SCHEMA_VERSION}:[0-9a-f]{{64}}", key)
    assert _key(_pipe(), "q", list(chunks)) == key  # a new but identical pipeline: same key


def test_every_input_that_changes_output_changes_the_key(chunks: list[Chunk], _pipe) -> None:
    base = _key(_pipe(), "q", chunks)
    edited = [Chunk(chunks[0].text + " More.", id=chunks[0].id), *chunks[1:]]
    renamed = [Chunk(chunks[0].text, id="other"), *chunks[1:]]
    rescored = [Chunk(chunks[0].text, id=chunks[0].id, score=0.9), *chunks[1:]]
    tagged = [Chunk(chunks[0].text, id=chunks[0].id, metadata={"v": 2}), *chunks[1:]]
    variants = {
        "query": _key(_pipe(), "q2", chunks),
        "chunk text": _key(_pipe(), "q", edited),
        "chunk id": _key(_pipe(), "q", renamed),
        "chunk order": _key(_pipe(), "q", chunks[::-1]),
        "chunk score": _key(_pipe(), "q", rescored),
        "chunk metadata": _key(_pipe(), "q", tagged),
        "config": _key(_pipe(mode="b"), "q", chunks),
        "model revision": _key(_pipe(revision="r2"), "q", chunks),
        "budget": _key(_pipe(), "q", chunks, Budget(max_tokens=21)),
        "ratio budget": _key(_pipe(), "q", chunks, Budget(ratio=2)),
        "tokenizer": _key(_pipe(), "q", chunks, Budget(max_tokens=20, model="gpt-4")),
        "stages": _key(Pipeline(["truncate"], cache=False), "q", chunks),
    }
    assert base not in variants.values()
    assert len(set(variants.values())) == len(variants)


def test_tenant_and_namespace_are_encoded_and_isolated(chunks: list[Chunk], _pipe) -> None:
    pipe = _pipe()
    a = _key(pipe, "q", chunks, tenant="acme")
    b = _key(pipe, "q", chunks, tenant="globex")
    assert a != b and a.split(":")[:3] == ["ctxcomp", "ns", "acme"]
    odd = keys.request_key(pipe, "q", chunks, BUDGET, namespace="a:b*", tenant="x:y?[z]#").key
    assert odd.startswith("ctxcomp:a%3Ab%2A:x%3Ay%3F%5Bz%5D%23:")
    assert odd.count(":") == 4


def test_auxiliary_keys_never_look_like_entry_keys() -> None:
    entry_prefix = keys.entry_prefix("ns", "#idx")  # a tenant literally named "#idx"
    assert not keys.index_key("ns", "c1").startswith(entry_prefix)
    assert keys.index_key("ns", "a:b").endswith("#idx:a%3Ab")
    assert keys.lru_key("ns") == "ctxcomp:ns:#lru"
    assert keys.lock_key("ctxcomp:ns:t:1:abc") == "ctxcomp:ns:#lock:t:1:abc"
    assert keys.namespace_of("ctxcomp:ns:t:1:abc") == keys.namespace_prefix("ns")
    for aux in (keys.index_key("ns", "c"), keys.lru_key("ns"), keys.semantic_key("ns", "t", "d")):
        assert aux.startswith(keys.namespace_prefix("ns"))


# -- issue 11: metadata is opaque ------------------------------------------------------------
from ctxcomp.cache.keys import metadata_digest  # noqa: E402


def test_repro_metadata_with_foreign_keys_is_hashed() -> None:
    from ctxcomp import Budget, Pipeline

    chunk = Chunk("a b c", metadata={"a": 1, 1: 2, (3, 4): None, None: [{"z": 1}]})
    ctx = Pipeline(["truncate"], Budget(max_tokens=2)).compress("q", [chunk])  # default cache
    assert ctx.text and ctx.chunks[0].metadata == chunk.metadata


def test_metadata_digest_ignores_order_and_sees_values() -> None:
    a = {"x": {"b": 1, "a": 2}, 1: [{"q": 1, "p": 2}], "s": {3, 1, 2}}
    b = {1: [{"p": 2, "q": 1}], "s": {1, 2, 3}, "x": {"a": 2, "b": 1}}
    assert metadata_digest(a) == metadata_digest(b)
    assert metadata_digest(a) != metadata_digest({**a, "x": {"b": 2, "a": 1}})
    assert metadata_digest({"t": "x" * 1000}) != metadata_digest({"t": "x" * 1001})


def test_hostile_metadata_costs_bounded_work() -> None:
    cyclic: dict = {}
    cyclic["self"] = cyclic
    deep: list = []
    node = deep
    for _ in range(100_000):
        node.append([])
        node = node[0]
    for meta in (cyclic, {"deep": deep}, {"obj": object()}, {b"bytes": bytearray(b"x")}):
        assert len(metadata_digest(meta)) == 16
