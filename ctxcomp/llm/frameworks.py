"""A LangChain chat model or a LlamaIndex LLM as a ctxcomp LLM.

Both take the framework object as it is (any provider the framework supports). Token
counts come from what the framework reports (LangChain's ``usage_metadata``, the raw
``usage`` of a LlamaIndex response) and are counted with ``model``'s tokenizer otherwise;
``model`` names the priced model (default: the framework object's own model name).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ctxcomp._deps import require
from ctxcomp.errors import ConfigError, LLMError
from ctxcomp.llm.base import BaseLLM, Completion


def _model_name(obj: Any, default: str) -> str:
    for attr in ("model_name", "model", "model_id"):
        value = getattr(obj, attr, None)
        if isinstance(value, str) and value:
            return value
    return default


def _retryable(exc: Exception) -> Exception:
    """A provider error as an LLMError, retryable when it says 429/5xx/timeout."""
    status = getattr(exc, "status_code", None) or getattr(getattr(exc, "response", None), "status_code", None)
    from ctxcomp.errors import LLMRetryableError

    if (isinstance(status, int) and (status == 429 or status >= 500)) or isinstance(exc, TimeoutError):
        return LLMRetryableError(f"{type(exc).__name__}: {exc}", status=status if isinstance(status, int) else None)
    return exc


class LangChainLLM(BaseLLM):
    """A LangChain ``BaseChatModel`` (``invoke`` / ``ainvoke`` with chat messages)."""

    name = "langchain"

    def __init__(self, chat_model: Any, model: str | None = None, **options: Any) -> None:
        lc = require("langchain_core.language_models", "langchain", "using a LangChain chat model")
        if not isinstance(chat_model, lc.BaseChatModel):
            raise ConfigError(f"LangChainLLM needs a langchain BaseChatModel, got {type(chat_model).__name__}")
        super().__init__(model or _model_name(chat_model, type(chat_model).__name__), **options)
        self.chat_model = chat_model

    @staticmethod
    def _messages(messages: list[dict[str, str]]) -> list[Any]:
        from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

        kinds = {"system": SystemMessage, "user": HumanMessage, "assistant": AIMessage}
        return [kinds.get(m["role"], HumanMessage)(content=m["content"]) for m in messages]

    @staticmethod
    def _result(message: Any) -> Completion:
        content = getattr(message, "content", message)
        if isinstance(content, list):  # content blocks
            content = "".join(b.get("text", "") if isinstance(b, dict) else str(b) for b in content)
        if not isinstance(content, str):
            raise LLMError(f"the chat model returned {type(content).__name__}, not text")
        usage = getattr(message, "usage_metadata", None) or {}
        t_in, t_out = usage.get("input_tokens"), usage.get("output_tokens")
        return Completion(content, t_in if isinstance(t_in, int) else None, t_out if isinstance(t_out, int) else None)

    def _kwargs(self, max_tokens: int, stop: Sequence[str] | None) -> dict[str, Any]:
        return {"stop": list(stop)} if stop else {}

    def _complete(self, messages: list[dict[str, str]], max_tokens: int, temperature: float,
                  stop: Sequence[str] | None) -> Completion:
        try:
            return self._result(self.chat_model.invoke(self._messages(messages), **self._kwargs(max_tokens, stop)))
        except Exception as exc:
            raise _retryable(exc) from exc

    async def _acomplete(self, messages: list[dict[str, str]], max_tokens: int, temperature: float,
                         stop: Sequence[str] | None) -> Completion:
        try:
            return self._result(await self.chat_model.ainvoke(self._messages(messages),
                                                              **self._kwargs(max_tokens, stop)))
        except Exception as exc:
            raise _retryable(exc) from exc


class LlamaIndexLLM(BaseLLM):
    """A LlamaIndex ``LLM`` (``chat`` / ``achat`` with ``ChatMessage`` lists)."""

    name = "llamaindex"

    def __init__(self, llm: Any, model: str | None = None, **options: Any) -> None:
        li = require("llama_index.core.llms", "llamaindex", "using a LlamaIndex LLM")
        if not isinstance(llm, li.LLM):
            raise ConfigError(f"LlamaIndexLLM needs a llama_index LLM, got {type(llm).__name__}")
        meta = getattr(llm, "metadata", None)
        super().__init__(model or _model_name(meta, "") or _model_name(llm, type(llm).__name__), **options)
        self.llm = llm

    @staticmethod
    def _messages(messages: list[dict[str, str]]) -> list[Any]:
        from llama_index.core.llms import ChatMessage

        return [ChatMessage(role=m["role"], content=m["content"]) for m in messages]

    @staticmethod
    def _result(response: Any) -> Completion:
        text = response.message.content
        if not isinstance(text, str):
            raise LLMError("the LlamaIndex LLM returned no text")
        raw = getattr(response, "raw", None)
        found = raw.get("usage") if isinstance(raw, dict) else None
        usage: dict[str, Any] = found if isinstance(found, dict) else {}
        t_in = usage.get("prompt_tokens", usage.get("input_tokens"))
        t_out = usage.get("completion_tokens", usage.get("output_tokens"))
        return Completion(text, t_in if isinstance(t_in, int) else None, t_out if isinstance(t_out, int) else None)

    def _complete(self, messages: list[dict[str, str]], max_tokens: int, temperature: float,
                  stop: Sequence[str] | None) -> Completion:
        try:
            return self._result(self.llm.chat(self._messages(messages)))
        except Exception as exc:
            raise _retryable(exc) from exc

    async def _acomplete(self, messages: list[dict[str, str]], max_tokens: int, temperature: float,
                         stop: Sequence[str] | None) -> Completion:
        try:
            return self._result(await self.llm.achat(self._messages(messages)))
        except Exception as exc:
            raise _retryable(exc) from exc
