"""Bounded label values for metrics: a service with unbounded tenants must not create
unbounded time series.

Each dimension keeps its first ``max_*`` distinct values; later ones become ``"other"``.
Tenants may also be hashed (a short SHA-256 prefix), so tenant names never reach the
metrics backend.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass

from ctxcomp.errors import ConfigError

OTHER = "other"


@dataclass(frozen=True)
class LabelPolicy:
    """How many distinct values each label may take, and whether tenants are hashed.

    Args:
        max_tenants: distinct tenant labels kept (default 100).
        max_models: distinct model labels kept (default 50).
        max_pipelines: distinct pipeline labels kept (default 50).
        max_providers: distinct provider labels kept (default 20).
        hash_tenants: label tenants by ``"t-" + sha256(tenant)[:10]`` instead of the name.

    Raises:
        ConfigError: a limit that is not an int > 0.
    """

    max_tenants: int = 100
    max_models: int = 50
    max_pipelines: int = 50
    max_providers: int = 20
    hash_tenants: bool = False

    def __post_init__(self) -> None:
        for name in ("max_tenants", "max_models", "max_pipelines", "max_providers"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ConfigError(f"{name} must be an int > 0, got {value!r}")


class _Capped:
    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.seen: set[str] = set()

    def __call__(self, value: str) -> str:
        if value in self.seen:
            return value
        if len(self.seen) >= self.cap:
            return OTHER
        self.seen.add(value)
        return value


class Labeler:
    """Applies a :class:`LabelPolicy` (thread-safe)."""

    def __init__(self, policy: LabelPolicy | None = None) -> None:
        self.policy = policy or LabelPolicy()
        self._lock = threading.Lock()
        self._tenant = _Capped(self.policy.max_tenants)
        self._model = _Capped(self.policy.max_models)
        self._pipeline = _Capped(self.policy.max_pipelines)
        self._provider = _Capped(self.policy.max_providers)

    def tenant(self, tenant: str) -> str:
        if self.policy.hash_tenants:
            tenant = "t-" + hashlib.sha256(tenant.encode("utf-8")).hexdigest()[:10]
        with self._lock:
            return self._tenant(tenant)

    def model(self, model: str) -> str:
        with self._lock:
            return self._model(model)

    def pipeline(self, pipeline: str) -> str:
        with self._lock:
            return self._pipeline(pipeline or "unknown")

    def provider(self, provider: str) -> str:
        with self._lock:
            return self._provider(provider or "unknown")
