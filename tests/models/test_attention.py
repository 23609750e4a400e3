"""Query-row attention equals the rows of eager attention, without the n x n map."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from ctxcomp.errors import ConfigError  # noqa: E402
from ctxcomp.models.attention import capture, query_attention  # noqa: E402
from ctxcomp.models.causal import load_causal_lm  # noqa: E402
from ctxcomp.models.testing import build_tiny_lm  # noqa: E402

TEXT = "Paris is the capital of France. The quick brown fox jumps over the lazy dog, again and again."


@pytest.fixture(scope="module", params=["llama", "gemma3"])
def tiny(request, tmp_path_factory):
    path = build_tiny_lm(tmp_path_factory.mktemp(request.param), [TEXT], arch=request.param)
    return load_causal_lm(str(path), device="cpu", dtype="fp32")


def _eager(lm, ids):
    for layer in lm.model.model.layers:
        layer.self_attn.config._attn_implementation = "eager"
    try:
        return lm.model(ids, output_attentions=True).attentions
    finally:
        for layer in lm.model.model.layers:
            layer.self_attn.config._attn_implementation = "sdpa"


def test_rows_equal_eager_attention(tiny):
    ids = tiny.tokenizer(TEXT, return_tensors="pt")["input_ids"]
    n = ids.shape[1]
    assert n > 20  # longer than the gemma3 sliding window of 16: the window mask matters
    rows = torch.tensor([3, n - 2, n - 1])
    layers = list(range(tiny.num_layers))
    got = query_attention(tiny.model, ids, [rows], layers)[0]
    ref = _eager(tiny, ids)
    for layer in layers:
        assert got[layer].shape == (4, 3, n)
        assert torch.allclose(got[layer], ref[layer][0][:, rows].float(), atol=1e-5)
        assert torch.allclose(got[layer].sum(-1), torch.ones(4, 3), atol=1e-5)


def test_padded_batch_equals_single(tiny):
    long = tiny.tokenizer(TEXT, return_tensors="pt")["input_ids"][0]
    short = long[:15]
    ids = torch.full((2, len(long)), 0, dtype=torch.long)
    ids[0] = long
    ids[1, :15] = short
    rows = [torch.tensor([len(long) - 1]), torch.tensor([13, 14])]
    batch = query_attention(tiny.model, ids, rows, [1], lengths=[len(long), 15])
    single = query_attention(tiny.model, short[None], [rows[1]], [1])[0]
    assert batch[1][1].shape == (4, 2, 15)
    assert torch.allclose(batch[1][1], single[1], atol=1e-5)


def test_stops_at_the_deepest_layer(tiny):
    ids = tiny.tokenizer(TEXT, return_tensors="pt")["input_ids"]
    seen = []
    handle = tiny.model.model.layers[2].register_forward_pre_hook(lambda *a: seen.append(2))
    try:
        got = capture(tiny.model, ids, [0, 1])
    finally:
        handle.remove()
    assert sorted(got) == [0, 1]
    assert seen == []  # layer 2 never ran


def test_layer_out_of_range(tiny):
    ids = tiny.tokenizer(TEXT, return_tensors="pt")["input_ids"]
    with pytest.raises(ConfigError, match="layers must be in"):
        capture(tiny.model, ids, [tiny.num_layers])
