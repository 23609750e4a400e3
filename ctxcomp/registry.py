"""Names → factories, one registry per kind (compressors, planners), imported lazily.

A pipeline spec says ``"embedding"`` or ``"gemfilter"`` for a stage and ``"knapsack"`` for
its planner; each kind's :class:`Registry` maps the name to an import path and imports it
only when the object is built, so heavy dependencies load on demand. Third parties
register through an entry-point group per kind (``ctxcomp.compressors``,
``ctxcomp.planners``; ``name = "package.module:Class"``) or :meth:`Registry.register`.

Example:
    >>> from ctxcomp import registry
    >>> "truncate" in registry.compressors.known_names()
    True
    >>> "knapsack" in registry.planners.known_names()
    True
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Mapping
from importlib.metadata import entry_points
from typing import Any

from ctxcomp.errors import ConfigError, UnknownNameError


def _load(path: str) -> Callable[..., Any]:
    module, _, attr = path.partition(":")
    obj: Any = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj  # type: ignore[no-any-return]


class Registry:
    """The factories of one kind of component.

    Args:
        kind: what the names denote, as error messages say it ("stage", "planner").
        group: the entry-point group third-party packages register in.
        builtin: name → ``"module:attr"`` of the built-in factories.
    """

    def __init__(self, kind: str, group: str, builtin: Mapping[str, str]) -> None:
        self.kind = kind
        self.group = group
        self._builtin = dict(builtin)
        self._registered: dict[str, str | Callable[..., Any]] = {}
        self._lock = threading.Lock()

    def register(self, name: str, target: str | Callable[..., Any]) -> None:
        """Register a factory (a class, a callable, or ``"module:attr"``) as ``name``."""
        if not name or not isinstance(name, str):
            raise ConfigError(f"a {self.kind} name must be a non-empty string")
        with self._lock:
            self._registered[name] = target

    def _entry_points(self) -> dict[str, str]:
        return {ep.name: ep.value for ep in entry_points(group=self.group)}

    def known_names(self) -> list[str]:
        """Every name :meth:`get_factory` accepts."""
        with self._lock:
            names = set(self._builtin) | set(self._registered)
        return sorted(names | set(self._entry_points()))

    def get_factory(self, name: str) -> Callable[..., Any]:
        """The factory registered as ``name``.

        Raises:
            UnknownNameError: ``name`` is not registered; the message lists the known names.
            MissingDependencyError: the factory needs an extra that is not installed.
        """
        with self._lock:
            target = self._registered.get(name) or self._builtin.get(name)
        if target is None:
            target = self._entry_points().get(name)
        if target is None:
            raise UnknownNameError(self.kind, name, self.known_names())
        return _load(target) if isinstance(target, str) else target

    def create(self, name: str, **config: Any) -> Any:
        """Build the object registered as ``name`` with ``config``.

        Raises:
            ConfigError: the settings do not fit the factory's signature.
        """
        factory = self.get_factory(name)
        try:
            return factory(**config)
        except TypeError as exc:
            raise ConfigError(f"bad settings for {self.kind} {name!r}: {exc}") from exc


compressors = Registry("stage", "ctxcomp.compressors", {
    "truncate": "ctxcomp.compressors.truncate:TruncateCompressor",
    "embedding": "ctxcomp.compressors.embedding:EmbeddingCompressor",
    "gemfilter": "ctxcomp.compressors.early_layer:EarlyLayerFilter",
    "summarize": "ctxcomp.compressors.summarize:SummarizeCompressor",
    "semantic": "ctxcomp.compressors.semantic:SemanticCompressor",
    "exit": "ctxcomp.compressors.exit:ExitCompressor",
    "attribution": "ctxcomp.compressors.attribution.compressor:AttributionCompressor",
    "selfinfo": "ctxcomp.compressors.attribution.compressor:SelfInfoCompressor",
})

planners = Registry("planner", "ctxcomp.planners", {
    "geometric": "ctxcomp.planners.base:GeometricPlanner",
    "knapsack": "ctxcomp.planners.knapsack:KnapsackPlanner",
})

llms = Registry("llm", "ctxcomp.llms", {
    "local": "ctxcomp.llm.local:LocalLLM",
    "openai": "ctxcomp.llm.openai_compat:OpenAICompatLLM",
    "langchain": "ctxcomp.llm.frameworks:LangChainLLM",
    "llamaindex": "ctxcomp.llm.frameworks:LlamaIndexLLM",
    "callable": "ctxcomp.llm.function:CallableLLM",
})

#: Every kind, by the name a spec or an error uses for it.
KINDS: dict[str, Registry] = {"compressor": compressors, "planner": planners, "llm": llms}


def register(name: str, target: str | Callable[..., Any], kind: str = "compressor") -> None:
    """Register a third-party component (a compressor unless ``kind`` says otherwise).

    Raises:
        UnknownNameError: ``kind`` is not one of :data:`KINDS`.
    """
    if kind not in KINDS:
        raise UnknownNameError("registry kind", kind, KINDS)
    KINDS[kind].register(name, target)
