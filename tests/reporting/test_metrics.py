"""Prometheus metrics scraped over real HTTP and parsed with prometheus-client's parser."""

from __future__ import annotations

import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from ctxcomp.errors import ConfigError
from ctxcomp.reporting.labels import LabelPolicy
from ctxcomp.reporting.ledger import Ledger
from ctxcomp.reporting.metrics import PrometheusMetrics
from ctxcomp.reporting.usage import make_usage
from ctxcomp.types import CompressedContext

prometheus_client = pytest.importorskip("prometheus_client")
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

Ctx = Callable[..., CompressedContext]


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        assert response.status == 200
        text = response.read().decode("utf-8")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


@pytest.fixture
def served() -> Iterator[tuple[PrometheusMetrics, int]]:
    metrics = PrometheusMetrics(labels=LabelPolicy(max_tenants=2))
    server = metrics.serve(port=0)
    try:
        yield metrics, server.server_port
    finally:
        server.shutdown()
        server.server_close()


def _labels(model: str, tenant: str, pipeline: str, **extra: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted({"model": model, "tenant": tenant, "pipeline": pipeline, **extra}.items()))


def test_metrics_endpoint_over_http(served: tuple[PrometheusMetrics, int], make_ctx: Ctx) -> None:
    metrics, port = served
    ledger = Ledger(observers=[metrics])
    ledger.record(make_ctx(1000, 100, llm_tokens=(300, 40), llm_cost=2e-4), tenant="acme", seconds=0.2,
                  pipeline="p1")
    ledger.record(make_ctx(1000, 100, llm_tokens=(300, 40), llm_cost=2e-4), tenant="acme", seconds=0.001,
                  cache_hit=True, pipeline="p1")
    ledger.record(make_ctx(400, 200, "mystery-llm", priced=False), tenant="zeta", seconds=0.3, pipeline="p1")
    ledger.record(make_ctx(400, 200), tenant="third-tenant", seconds=0.3, pipeline="p1")  # over the cap
    samples = scrape(port)
    acme = _labels("gpt-4o-mini", "acme", "p1")
    assert samples[("ctxcomp_compressions_total", acme)] == 2
    assert samples[("ctxcomp_input_tokens_total", acme)] == 2000
    assert samples[("ctxcomp_output_tokens_total", acme)] == 200
    assert samples[("ctxcomp_saved_tokens_total", acme)] == 1800
    # net = 2 x 900e-6 saved - 2e-4 for the one miss (the cache hit called no model)
    assert samples[("ctxcomp_net_saved_usd", acme)] == pytest.approx(1800e-6 - 2e-4)
    assert samples[("ctxcomp_compressor_usd_total", acme)] == pytest.approx(2e-4)
    assert samples[("ctxcomp_compressor_llm_tokens_total", _labels("gpt-4o-mini", "acme", "p1",
                                                                   direction="input"))] == 300
    assert samples[("ctxcomp_cache_hits_total", acme)] == 1
    assert samples[("ctxcomp_cache_misses_total", acme)] == 1
    assert samples[("ctxcomp_compression_seconds_count", acme)] == 2
    assert samples[("ctxcomp_compression_seconds_bucket", _labels("gpt-4o-mini", "acme", "p1", le="0.001"))] == 1
    unknown = _labels("mystery-llm", "zeta", "p1")
    assert samples[("ctxcomp_unpriced_compressions_total", unknown)] == 1
    assert ("ctxcomp_net_saved_usd", unknown) not in samples  # unknown, not $0
    assert samples[("ctxcomp_compressions_total", _labels("gpt-4o-mini", "other", "p1"))] == 1
    assert samples[("ctxcomp_ledger_dropped_total", ())] == 0


def test_usage_and_audit_counters(served: tuple[PrometheusMetrics, int]) -> None:
    metrics, port = served
    ledger = Ledger(observers=[metrics])
    ledger.record_usage(make_usage("gpt-4o-mini", 1000, 20, provider="openai", tenant="acme",
                                   expected_input_tokens=1000))
    ledger.record_usage(make_usage("gpt-4o-mini", 1500, 20, provider="openai", tenant="acme",
                                   expected_input_tokens=1000))
    samples = scrape(port)
    pm = (("model", "gpt-4o-mini"), ("provider", "openai"))
    assert samples[("ctxcomp_usage_audited_total", pm)] == 2
    assert samples[("ctxcomp_usage_discrepancies_total", pm)] == 1
    assert samples[("ctxcomp_llm_input_tokens_total", (*pm, ("tenant", "acme")))] == 2500


def test_hashed_tenants_and_existing_registry() -> None:
    registry = prometheus_client.CollectorRegistry()
    metrics = PrometheusMetrics(registry=registry, labels=LabelPolicy(hash_tenants=True))
    metrics.on_drop(3)
    ledger = Ledger(observers=[metrics])
    ledger.add(_record("secret-customer"))
    text = prometheus_client.generate_latest(registry).decode()
    assert "secret-customer" not in text and 'tenant="t-' in text
    assert "ctxcomp_ledger_dropped_total 3.0" in text


def _record(tenant: str) -> Any:
    from ctxcomp.reporting.records import CompressionRecord

    return CompressionRecord.from_counts("gpt-4o-mini", 100, 10, tenant=tenant)


def test_bad_label_policy() -> None:
    with pytest.raises(ConfigError):
        LabelPolicy(max_tenants=0)
