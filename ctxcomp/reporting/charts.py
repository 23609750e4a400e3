"""The HTML report's charts, drawn with matplotlib (extra ``report``) as SVG.

Each function returns one SVG document as text (fonts drawn as paths, so the chart needs
nothing from the network or the viewer's fonts). Figures are built with
``matplotlib.figure.Figure`` directly, not pyplot: no global state, no GUI backend.
"""

from __future__ import annotations

import io
import math
from datetime import datetime, timezone
from typing import Any

from ctxcomp._deps import require
from ctxcomp.reporting.aggregate import Percentiles, Report

TOP = 8
SIZE = (7.2, 3.4)


def _figure() -> tuple[Any, Any]:
    require("matplotlib", "report", "the HTML report's charts")
    from matplotlib.figure import Figure

    fig = Figure(figsize=SIZE, dpi=100, layout="constrained")
    return fig, fig.add_subplot()


def _svg(fig: Any) -> str:
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None})
    return buffer.getvalue()


def _top(series: dict[str, list[float]], limit: int = TOP) -> dict[str, list[float]]:
    """The ``limit`` names with the largest totals, the rest summed as "other"."""
    ranked = sorted(series, key=lambda n: -abs(sum(series[n])))
    out = {name: series[name] for name in ranked[:limit]}
    rest = ranked[limit:]
    if rest:
        out["other"] = [sum(series[n][i] for n in rest) for i in range(len(series[rest[0]]))]
    return out


def _times(report: Report) -> list[datetime]:
    return [datetime.fromtimestamp(t, tz=timezone.utc) for t in report.series.starts]


def _labels(times: list[datetime]) -> list[str]:
    return [t.strftime("%m-%d %H:%M") for t in times]


def _bucket_label(width: int) -> str:
    for size, name in ((86400 * 7, "week"), (86400, "day"), (3600, "hour"), (60, "minute")):
        if width % size == 0:
            count = width // size
            return f"{count} {name}s" if count > 1 else name
    return f"{width} s"


def savings_over_time(report: Report, dimension: str, what: str) -> str:
    """Tokens (``what="tokens"``) or net USD (``"usd"``) saved per time bucket, stacked by
    ``dimension`` (``"model"`` or ``"tenant"``)."""
    source = report.series.tokens_saved if what == "tokens" else report.series.usd_saved
    # A name with nothing to show (an unpriced model in the dollar chart) only clutters the legend.
    series = _top({n: v for n, v in source[dimension].items() if any(v)})
    fig, ax = _figure()
    times = _times(report)
    if len(times) < 3:  # an area needs a span: a few buckets read better as bars
        bottom = [0.0] * len(times)
        for name, values in series.items():
            ax.bar(_labels(times), values, bottom=bottom, label=name)
            bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    else:
        ax.stackplot(times, *series.values(), labels=list(series), alpha=0.85, step="post")
        fig.autofmt_xdate()
    unit = "tokens saved" if what == "tokens" else "USD saved (net)"
    ax.set_ylabel(f"{unit} per {_bucket_label(report.series.bucket_seconds)}")
    title = "Tokens saved" if what == "tokens" else "Dollars saved, net of compressor cost,"
    ax.set_title(f"{title} over time by {dimension} (UTC)")
    if series:
        ax.legend(loc="upper left", fontsize=8, ncols=2)
    ax.grid(alpha=0.3)
    return _svg(fig)


def ratio_distribution(report: Report) -> str:
    """How many compressions reached each compression ratio."""
    fig, ax = _figure()
    edges = report.ratio_edges
    labels = [f"{edges[i]:g}-{edges[i + 1]:g}x" if math.isfinite(edges[i + 1]) else f">{edges[i]:g}x"
              for i in range(len(edges) - 1)]
    ax.bar(labels, report.ratio_counts, color="#4c72b0")
    ax.set_xlabel("compression ratio (tokens in / tokens out)")
    ax.set_ylabel("compressions")
    ax.set_title("Distribution of compression ratios")
    ax.tick_params(axis="x", labelrotation=45, labelsize=8)
    ax.grid(axis="y", alpha=0.3)
    return _svg(fig)


def latency_percentiles(report: Report) -> str:
    """p50/p90/p95/p99 latency for all requests, cache hits and misses, and each of the
    busiest pipelines."""
    rows: list[tuple[str, Percentiles]] = [(k, v) for k, v in report.latency.items() if v.count]
    busiest = sorted(report.latency_by["pipeline"].items(), key=lambda kv: -kv[1].count)[:4]
    rows += [(f"pipeline {name[:12]}", p) for name, p in busiest if len(busiest) > 1]
    fig, ax = _figure()
    quantiles = ("p50", "p90", "p95", "p99")
    width = 0.8 / len(quantiles)
    for i, q in enumerate(quantiles):
        values = [getattr(p, q) or 0.0 for _, p in rows]
        ax.bar([j + i * width for j in range(len(rows))], values, width=width, label=q)
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(rows))], [name for name, _ in rows], fontsize=8)
    positive = [getattr(p, q) for _, p in rows for q in quantiles if getattr(p, q)]
    if positive and max(positive) / min(positive) > 100:  # cache hits (ms) beside model stages (s)
        ax.set_yscale("log")
    ax.set_ylabel("seconds")
    ax.set_title("Compression latency percentiles")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return _svg(fig)


def cache_hit_rate(report: Report) -> str:
    """Share of compressions served from the context cache, per time bucket."""
    s = report.series
    rates = [100.0 * h / r if r else math.nan for h, r in zip(s.cache_hits, s.requests, strict=True)]
    fig, ax = _figure()
    times = _times(report)
    if len(times) < 3:
        ax.bar(_labels(times), rates, color="#55a868")
    else:
        ax.plot(times, rates, marker="o" if len(times) < 30 else None, color="#55a868")
        fig.autofmt_xdate()
    ax.set_ylim(0, 100)
    ax.set_ylabel(f"% cache hits per {_bucket_label(s.bucket_seconds)}")
    total = report.totals
    overall = 100.0 * total.cache_hits / total.requests if total.requests else 0.0
    ax.set_title(f"Cache hit rate over time (overall {overall:.1f}%, UTC)")
    ax.grid(alpha=0.3)
    return _svg(fig)


def all_charts(report: Report) -> dict[str, tuple[str, str]]:
    """``{id: (title, svg)}`` of every chart, in page order (none for an empty ledger)."""
    if not report.totals.requests:
        return {}
    return {
        "tokens-by-model": ("Tokens saved by model", savings_over_time(report, "model", "tokens")),
        "usd-by-model": ("Dollars saved by model", savings_over_time(report, "model", "usd")),
        "tokens-by-tenant": ("Tokens saved by tenant", savings_over_time(report, "tenant", "tokens")),
        "usd-by-tenant": ("Dollars saved by tenant", savings_over_time(report, "tenant", "usd")),
        "ratios": ("Compression ratios", ratio_distribution(report)),
        "latency": ("Latency percentiles", latency_percentiles(report)),
        "cache": ("Cache hit rate", cache_hit_rate(report)),
    }
