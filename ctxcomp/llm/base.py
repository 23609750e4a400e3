"""The one layer every generative-model call in ctxcomp goes through.

A backend implements :meth:`BaseLLM._complete` (and, when it has a native async client,
:meth:`BaseLLM._acomplete`): messages in, text and the token counts it knows out.
:class:`BaseLLM` adds what every caller needs, the same for every backend:

- ``generate(prompt | messages, max_tokens=...)`` and ``agenerate`` returning a
  :class:`Generation` (text, tokens in and out, dollars, seconds);
- a concurrency limit (threads and tasks wait for a slot);
- a timeout per attempt (a sync call that hangs is abandoned in its worker thread);
- retries with exponential backoff and jitter, only for errors that can be retried
  (``is_retryable``: 429, 5xx, timeouts, dropped connections);
- accounting: every call is counted in :attr:`BaseLLM.usage` (calls, failures, retries,
  tokens, dollars, seconds). Tokens a backend does not report are counted with the
  model's tokenizer (:func:`ctxcomp.tokens.get_counter`); dollars come from
  :mod:`ctxcomp.pricing` (or the ``price`` given), None when the price is unknown.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from ctxcomp.errors import ConfigError, InputError, LLMError, LLMTimeoutError, UnknownModelError
from ctxcomp.pricing import Price, cost

log = logging.getLogger(__name__)

Message = Mapping[str, str]
Prompt = str | Sequence[Message]


@dataclass(frozen=True)
class Completion:
    """What a backend returns: the text, and the token counts it knows (None: count them)."""

    text: str
    tokens_in: int | None = None
    tokens_out: int | None = None
    model: str | None = None


@dataclass(frozen=True)
class Generation:
    """One generative call, accounted.

    Attributes:
        text: the generated text.
        tokens_in, tokens_out: prompt and completion tokens.
        cost_usd: dollars of the call (None: the model's price is unknown).
        seconds: wall time, retries and backoff included.
        model: the model that answered.
        attempts: tries it took (1: no retry).
    """

    text: str
    tokens_in: int
    tokens_out: int
    cost_usd: float | None
    seconds: float
    model: str
    attempts: int = 1


@dataclass
class Usage:
    """Running totals of an LLM's calls (read :meth:`BaseLLM.usage_snapshot` for a copy)."""

    calls: int = 0
    failures: int = 0
    retries: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float | None = 0.0
    seconds: float = 0.0


@runtime_checkable
class LLM(Protocol):
    """What ctxcomp needs of a generative model."""

    name: str
    model: str

    def generate(self, prompt: Prompt, *, max_tokens: int = 256, temperature: float = 0.0,
                 stop: Sequence[str] | None = None) -> Generation: ...

    async def agenerate(self, prompt: Prompt, *, max_tokens: int = 256, temperature: float = 0.0,
                        stop: Sequence[str] | None = None) -> Generation: ...


def to_messages(prompt: Prompt, system: str | None = None) -> list[dict[str, str]]:
    """A prompt as chat messages (a str is one user message; ``system`` goes first).

    Raises:
        InputError: an empty prompt, or a message without string ``role`` and ``content``.
    """
    if isinstance(prompt, str):
        if not prompt.strip():
            raise InputError("an LLM prompt must not be empty")
        messages = [{"role": "user", "content": prompt}]
    else:
        messages = []
        for m in prompt:
            if not isinstance(m, Mapping) or not isinstance(m.get("role"), str) or not isinstance(m.get("content"), str):
                raise InputError(f"a chat message needs string 'role' and 'content', got {m!r}")
            messages.append({"role": m["role"], "content": m["content"]})
        if not messages:
            raise InputError("an LLM prompt must have at least one message")
    if system and messages[0]["role"] != "system":
        messages.insert(0, {"role": "system", "content": system})
    return messages


def _check_positive(name: str, value: Any, allow_zero: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or (value == 0 and not allow_zero):
        raise ConfigError(f"{name} must be a number {'>=' if allow_zero else '>'} 0, got {value!r}")


class BaseLLM:
    """Concurrency, timeout, retries and accounting around a backend's ``_complete``.

    Args:
        model: the model name (prices and token counting use it).
        max_concurrency: calls in flight at once (threads and tasks together per loop).
        timeout: seconds per attempt (None: no limit).
        max_retries: extra attempts after a retryable failure.
        backoff: the first retry waits about this many seconds; each next one doubles,
            up to ``max_backoff``, with up to 25% jitter.
        price: USD per million tokens; None looks ``model`` up in :mod:`ctxcomp.pricing`.
        system: a system message put before every prompt (None: the backend's default).
    """

    name = "llm"

    def __init__(self, model: str, *, max_concurrency: int = 4, timeout: float | None = 60.0,
                 max_retries: int = 2, backoff: float = 0.5, max_backoff: float = 8.0,
                 price: Price | None = None, system: str | None = None) -> None:
        if not isinstance(model, str) or not model:
            raise ConfigError("an LLM needs a non-empty model name")
        if isinstance(max_concurrency, bool) or not isinstance(max_concurrency, int) or max_concurrency < 1:
            raise ConfigError(f"max_concurrency must be an int >= 1, got {max_concurrency!r}")
        if timeout is not None:
            _check_positive("timeout", timeout)
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ConfigError(f"max_retries must be an int >= 0, got {max_retries!r}")
        _check_positive("backoff", backoff, allow_zero=True)
        _check_positive("max_backoff", max_backoff, allow_zero=True)
        if price is not None and not isinstance(price, Price):
            raise ConfigError(f"price must be a ctxcomp.pricing.Price, got {type(price).__name__}")
        self.model = model
        self.max_concurrency = max_concurrency
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.price = price
        self.system = system
        self._slots = threading.BoundedSemaphore(max_concurrency)
        self._aslots: dict[int, asyncio.Semaphore] = {}
        self._lock = threading.Lock()
        self.usage = Usage()
        self._warned_price = False

    # -- backend hooks -------------------------------------------------------------------
    def _complete(self, messages: list[dict[str, str]], max_tokens: int, temperature: float,
                  stop: Sequence[str] | None) -> Completion:
        raise NotImplementedError

    async def _acomplete(self, messages: list[dict[str, str]], max_tokens: int, temperature: float,
                         stop: Sequence[str] | None) -> Completion:
        """Default: the sync call in a worker thread."""
        return await asyncio.to_thread(self._complete, messages, max_tokens, temperature, stop)

    def _abandons_on_timeout(self) -> bool:
        """Whether a sync attempt runs in a watched thread (True) or the backend enforces
        the timeout itself (an HTTP client's timeout: False)."""
        return True

    def config(self) -> dict[str, Any]:
        """Settings that change the output (cache keys)."""
        return {"backend": self.name, "model": self.model, "system": self.system}

    # -- accounting ----------------------------------------------------------------------
    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` for this model (used when a backend reports none)."""
        from ctxcomp.tokens import get_counter

        return get_counter(self.model).count(text) if text else 0

    def _cost(self, tokens_in: int, tokens_out: int) -> float | None:
        if self.price is not None:
            return self.price.cost(tokens_in, tokens_out)
        try:
            return cost(self.model, tokens_in, tokens_out)
        except UnknownModelError:
            if not self._warned_price:
                self._warned_price = True
                log.warning("no price known for LLM model %r; its cost is reported as None", self.model)
            return None

    def _account(self, messages: list[dict[str, str]], done: Completion, started: float, attempts: int) -> Generation:
        tokens_in = done.tokens_in if done.tokens_in is not None else self.count_tokens(
            "\n".join(m["content"] for m in messages))
        tokens_out = done.tokens_out if done.tokens_out is not None else self.count_tokens(done.text)
        dollars = self._cost(tokens_in, tokens_out)
        gen = Generation(done.text, tokens_in, tokens_out, dollars, time.perf_counter() - started,
                         done.model or self.model, attempts)
        with self._lock:
            u = self.usage
            u.calls += 1
            u.retries += attempts - 1
            u.tokens_in += tokens_in
            u.tokens_out += tokens_out
            u.cost_usd = None if u.cost_usd is None or dollars is None else u.cost_usd + dollars
            u.seconds += gen.seconds
        return gen

    def _failed(self, attempts: int, started: float) -> None:
        with self._lock:
            self.usage.calls += 1
            self.usage.failures += 1
            self.usage.retries += attempts - 1
            self.usage.seconds += time.perf_counter() - started

    def usage_snapshot(self) -> Usage:
        """A copy of the running totals."""
        with self._lock:
            return Usage(**vars(self.usage))

    def _delay(self, attempt: int) -> float:
        base = min(self.max_backoff, self.backoff * (2 ** (attempt - 1)))
        return base * (1 + 0.25 * random.random())

    @staticmethod
    def _check_call(max_tokens: int, temperature: float) -> None:
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
            raise InputError(f"max_tokens must be an int >= 1, got {max_tokens!r}")
        _check_positive("temperature", temperature, allow_zero=True)

    # -- sync --------------------------------------------------------------------------
    def _attempt(self, messages: list[dict[str, str]], max_tokens: int, temperature: float,
                 stop: Sequence[str] | None) -> Completion:
        return self._watched(lambda: self._complete(messages, max_tokens, temperature, stop))  # type: ignore[no-any-return]

    def _watched(self, call: Callable[[], Any]) -> Any:
        """``call()`` under the timeout: run in a daemon thread that is abandoned (and an
        LLMTimeoutError raised) when it has not returned in time."""
        if self.timeout is None or not self._abandons_on_timeout():
            return call()
        box: dict[str, Any] = {}

        def work() -> None:
            try:
                box["done"] = call()
            except BaseException as exc:  # handed to the caller's thread
                box["error"] = exc

        worker = threading.Thread(target=work, name=f"ctxcomp-llm-{self.name}", daemon=True)
        worker.start()
        worker.join(self.timeout)
        if worker.is_alive():
            raise LLMTimeoutError(f"{self.name} LLM {self.model!r}: no answer within {self.timeout} s")
        if "error" in box:
            raise box["error"]
        return box["done"]

    def generate(self, prompt: Prompt, *, max_tokens: int = 256, temperature: float = 0.0,
                 stop: Sequence[str] | None = None) -> Generation:
        """Generate a completion of ``prompt`` (a str or chat messages).

        Raises:
            InputError: an empty prompt or bad arguments.
            LLMError: the call failed (after the retries, for retryable errors).
        """
        self._check_call(max_tokens, temperature)
        messages = to_messages(prompt, self.system)
        started = time.perf_counter()
        attempts = 0
        with self._slots:
            while True:
                attempts += 1
                try:
                    done = self._attempt(messages, max_tokens, temperature, stop)
                    return self._account(messages, done, started, attempts)
                except Exception as exc:
                    if not self._retry(exc, attempts, started):
                        raise self._wrap(exc) from exc
                    time.sleep(self._delay(attempts))

    def _retry(self, exc: Exception, attempts: int, started: float) -> bool:
        retryable = bool(getattr(exc, "is_retryable", False))
        if retryable and attempts <= self.max_retries:
            log.info("%s LLM %r: attempt %d failed (%s); retrying", self.name, self.model, attempts, exc)
            return True
        self._failed(attempts, started)
        return False

    def _wrap(self, exc: Exception) -> Exception:
        if isinstance(exc, (LLMError, InputError, ConfigError)):
            return exc
        return LLMError(f"{self.name} LLM {self.model!r} failed: {type(exc).__name__}: {exc}")

    # -- async -------------------------------------------------------------------------
    def _async_slots(self) -> asyncio.Semaphore:
        loop = id(asyncio.get_running_loop())
        with self._lock:
            sem = self._aslots.get(loop)
            if sem is None:
                if len(self._aslots) > 64:
                    self._aslots.clear()
                sem = self._aslots[loop] = asyncio.Semaphore(self.max_concurrency)
            return sem

    async def agenerate(self, prompt: Prompt, *, max_tokens: int = 256, temperature: float = 0.0,
                        stop: Sequence[str] | None = None) -> Generation:
        """Async form of :meth:`generate` (same limits, retries and accounting)."""
        self._check_call(max_tokens, temperature)
        messages = to_messages(prompt, self.system)
        started = time.perf_counter()
        attempts = 0
        async with self._async_slots():
            while True:
                attempts += 1
                try:
                    call = self._acomplete(messages, max_tokens, temperature, stop)
                    if self.timeout is not None:
                        try:
                            done = await asyncio.wait_for(call, self.timeout)
                        except asyncio.TimeoutError:
                            raise LLMTimeoutError(
                                f"{self.name} LLM {self.model!r}: no answer within {self.timeout} s") from None
                    else:
                        done = await call
                    return self._account(messages, done, started, attempts)
                except Exception as exc:
                    if not self._retry(exc, attempts, started):
                        raise self._wrap(exc) from exc
                    await asyncio.sleep(self._delay(attempts))

    def generate_many(self, prompts: Sequence[Prompt], *, max_tokens: int = 256, temperature: float = 0.0,
                      stop: Sequence[str] | None = None) -> list[Generation | LLMError]:
        """Many prompts, up to ``max_concurrency`` at once; a failed one gives its error in
        its place (the others still run). Backends that batch (a local model) override it."""
        from concurrent.futures import ThreadPoolExecutor

        def one(p: Prompt) -> Generation | LLMError:
            try:
                return self.generate(p, max_tokens=max_tokens, temperature=temperature, stop=stop)
            except LLMError as exc:
                return exc

        if len(prompts) <= 1:
            return [one(p) for p in prompts]
        with ThreadPoolExecutor(max_workers=min(self.max_concurrency, len(prompts))) as pool:
            return list(pool.map(one, prompts))
