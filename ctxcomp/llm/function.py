"""A plain function as an LLM: ``fn(prompt) -> str`` (sync or ``async def``).

The function gets the prompt as one string (chat messages are joined as ``role: content``
lines, unless ``messages=True``: then it gets the message list). Token counts come from
the model's tokenizer (``model`` names it; the default counts with o200k and prices at 0).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Sequence
from typing import Any

from ctxcomp.errors import ConfigError, LLMError
from ctxcomp.llm.base import BaseLLM, Completion
from ctxcomp.pricing import Price


def flatten(messages: list[dict[str, str]]) -> str:
    """Chat messages as one prompt string (a lone user message is passed as it is)."""
    if len(messages) == 1 and messages[0]["role"] == "user":
        return messages[0]["content"]
    return "\n\n".join(f"{m['role']}: {m['content']}" for m in messages)


class CallableLLM(BaseLLM):
    """Wrap ``fn``; it may return a str or a :class:`~ctxcomp.llm.base.Completion`.

    Args:
        fn: ``fn(prompt: str) -> str`` (or ``async def``); with ``messages=True``,
            ``fn(messages: list[dict]) -> str``.
        model: the name used for token counting and prices (default ``callable``, priced
            at 0 unless ``price`` is given).
        messages: pass chat messages instead of one string.
        **options: :class:`~ctxcomp.llm.base.BaseLLM` settings (timeout, retries, ...).
    """

    name = "callable"

    def __init__(self, fn: Callable[..., Any], model: str = "callable", *, messages: bool = False,
                 **options: Any) -> None:
        if not callable(fn):
            raise ConfigError(f"CallableLLM needs a callable, got {type(fn).__name__}")
        if model == "callable" and options.get("price") is None:
            options["price"] = Price(0.0, 0.0)
        super().__init__(model, **options)
        self.fn = fn
        self.messages = messages
        self._async = inspect.iscoroutinefunction(fn)

    def config(self) -> dict[str, Any]:
        return {**super().config(), "fn": getattr(self.fn, "__qualname__", repr(self.fn))}

    def count_tokens(self, text: str) -> int:
        if self.model == "callable":
            from ctxcomp.tokens import get_counter

            return get_counter("gpt-4o-mini").count(text) if text else 0
        return super().count_tokens(text)

    def _arg(self, messages: list[dict[str, str]]) -> Any:
        return messages if self.messages else flatten(messages)

    @staticmethod
    def _result(value: Any) -> Completion:
        if isinstance(value, Completion):
            return value
        if not isinstance(value, str):
            raise LLMError(f"the LLM callable returned {type(value).__name__}, not a str")
        return Completion(value)

    def _complete(self, messages: list[dict[str, str]], max_tokens: int, temperature: float,
                  stop: Sequence[str] | None) -> Completion:
        if self._async:
            return self._result(asyncio.run(self.fn(self._arg(messages))))
        return self._result(self.fn(self._arg(messages)))

    async def _acomplete(self, messages: list[dict[str, str]], max_tokens: int, temperature: float,
                         stop: Sequence[str] | None) -> Completion:
        if self._async:
            return self._result(await self.fn(self._arg(messages)))
        return await super()._acomplete(messages, max_tokens, temperature, stop)
