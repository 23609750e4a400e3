from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from ctxcomp.types import CompressedContext, StageReport


def make_ctx(tokens_in: int, tokens_out: int, model: str = "gpt-4o-mini", *, priced: bool = True,
             llm_tokens: tuple[int, int] = (0, 0), llm_cost: float | None = 0.0) -> CompressedContext:
    """A compression result with two stages; the second one may have called a model."""
    middle = (tokens_in + tokens_out) // 2
    stages = (StageReport("embedding", tokens_in, middle, 0.02),
              StageReport("summarize", middle, tokens_out, 0.05, llm_tokens_in=llm_tokens[0],
                          llm_tokens_out=llm_tokens[1], llm_cost=llm_cost))
    return CompressedContext((), "", tokens_in, tokens_out, model=model,
                             cost_before=tokens_in * 1e-6 if priced else None,
                             cost_after=tokens_out * 1e-6 if priced else None, stages=stages)


@pytest.fixture(name="make_ctx")
def make_ctx_fixture() -> Callable[..., Any]:
    return make_ctx
