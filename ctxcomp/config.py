"""Pipeline specs from a dict or a YAML, TOML or JSON file.

A spec looks like::

    stages:                         # coarse to fine
      - name: embedding             # a registry name with settings;
        unit: chunk
        ratio: 2                    # this stage's own reduction (or max_tokens: N)
      - gemfilter                   # or just a name
    planner: knapsack               # or {name: knapsack, utility: embedding, ...}; default geometric
    budget:
      max_tokens: 500               # or ratio: 4
      model: gpt-4o-mini
    tenant: default
    cache: {backend: memory}        # optional; see ctxcomp.cache

Unknown top-level keys are errors (a typo must not silently change behaviour).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from ctxcomp.errors import BudgetError, ConfigError
from ctxcomp.types import DEFAULT_MODEL, Budget

if TYPE_CHECKING:
    from ctxcomp.pipeline import Pipeline

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

_TOP_KEYS = {"stages", "budget", "tenant", "cache", "planner", "name"}


@dataclass(frozen=True)
class PipelineSpec:
    """A validated pipeline spec; :meth:`build` makes the :class:`Pipeline`."""

    stages: tuple[Any, ...]
    budget: Budget | None = None
    tenant: str = "default"
    cache: Mapping[str, Any] | None = field(default=None)
    planner: Any = None
    name: str | None = None

    def build(self, **overrides: Any) -> Pipeline:
        from ctxcomp.pipeline import Pipeline

        kwargs: dict[str, Any] = {"budget": self.budget, "tenant": self.tenant, "planner": self.planner,
                                  "name": self.name}
        if self.cache is not None:
            kwargs["cache"] = _build_cache(self.cache)
        kwargs.update(overrides)
        return Pipeline(list(self.stages), **kwargs)


def _build_cache(settings: Mapping[str, Any]) -> Any:
    """The spec's ``cache:`` mapping as a Pipeline ``cache`` argument (False: disabled)."""
    from ctxcomp.cache import build_cache

    cache = build_cache(**dict(settings))
    return cache if cache is not None else False


def read_config_file(path: Path, what: str = "pipeline spec") -> Any:
    """The data of a .yaml/.yml/.toml/.json file (YAML safe-loaded; ``what`` names the file
    in errors).

    Raises:
        ConfigError: the file cannot be read or parsed.
    """
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror}") from exc
    try:
        if path.suffix == ".toml":
            return tomllib.loads(raw.decode("utf-8"))
        if path.suffix == ".json":
            return json.loads(raw)
        return yaml.safe_load(raw)
    except (UnicodeDecodeError, ValueError, RecursionError, yaml.YAMLError) as exc:
        kind = path.suffix.lstrip(".") or "YAML"
        raise ConfigError(f"{what} {path} is not valid {kind}: {_one_line(exc)}") from None


def _one_line(exc: BaseException) -> str:
    """A parser error as one line: YAML's are several (problem, context, a caret under the text)."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None)
    if problem and mark is not None:
        return f"{problem} (line {mark.line + 1}, column {mark.column + 1})"
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return " ".join(str(exc).split())


def parse_budget(data: Any) -> Budget:
    if not isinstance(data, Mapping):
        raise BudgetError(f"budget must be a mapping with max_tokens or ratio, got {data!r}")
    unknown = set(data) - {"max_tokens", "ratio", "model"}
    if unknown:
        raise BudgetError(f"unknown budget keys: {sorted(unknown)}")
    return Budget(max_tokens=data.get("max_tokens"), ratio=data.get("ratio"),
                  model=data.get("model", DEFAULT_MODEL))


def load_spec(spec: Mapping[str, Any] | str | Path) -> PipelineSpec:
    """Validate a spec given as a dict or a path to a .yaml/.yml/.toml/.json file.

    Raises:
        ConfigError: unreadable file, bad syntax, unknown keys or bad values.
    """
    data = read_config_file(Path(spec)) if isinstance(spec, (str, Path)) else spec
    if not isinstance(data, Mapping):
        raise ConfigError("a pipeline spec must be a mapping with a 'stages' list")
    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise ConfigError(f"unknown keys in pipeline spec: {sorted(unknown)}; allowed: {sorted(_TOP_KEYS)}")
    stages = data.get("stages")
    if not isinstance(stages, list) or not stages:
        raise ConfigError("the spec's 'stages' must be a non-empty list")
    budget = parse_budget(data["budget"]) if data.get("budget") is not None else None
    tenant = data.get("tenant", "default")
    if not isinstance(tenant, str) or not tenant:
        raise ConfigError("'tenant' must be a non-empty string")
    cache = data.get("cache")
    if cache is not None and not isinstance(cache, Mapping):
        raise ConfigError("'cache' must be a mapping of cache settings")
    planner = data.get("planner")
    if planner is not None and not isinstance(planner, (str, Mapping)):
        raise ConfigError("'planner' must be a planner name or a mapping with a 'name'")
    name = data.get("name")
    if name is not None and (not isinstance(name, str) or not name):
        raise ConfigError("'name' must be a non-empty string")
    return PipelineSpec(tuple(stages), budget, tenant, cache, planner, name)
