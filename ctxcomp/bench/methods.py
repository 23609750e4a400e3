"""The methods a benchmark compares, all behind one small interface.

A method spec is a name with optional settings: ``embedding``,
``gemfilter:layer=13,unit=sentence``. Names:

- ``none``: no compression (the reference; it always exceeds the budget);
- ``random``: random whole sentences up to the budget (seeded; ``random:seed=7``);
- ``langchain-embeddings-filter``, ``llamaindex-sentence-optimizer``: the frameworks'
  own classes on the same MiniLM (:mod:`ctxcomp.bench.peers`);
- ``llmlingua``, ``longllmlingua``: the ``llmlingua`` package on SmolLM2-135M
  (:mod:`ctxcomp.bench.lingua`);
- ``planned``, ``pipeline:spec=PATH``, ``topk``, ``knapsack``, ``knapsack-dynamic``:
  planned pipelines (:mod:`ctxcomp.bench.planned`);
- any other name: a ctxcomp compressor from the registry (``truncate``, ``embedding``,
  ``gemfilter`` ...), built with the settings.

Setting values are parsed as JSON when they can be (``13``, ``0.5``, ``true``, ``null``)
and kept as strings otherwise.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ctxcomp.assembly import Assembly, Quotas, Unit, assemble, select_units
from ctxcomp.bench.planned import PIPELINE_METHODS
from ctxcomp.compressors.base import BaseCompressor
from ctxcomp.errors import ConfigError, UnknownNameError
from ctxcomp.protocols import Compressor
from ctxcomp.text import split_sentences
from ctxcomp.tokens import TokenCounter
from ctxcomp.types import Budget, Chunk, CompressedChunk


@dataclass(frozen=True)
class Outcome:
    """What a method produced: the text the LLM would see, and its provenance if any."""

    text: str
    chunks: tuple[CompressedChunk, ...] | None


class Method(Protocol):
    """A benchmarked method. ``label`` is the spec as the user wrote it."""

    label: str
    provenance: bool

    def setup(self) -> None: ...

    def run(self, query: str, chunks: Sequence[Chunk], budget: Budget) -> Outcome: ...

    def describe(self) -> dict[str, Any]: ...


def parse_value(raw: str) -> Any:
    """A setting value: JSON when it parses (numbers, booleans, null), else the string."""
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def parse_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """``"name:key=value,key=value"`` -> (name, settings).

    Raises:
        ConfigError: an empty name or a setting without ``=``.
    """
    name, _, rest = spec.strip().partition(":")
    name = name.strip()
    if not name:
        raise ConfigError(f"empty method name in {spec!r}")
    settings: dict[str, Any] = {}
    for item in filter(None, (part.strip() for part in rest.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"method setting {item!r} in {spec!r} is not key=value")
        settings[key.strip()] = parse_value(value.strip())
    return name, settings


def split_specs(text: str) -> list[str]:
    """Split ``--methods``: commas separate methods, except inside a ``name:k=v,k=v`` spec.

    A comma-separated part containing ``=`` but no ``:`` continues the previous spec's
    settings, so ``gemfilter:layer=13,unit=sentence,embedding`` is two methods.
    """
    specs: list[str] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        if "=" in part and ":" not in part and specs and ":" in specs[-1]:
            specs[-1] += "," + part
        else:
            specs.append(part)
    if not specs:
        raise ConfigError("no methods given")
    return specs


class NoCompression(BaseCompressor):
    """Keeps everything: the reference point of every table."""

    name = "none"
    requires_query = False

    def compress(self, query: str, chunks: Sequence[Any], budget: Budget) -> Any:
        huge = Budget(max_tokens=2**31 - 1, model=budget.model)
        return super().compress(query, chunks, huge)

    def _propose(
        self, query: str, chunks: Sequence[Chunk], limit: int, counter: TokenCounter, quotas: Quotas = None
    ) -> Assembly:
        raise AssertionError("unreachable: the whole input always fits")


class RandomSentences(BaseCompressor):
    """Random whole sentences up to the budget, kept in original order.

    The random stream is seeded from ``seed`` and the content (query and chunk ids), so a
    rerun gives the same output whatever the order of examples.
    """

    name = "random"
    requires_query = False

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        self.seed = int(seed)

    def config(self) -> dict[str, Any]:
        return {"seed": self.seed}

    def _propose(
        self, query: str, chunks: Sequence[Chunk], limit: int, counter: TokenCounter, quotas: Quotas = None
    ) -> Assembly:
        key = hashlib.sha256("\x1f".join([str(self.seed), query, *(c.id for c in chunks)]).encode()).digest()
        rng = random.Random(key)
        units = [Unit(i, span, rng.random()) for i, c in enumerate(chunks) for span in split_sentences(c.text)]
        if not units:
            return assemble(chunks, [], counter)
        return select_units(chunks, units, counter, limit, quotas)


class CompressorMethod:
    """A ctxcomp compressor (anything with ``compress``) as a benchmark method."""

    provenance = True

    def __init__(self, label: str, compressor: Compressor | BaseCompressor, settings: dict[str, Any]) -> None:
        self.label = label
        self.compressor = compressor
        self.settings = settings

    def setup(self) -> None:
        getattr(self.compressor, "setup", lambda: None)()

    def run(self, query: str, chunks: Sequence[Chunk], budget: Budget) -> Outcome:
        ctx = self.compressor.compress(query, chunks, budget)
        return Outcome(ctx.text, tuple(ctx.chunks))

    def describe(self) -> dict[str, Any]:
        config = getattr(self.compressor, "config", None)
        return {"kind": "ctxcomp", "class": type(self.compressor).__qualname__,
                "settings": self.settings, "config": config() if callable(config) else None}


PEERS = {
    "langchain-embeddings-filter": "ctxcomp.bench.peers:LangChainEmbeddingsFilter",
    "llamaindex-sentence-optimizer": "ctxcomp.bench.peers:LlamaIndexSentenceOptimizer",
    "llmlingua": "ctxcomp.bench.lingua:LLMLinguaMethod",
    "longllmlingua": "ctxcomp.bench.lingua:LongLLMLinguaMethod",
}


def build_method(spec: str, options: dict[str, Any] | None = None) -> Method:
    """The method for ``spec`` (see the module docstring).

    Args:
        spec: ``name`` or ``name:key=value,...``.
        options: run-wide options some peers read (``peers_dir``, ``llmlingua_model``).

    Raises:
        ConfigError / UnknownNameError: a bad spec or an unknown name.
        MissingDependencyError: the method needs an extra that is not installed.
    """
    from ctxcomp import registry

    name, settings = parse_spec(spec)
    if name == "none":
        return CompressorMethod(spec, NoCompression(), settings)
    if name == "random":
        if "seed" not in settings and (options or {}).get("seed") is not None:
            settings = {**settings, "seed": options["seed"]}  # type: ignore[index]
        try:
            return CompressorMethod(spec, RandomSentences(**settings), settings)
        except TypeError as exc:
            raise ConfigError(f"bad settings for random: {exc}") from exc
    if name in PIPELINE_METHODS:
        from ctxcomp.bench.planned import build_pipeline

        return CompressorMethod(spec, build_pipeline(name, settings), settings)
    if name in PEERS:
        module, _, attr = PEERS[name].partition(":")
        import importlib

        cls = getattr(importlib.import_module(module), attr)
        try:
            return cls(spec, settings, **(options or {}))  # type: ignore[no-any-return]
        except TypeError as exc:
            raise ConfigError(f"bad settings for {name}: {exc}") from exc
    try:
        compressor = registry.compressors.create(name, **settings)
    except UnknownNameError:
        raise UnknownNameError("method", name, known_methods()) from None
    return CompressorMethod(spec, compressor, settings)


def known_methods() -> list[str]:
    """Every method name ``build_method`` accepts."""
    from ctxcomp import registry

    return sorted({"none", "random", *PEERS, *PIPELINE_METHODS, *registry.compressors.known_names()})
