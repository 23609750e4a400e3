"""What the proxy counts: its own Prometheus counters, and the upstream's ``usage`` found
in a JSON answer or an SSE stream (for the ledger's usage records).

The compression counters themselves (tokens before/after, saved, latency, cache hits)
come from :class:`~ctxcomp.reporting.metrics.PrometheusMetrics` as a ledger observer on
the same registry.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from ctxcomp._deps import require
from ctxcomp.reporting.usage import parse_provider_usage

log = logging.getLogger(__name__)

#: The longest SSE line the usage scanner keeps (a longer one is passed on, not parsed).
MAX_LINE = 1 << 20


class ProxyCounters:
    """The proxy's own counters on a prometheus-client registry.

    ``ctxcomp_proxy_requests_total{route,status}``, ``ctxcomp_proxy_compression_total{status}``
    (compressed / unchanged / off / failed-open) and ``ctxcomp_proxy_upstream_errors_total``.
    """

    def __init__(self, registry: Any) -> None:
        prom = require("prometheus_client", "server", "the proxy's /metrics")
        self.registry = registry
        self.requests = prom.Counter("proxy_requests", "Requests answered by the proxy", ("route", "status"),
                                     namespace="ctxcomp", registry=registry)
        self.compression = prom.Counter("proxy_compression", "Chat requests by what compression did", ("status",),
                                        namespace="ctxcomp", registry=registry)
        self.upstream_errors = prom.Counter("proxy_upstream_errors", "Upstream unreachable or timed out",
                                            namespace="ctxcomp", registry=registry)

    def render(self) -> tuple[bytes, str]:
        """The registry in the Prometheus text format, and its content type."""
        prom = require("prometheus_client", "server", "the proxy's /metrics")
        return prom.generate_latest(self.registry), prom.CONTENT_TYPE_LATEST


def usage_of_json(content: bytes) -> tuple[str | None, tuple[int, int, int] | None]:
    """(model, (input, output, cached tokens)) from an OpenAI-shaped JSON answer."""
    try:
        data = json.loads(content)
    except (ValueError, RecursionError):
        return None, None
    if not isinstance(data, dict):
        return None, None
    if isinstance(data.get("response"), dict):  # a Responses stream event (response.completed)
        data = data["response"]
    model = data.get("model") if isinstance(data.get("model"), str) else None
    return model, parse_provider_usage(data.get("usage")) if isinstance(data.get("usage"), dict) else None


class SSEUsageScanner:
    """Finds the last ``usage`` object in an SSE stream fed to it chunk by chunk (OpenAI
    sends it in the final chunk when ``stream_options.include_usage`` is set)."""

    def __init__(self) -> None:
        self._tail = b""
        self.model: str | None = None
        self.usage: tuple[int, int, int] | None = None

    def feed(self, chunk: bytes) -> None:
        data = self._tail + chunk
        lines = data.split(b"\n")
        self._tail = lines.pop()
        if len(self._tail) > MAX_LINE:
            self._tail = b""
        for line in lines:
            if line.startswith(b"data:") and b'"usage"' in line:
                model, usage = usage_of_json(line[5:].strip())
                if usage is not None:
                    self.model, self.usage = model or self.model, usage
