import pytest

from ctxcomp.bench.methods import (
    NoCompression,
    RandomSentences,
    build_method,
    known_methods,
    parse_spec,
    split_specs,
)
from ctxcomp.errors import ConfigError, UnknownNameError
from ctxcomp.tokens import get_counter
from ctxcomp.types import Budget, Chunk

CHUNKS = [
    Chunk("Alpha one is here. Beta two follows it. Gamma three ends the first.", id="a"),
    Chunk("Delta four starts again. Epsilon five is short. Zeta six closes all.", id="b"),
]


def test_parse_spec_reads_json_values():
    assert parse_spec("gemfilter:layer=13,unit=sentence,w=0.5,on=true,x=null") == (
        "gemfilter", {"layer": 13, "unit": "sentence", "w": 0.5, "on": True, "x": None})
    assert parse_spec(" embedding ") == ("embedding", {})
    with pytest.raises(ConfigError):
        parse_spec(":a=1")
    with pytest.raises(ConfigError):
        parse_spec("gemfilter:layer")


def test_split_specs_keeps_settings_together():
    assert split_specs("none,gemfilter:layer=13,unit=sentence,embedding") == [
        "none", "gemfilter:layer=13,unit=sentence", "embedding"]
    with pytest.raises(ConfigError):
        split_specs(" , ")


def test_none_keeps_everything_even_over_budget():
    ctx = NoCompression().compress("q", CHUNKS, Budget(max_tokens=3))
    assert [c.source_id for c in ctx.chunks] == ["a", "b"]
    assert ctx.tokens_out == ctx.tokens_in


def test_random_is_seeded_within_budget_and_in_order():
    budget = Budget(max_tokens=12)
    first = RandomSentences(seed=1).compress("q", CHUNKS, budget)
    assert first.text == RandomSentences(seed=1).compress("q", CHUNKS, budget).text
    assert get_counter("gpt-4o-mini").count(first.text) <= 12
    others = {RandomSentences(seed=s).compress("q", CHUNKS, budget).text for s in range(8)}
    assert len(others) > 1  # the seed matters
    for chunk in first.chunks:  # spans are sentences of the source, in order
        source = next(c for c in CHUNKS if c.id == chunk.source_id)
        assert list(chunk.spans) == sorted(chunk.spans)
        assert all(source.text[s:e].endswith(".") for s, e in chunk.spans)


def test_build_method_covers_registry_and_settings():
    method = build_method("truncate")
    out = method.run("", CHUNKS, Budget(max_tokens=8))
    assert out.chunks is not None and out.chunks[0].source_id == "a"
    assert build_method("random", {"seed": 5}).describe()["config"] == {"seed": 5}
    assert build_method("random:seed=2", {"seed": 5}).describe()["config"] == {"seed": 2}
    with pytest.raises(ConfigError):
        build_method("random:colour=red")
    with pytest.raises(UnknownNameError, match="llmlingua"):
        build_method("no-such-method")


def test_known_methods_lists_peers_and_registry():
    names = known_methods()
    for name in ("none", "random", "truncate", "embedding", "llmlingua", "longllmlingua",
                 "langchain-embeddings-filter", "llamaindex-sentence-optimizer"):
        assert name in names
