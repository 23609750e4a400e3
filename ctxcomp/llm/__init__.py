"""One layer for every generative-model call in ctxcomp (summaries, memory, the proxy).

:class:`~ctxcomp.llm.base.BaseLLM` gives every backend the same behaviour: sync and async
calls, a concurrency limit, a timeout, retries with backoff for retryable errors, and
accounting of every call (tokens in and out, dollars, seconds). Backends, by registry
name (``ctxcomp.registry.llms``):

- ``local``: a local instruct model from :mod:`ctxcomp.models` (SmolLM2-135M-Instruct),
- ``openai``: any OpenAI-compatible endpoint (base URL, model, key from the environment),
- ``langchain``: a LangChain ``BaseChatModel``,
- ``llamaindex``: a LlamaIndex ``LLM``,
- ``callable``: a plain function ``fn(prompt) -> str``.

:func:`build_llm` turns a spec (a name, a ``{"name": ..., **settings}`` dict, an LLM, a
LangChain or LlamaIndex model, or a function) into an LLM.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ctxcomp._deps import lazy_exports
from ctxcomp.errors import ConfigError

if TYPE_CHECKING:
    from ctxcomp.llm.base import LLM, BaseLLM, Completion, Generation, Usage

__getattr__ = lazy_exports(__name__, {
    "LLM": "ctxcomp.llm.base", "BaseLLM": "ctxcomp.llm.base", "Completion": "ctxcomp.llm.base",
    "Generation": "ctxcomp.llm.base", "Usage": "ctxcomp.llm.base",
}, globals())


def build_llm(spec: Any) -> Any:
    """An LLM from a spec.

    Args:
        spec: a registry name (``"local"``, ``"openai"``), a ``{"name": ..., **settings}``
            dict, an object with ``generate`` (used as it is), a LangChain chat model, a
            LlamaIndex LLM, or a plain callable.

    Raises:
        ConfigError: a spec that is none of these, or bad settings.
        UnknownNameError: an unknown backend name.
    """
    from ctxcomp import registry
    from ctxcomp.llm.base import LLM

    if isinstance(spec, str):
        return registry.llms.create(spec)
    if isinstance(spec, Mapping):
        settings = dict(spec)
        name = settings.pop("name", None)
        if not isinstance(name, str):
            raise ConfigError(f"an LLM dict needs a 'name' string, got {spec!r}")
        return registry.llms.create(name, **settings)
    if isinstance(spec, LLM):
        return spec
    kind = type(spec).__module__.split(".")[0]
    if kind in ("langchain_core", "langchain", "langchain_community", "langchain_openai"):
        return registry.llms.create("langchain", chat_model=spec)
    if kind == "llama_index":
        return registry.llms.create("llamaindex", llm=spec)
    if callable(spec):
        return registry.llms.create("callable", fn=spec)
    raise ConfigError(f"cannot use {type(spec).__name__} as an LLM: give a name, a dict, an LLM or a callable")
