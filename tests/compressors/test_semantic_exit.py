"""semantic (word dropping by embedding impact) and exit (sentences relevant in context)."""

from __future__ import annotations

import pytest

from ctxcomp import registry
from ctxcomp.compressors.exit import ExitCompressor
from ctxcomp.compressors.semantic import SemanticCompressor, _impacts
from ctxcomp.errors import ConfigError
from ctxcomp.text import split_sentences
from ctxcomp.types import Budget, Chunk

CHUNKS = [
    Chunk("Paris\nThe Eiffel Tower is a wrought-iron lattice tower in Paris. It was designed by the company "
          "of Gustave Eiffel. It was built from 1887 to 1889 for the World's Fair.", id="a"),
    Chunk("Bananas\nBananas are berries, botanically speaking. They grow in clusters on large plants. "
          "Most bananas sold today are of the Cavendish variety.", id="b"),
]


def test_impacts_from_one_pass_equal_leave_one_out_pooling():
    rng = __import__("numpy").random.default_rng(0)
    tokens = rng.normal(size=(6, 4)).astype("float32")
    offsets = __import__("numpy").array([[0, 0], [0, 3], [4, 6], [6, 8], [9, 12], [0, 0]])
    words = [(0, 3), (4, 8), (9, 12)]
    got = _impacts(tokens, offsets, words)
    import numpy as np

    full = tokens.sum(0) / np.linalg.norm(tokens.sum(0))
    for w, rows in enumerate([[1], [2, 3], [4]]):
        rest = np.delete(tokens, rows, axis=0).sum(0)
        assert got[w] == pytest.approx(1 - rest @ full / np.linalg.norm(rest), abs=1e-5)


def test_settings_are_checked():
    with pytest.raises(ConfigError):
        SemanticCompressor(rounds=0)
    with pytest.raises(ConfigError):
        ExitCompressor(weights=(0, 0, 0))
    assert {"semantic", "exit", "summarize"} <= set(registry.compressors.known_names())


@pytest.mark.model
def test_semantic_keeps_words_verbatim_in_order(embedding_compressor):
    comp = SemanticCompressor(embedder=embedding_compressor)
    ctx = comp.compress("", CHUNKS, Budget(ratio=1.6))
    assert ctx.tokens_out <= int(ctx.tokens_in / 1.6) and ctx.tokens_out > 0.4 * ctx.tokens_in
    for kept in ctx.chunks:
        source = next(c for c in CHUNKS if c.id == kept.source_id).text
        assert [source[a:b] for a, b in kept.spans] == [p for p in kept.text.split(" ") if p] or \
            " ".join(source[a:b] for a, b in kept.spans) == kept.text
        assert list(kept.spans) == sorted(kept.spans)
    # content words outlive function words
    text = ctx.text
    assert "Eiffel" in text and "Bananas" in text


@pytest.mark.model
def test_exit_keeps_relevant_sentences_verbatim(embedding_compressor):
    comp = ExitCompressor(embedder=embedding_compressor, min_keep=1, margin=0.1)
    ctx = comp.compress("who designed the eiffel tower?", CHUNKS, Budget(max_tokens=60))
    assert ctx.tokens_out <= 60
    assert "Gustave Eiffel" in ctx.text and "Cavendish" not in ctx.text
    for kept in ctx.chunks:  # whole sentences of one document each
        source = next(c for c in CHUNKS if c.id == kept.source_id).text
        bounds = split_sentences(source)
        starts, ends = {x for x, _ in bounds}, {y for _, y in bounds}
        assert all(a in starts and b in ends for a, b in kept.spans)
    # adaptive: fewer tokens than the budget when few sentences are relevant
    filled = ExitCompressor(embedder=embedding_compressor, fill=True).compress(
        "who designed the eiffel tower?", CHUNKS, Budget(max_tokens=60))
    assert ctx.tokens_out <= filled.tokens_out
