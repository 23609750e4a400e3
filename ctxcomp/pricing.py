"""Cost of prompt (and completion) tokens per model.

Prices come from ``genai-prices`` (pydantic's maintained, offline price database), not a
hand-written table. A user-supplied :class:`Price` overrides it, for negotiated rates or
models it does not list. An unknown model raises :class:`UnknownModelError` with the
closest known names.
"""

from __future__ import annotations

import difflib
import functools
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass

from ctxcomp.errors import ConfigError, UnknownModelError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Price:
    """USD per one million tokens."""

    input_per_mtok: float
    output_per_mtok: float = 0.0

    def __post_init__(self) -> None:
        for name in ("input_per_mtok", "output_per_mtok"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ConfigError(f"{name} must be a number >= 0, got {value!r}")

    def cost(self, input_tokens: int, output_tokens: int = 0) -> float:
        return (input_tokens * self.input_per_mtok + output_tokens * self.output_per_mtok) / 1e6


_overrides: dict[str, Price] = {}
_overrides_lock = threading.Lock()


def set_price(model: str, price: Price) -> None:
    """Override (or add) the price of ``model`` for this process."""
    with _overrides_lock:
        _overrides[model] = price
    price_of.cache_clear()


def _known_model_ids() -> list[str]:
    from genai_prices import data_snapshot

    snapshot = data_snapshot.get_snapshot()
    return sorted({m.id for p in snapshot.providers for m in p.models})


@functools.lru_cache(maxsize=256)
def price_of(model: str) -> Price:
    """The per-million-token price of ``model``.

    Raises:
        UnknownModelError: neither an override nor genai-prices knows ``model``.
    """
    with _overrides_lock:
        if model in _overrides:
            return _overrides[model]
    from genai_prices import Usage, calc_price

    try:
        calc = calc_price(Usage(input_tokens=1_000_000, output_tokens=1_000_000), model_ref=model)
    except LookupError:
        known = _known_model_ids()
        close = difflib.get_close_matches(model, known, n=8, cutoff=0.5)
        raise UnknownModelError(
            model,
            close,
            hint="(closest names shown) pass a known model or set_price()/--price-in for it",
        ) from None
    return Price(float(calc.input_price), float(calc.output_price))


def cost(
    model: str,
    input_tokens: int,
    output_tokens: int = 0,
    prices: Mapping[str, Price] | None = None,
) -> float:
    """USD for ``input_tokens`` prompt and ``output_tokens`` completion tokens of ``model``.

    Args:
        prices: per-call overrides, checked before the process-wide ones.
    """
    price = prices[model] if prices and model in prices else price_of(model)
    return price.cost(input_tokens, output_tokens)


_unpriced: set[str] = set()


def prompt_costs(model: str, tokens_in: int, tokens_out: int) -> tuple[float | None, float | None]:
    """USD of sending tokens_in and tokens_out prompt tokens; (None, None) with no known price."""
    try:
        return cost(model, tokens_in), cost(model, tokens_out)
    except UnknownModelError:
        if model not in _unpriced:
            _unpriced.add(model)
            log.warning("no price known for model %r; costs are reported as None", model)
        return None, None
