"""Any OpenAI-compatible ``/chat/completions`` endpoint over HTTP (httpx).

The base URL, model and key come from the arguments or the environment:
``CTXCOMP_LLM_BASE_URL`` (else ``OPENAI_BASE_URL``, else ``https://api.openai.com/v1``),
``CTXCOMP_LLM_MODEL`` (else ``gpt-4o-mini``) and ``CTXCOMP_LLM_API_KEY`` (else
``OPENAI_API_KEY``; none is fine for a local server). 429, 5xx, timeouts and dropped
connections are retryable; other 4xx are not. Token counts come from the response's
``usage`` (counted with the model's tokenizer when it has none).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Any

from ctxcomp._deps import require
from ctxcomp.errors import ConfigError, LLMError, LLMRetryableError, LLMTimeoutError
from ctxcomp.llm.base import BaseLLM, Completion

DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_MODEL = "gpt-4o-mini"


def _env(*names: str) -> str | None:
    for name in names:
        value = os.environ.get(name)
        if value:
            return value
    return None


class OpenAICompatLLM(BaseLLM):
    """Chat completions from an OpenAI-compatible server.

    Args:
        model: the model name (default: ``$CTXCOMP_LLM_MODEL`` or ``gpt-4o-mini``).
        base_url: the API root ending before ``/chat/completions``.
        api_key: sent as ``Authorization: Bearer``; never logged or put in ``config()``.
        headers: extra HTTP headers.
        **options: :class:`~ctxcomp.llm.base.BaseLLM` settings (timeout, retries, ...).
    """

    name = "openai"

    def __init__(self, model: str | None = None, *, base_url: str | None = None, api_key: str | None = None,
                 headers: dict[str, str] | None = None, **options: Any) -> None:
        super().__init__(model or _env("CTXCOMP_LLM_MODEL") or DEFAULT_MODEL, **options)
        url = base_url or _env("CTXCOMP_LLM_BASE_URL", "OPENAI_BASE_URL") or DEFAULT_BASE_URL
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"base_url must be an http(s) URL, got {url!r}")
        self.base_url = url.rstrip("/")
        self._key = api_key or _env("CTXCOMP_LLM_API_KEY", "OPENAI_API_KEY")
        self._headers = {"Content-Type": "application/json", **(headers or {})}
        if self._key:
            self._headers["Authorization"] = f"Bearer {self._key}"
        self._httpx = require("httpx", "llm", "calling an OpenAI-compatible endpoint")
        self._client: Any = None
        self._client_lock = threading.Lock()

    def config(self) -> dict[str, Any]:
        return {**super().config(), "base_url": self.base_url}

    def _abandons_on_timeout(self) -> bool:
        return False  # httpx enforces the timeout and closes the connection

    def _timeout(self) -> Any:
        return self._httpx.Timeout(self.timeout) if self.timeout is not None else self._httpx.Timeout(None)

    def _sync_client(self) -> Any:
        with self._client_lock:
            if self._client is None:
                self._client = self._httpx.Client(timeout=self._timeout(), headers=self._headers)
            return self._client

    def close(self) -> None:
        """Close the HTTP connection pool."""
        with self._client_lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def _body(self, messages: list[dict[str, str]], max_tokens: int, temperature: float,
              stop: Sequence[str] | None) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model, "messages": messages, "max_tokens": max_tokens,
                                "temperature": temperature}
        if stop:
            body["stop"] = list(stop)
        return body

    def _parse(self, response: Any) -> Completion:
        status = response.status_code
        if status == 429 or status >= 500:
            raise LLMRetryableError(f"{self.base_url}: HTTP {status}: {response.text[:300]}", status=status)
        if status >= 400:
            raise LLMError(f"{self.base_url}: HTTP {status}: {response.text[:300]}", status=status)
        try:
            data = response.json()
            choice = data["choices"][0]
            text = choice["message"]["content"] or ""
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise LLMError(f"{self.base_url}: not a chat completion: {response.text[:300]}") from exc
        if not isinstance(text, str):
            raise LLMError(f"{self.base_url}: message content is not a string")
        usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
        t_in, t_out = usage.get("prompt_tokens"), usage.get("completion_tokens")
        return Completion(text, t_in if isinstance(t_in, int) else None, t_out if isinstance(t_out, int) else None,
                          data.get("model") if isinstance(data.get("model"), str) else None)

    def _transport_error(self, exc: Exception) -> Exception:
        httpx = self._httpx
        if isinstance(exc, httpx.TimeoutException):
            return LLMTimeoutError(f"{self.base_url}: no answer within {self.timeout} s")
        if isinstance(exc, httpx.TransportError):
            return LLMRetryableError(f"{self.base_url}: {type(exc).__name__}: {exc}")
        return exc

    def _complete(self, messages: list[dict[str, str]], max_tokens: int, temperature: float,
                  stop: Sequence[str] | None) -> Completion:
        try:
            response = self._sync_client().post(f"{self.base_url}/chat/completions",
                                                json=self._body(messages, max_tokens, temperature, stop))
        except Exception as exc:
            raise self._transport_error(exc) from exc
        return self._parse(response)

    async def _acomplete(self, messages: list[dict[str, str]], max_tokens: int, temperature: float,
                         stop: Sequence[str] | None) -> Completion:
        # One client per call: an AsyncClient is bound to the loop it was made in.
        try:
            async with self._httpx.AsyncClient(timeout=self._timeout(), headers=self._headers) as client:
                response = await client.post(f"{self.base_url}/chat/completions",
                                             json=self._body(messages, max_tokens, temperature, stop))
        except Exception as exc:
            raise self._transport_error(exc) from exc
        return self._parse(response)
