"""Settings of the compressing proxy, from a YAML/TOML/JSON file or keyword arguments.

A config file looks like::

    upstream: https://api.openai.com/v1   # the OpenAI base URL (what OPENAI_BASE_URL would be)
    pipeline: {stages: [embedding]}        # a pipeline spec or a spec file; default: ctxcomp.defaults
    budget: {ratio: 4}                     # or {max_tokens: 2000}; a request may give its own
    compress: {tools: true, documents: true, extension: true, system: false}
    min_chars: 400                         # shorter pieces are never compressed
    max_body_bytes: 10485760
    fail_open: true                        # a compression that fails forwards the original
    compress_timeout: 30
    upstream_timeout: 600
    ledger: proxy-ledger.jsonl             # also a durable ledger file (always in memory)
    api_key_tenants: {<sha256 of the key>: team-a}

The upstream comes from here only, never from a request. Unknown keys are errors.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ctxcomp.config import parse_budget, read_config_file
from ctxcomp.errors import BudgetError, ConfigError
from ctxcomp.types import Budget

#: Request headers the proxy reads (and does not forward).
BUDGET_HEADER = "x-ctxcomp-budget"
TENANT_HEADER = "x-ctxcomp-tenant"
COMPRESS_HEADER = "x-ctxcomp-compress"
#: The key of the request-body extension object (removed before forwarding).
EXTENSION_KEY = "ctxcomp"
KINDS = ("tools", "documents", "extension", "system")


@dataclass(frozen=True)
class Switches:
    """What the proxy compresses.

    Attributes:
        tools: tool-result messages (role ``tool``): JSON string values, or plain text.
        documents: ``<document>`` elements (and bare ``<documents>`` blocks) in messages.
        extension: the documents of the ``ctxcomp`` body extension (inserted uncompressed
            when off).
        system: also the ``<document>`` elements inside system messages (the rest of a
            system prompt is never compressed).
    """

    tools: bool = True
    documents: bool = True
    extension: bool = True
    system: bool = False

    def __post_init__(self) -> None:
        for f in fields(self):
            if not isinstance(getattr(self, f.name), bool):
                raise ConfigError(f"compress.{f.name} must be true or false, got {getattr(self, f.name)!r}")

    @classmethod
    def from_mapping(cls, data: Any, base: Switches | None = None, *, where: str = "compress") -> Switches:
        """``base`` with the kinds ``data`` names switched (unknown kinds are errors)."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"{where} must be a mapping of {', '.join(KINDS)} to true/false, got {data!r}")
        unknown = set(data) - set(KINDS)
        if unknown:
            raise ConfigError(f"unknown kinds in {where}: {sorted(map(str, unknown))}; known: {', '.join(KINDS)}")
        return replace(base or cls(), **dict(data))

    @classmethod
    def from_header(cls, value: str, base: Switches) -> Switches:
        """``off``/``none`` (nothing), ``on``/``all`` (the base), or a comma list of kinds
        (only those)."""
        words = [w.strip().lower() for w in value.split(",") if w.strip()]
        if words in (["off"], ["none"]):
            return cls(False, False, False, False)
        if words in (["on"], ["all"], []):
            return base
        unknown = set(words) - set(KINDS)
        if unknown:
            raise ConfigError(f"{COMPRESS_HEADER}: unknown kinds {sorted(unknown)}; "
                              f"give off, on, or a comma list of {', '.join(KINDS)}")
        return cls(**{k: k in words for k in KINDS})

    def any(self) -> bool:
        return self.tools or self.documents or self.extension


def parse_budget_value(value: Any, model: str, *, where: str) -> Budget:
    """A budget from a request: an int (max tokens), ``"4x"`` (a ratio), a numeric string,
    or ``{"max_tokens": N}`` / ``{"ratio": R}``.

    Raises:
        BudgetError: anything else, or a value a Budget refuses.
    """
    if isinstance(value, Mapping):
        return parse_budget({**value, "model": model})
    if isinstance(value, bool):
        raise BudgetError(f"{where}: a budget must be tokens (500), a ratio ('4x') or a mapping, got {value!r}")
    if isinstance(value, int):
        return Budget(max_tokens=value, model=model)
    if isinstance(value, str):
        text = value.strip().lower()
        try:
            if text.endswith("x"):
                ratio = float(text[:-1])
                if not math.isfinite(ratio):
                    raise ValueError
                return Budget(ratio=ratio, model=model)
            return Budget(max_tokens=int(text), model=model)
        except ValueError:
            pass
    raise BudgetError(f"{where}: a budget must be tokens (500), a ratio ('4x') or a mapping, got {value!r}")


def _positive(name: str, value: Any, *, integer: bool = False) -> None:
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or not value > 0 or not math.isfinite(value):
        raise ConfigError(f"{name} must be a {'whole ' if integer else ''}number > 0, got {value!r}")


def check_upstream(url: Any) -> str:
    """The upstream base URL without a trailing slash (http or https with a host)."""
    if not isinstance(url, str) or not url:
        raise ConfigError("an upstream URL is needed (--upstream or 'upstream' in the config)")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"upstream must be an http(s) URL with a host, got {url!r}")
    if parts.query or parts.fragment:
        raise ConfigError(f"upstream must not carry a query or fragment, got {url!r}")
    return url.rstrip("/")


def key_digest(api_key: str) -> str:
    """The sha256 hex digest of an API key: how ``api_key_tenants`` names keys, so a
    config file never holds a key."""
    return hashlib.sha256(api_key.encode()).hexdigest()


@dataclass(frozen=True)
class ProxyConfig:
    """Everything the proxy needs (see the module docstring for the file form).

    Attributes:
        upstream: the OpenAI-compatible base URL requests go to (``.../v1``); a request
            to ``/v1/chat/completions`` goes to ``{upstream}/chat/completions``.
        pipeline: a pipeline spec (mapping) or spec file; None: the default pipeline.
        budget: the budget of a request that gives none.
        compress: what is compressed unless a request says otherwise.
        min_chars: pieces shorter than this stay verbatim (not worth a compression).
        max_body_bytes: larger request bodies are refused with 413.
        fail_open: a compression that fails or times out forwards the original request
            (and says so in a header); False answers 500 instead.
        compress_timeout: seconds a compression may take.
        upstream_timeout: seconds to wait for the upstream's answer (read timeout).
        connect_timeout: seconds to connect to the upstream.
        ledger: a JSONL/SQLite ledger file (None: in memory only).
        tenant: the tenant of a request with no tenant header and no mapped key.
        api_key_tenants: ``{sha256 hex of an API key: tenant}`` (see :func:`key_digest`).
        warmup: load the pipeline's models at startup (``/readyz`` answers 503 until done).

    Raises:
        ConfigError: a bad value.
    """

    upstream: str
    pipeline: Mapping[str, Any] | str | None = None
    budget: Budget = field(default_factory=lambda: Budget(ratio=4))
    compress: Switches = field(default_factory=Switches)
    min_chars: int = 400
    max_body_bytes: int = 10 * 1024 * 1024
    fail_open: bool = True
    compress_timeout: float = 30.0
    upstream_timeout: float = 600.0
    connect_timeout: float = 10.0
    ledger: str | None = None
    tenant: str = "default"
    api_key_tenants: Mapping[str, str] = field(default_factory=dict)
    warmup: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "upstream", check_upstream(self.upstream))
        if self.pipeline is not None and not isinstance(self.pipeline, (str, Mapping)):
            raise ConfigError("pipeline must be a spec mapping or the path of a spec file")
        if not isinstance(self.budget, Budget):
            raise ConfigError(f"budget must be a Budget, got {self.budget!r}")
        if not isinstance(self.compress, Switches):
            raise ConfigError(f"compress must be Switches, got {self.compress!r}")
        if isinstance(self.min_chars, bool) or not isinstance(self.min_chars, int) or self.min_chars < 0:
            raise ConfigError(f"min_chars must be a whole number >= 0, got {self.min_chars!r}")
        _positive("max_body_bytes", self.max_body_bytes, integer=True)
        for name in ("compress_timeout", "upstream_timeout", "connect_timeout"):
            _positive(name, getattr(self, name))
        for name in ("fail_open", "warmup"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name} must be true or false")
        if not isinstance(self.tenant, str) or not self.tenant:
            raise ConfigError("tenant must be a non-empty string")
        if self.ledger is not None and not isinstance(self.ledger, str):
            raise ConfigError("ledger must be a file path")
        if not isinstance(self.api_key_tenants, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) and v for k, v in self.api_key_tenants.items()
        ):
            raise ConfigError("api_key_tenants must map sha256 key digests to tenant names")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], **overrides: Any) -> ProxyConfig:
        """A config from a mapping (the file form); ``overrides`` that are not None win."""
        if not isinstance(data, Mapping):
            raise ConfigError("a proxy config must be a mapping")
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"unknown keys in proxy config: {sorted(map(str, unknown))}; allowed: {sorted(known)}")
        values = dict(data)
        if "budget" in values:
            values["budget"] = parse_budget(values["budget"])
        if "compress" in values:
            values["compress"] = Switches.from_mapping(values["compress"])
        values.update({k: v for k, v in overrides.items() if v is not None})
        if "upstream" not in values:
            raise ConfigError("an upstream URL is needed (--upstream or 'upstream' in the config)")
        return cls(**values)

    @classmethod
    def from_file(cls, path: str | Path, **overrides: Any) -> ProxyConfig:
        """A config from a .yaml/.yml/.toml/.json file; ``overrides`` that are not None win."""
        data = read_config_file(Path(path), "proxy config")
        return cls.from_mapping(data or {}, **overrides)

    def to_json(self) -> str:
        """The config as JSON (how ``ctxcomp serve --workers N`` hands it to each worker)."""
        budget = ({"max_tokens": self.budget.max_tokens} if self.budget.max_tokens is not None
                  else {"ratio": self.budget.ratio})
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data.update(budget={**budget, "model": self.budget.model},
                    compress={f.name: getattr(self.compress, f.name) for f in fields(Switches)},
                    api_key_tenants=dict(self.api_key_tenants))
        return json.dumps(data)
