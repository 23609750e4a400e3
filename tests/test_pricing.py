from __future__ import annotations

import pytest

from ctxcomp.errors import ConfigError, UnknownModelError
from ctxcomp.pricing import Price, cost, price_of, set_price


def test_price_from_the_maintained_database() -> None:
    price = price_of("gpt-4o-mini")
    assert price.input_per_mtok == pytest.approx(0.15)
    assert price.output_per_mtok == pytest.approx(0.60)
    assert cost("gpt-4o-mini", 1_000_000) == pytest.approx(0.15)
    assert cost("gpt-4o-mini", 2_000, 1_000) == pytest.approx(2_000 * 0.15e-6 + 1_000 * 0.6e-6)


def test_user_prices_override() -> None:
    assert cost("gpt-4o-mini", 1_000_000, prices={"gpt-4o-mini": Price(1.0)}) == pytest.approx(1.0)
    set_price("my-local-llm", Price(0.5, 1.5))
    assert cost("my-local-llm", 1_000_000, 1_000_000) == pytest.approx(2.0)


def test_unknown_model_lists_close_names() -> None:
    with pytest.raises(UnknownModelError) as info:
        price_of("gpt-4o-mnii")
    assert "gpt-4o-mini" in info.value.known
    assert "gpt-4o-mini" in str(info.value)


@pytest.mark.parametrize("bad", [-1.0, "1", True])
def test_price_validation(bad: object) -> None:
    with pytest.raises(ConfigError):
        Price(bad)  # type: ignore[arg-type]
