"""Plain-text reports: one compression before/after (``ctxcomp demo``) and a ledger
summary (``ctxcomp report``). An unknown price prints as ``unknown``, never as $0."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timezone

from ctxcomp.reporting.aggregate import Percentiles, Report
from ctxcomp.reporting.totals import LedgerTotals
from ctxcomp.types import CompressedContext

MAX_ROWS = 20


def money(value: float | None) -> str:
    """``$1,234.56`` / ``$0.000123``; ``n/a`` for None."""
    if value is None:
        return "n/a"
    if value != 0 and abs(value) < 1:
        return f"${value:.6f}".replace("$-", "-$")
    return f"${value:,.2f}".replace("$-", "-$")


def known_money(value: float, unknown: int, requests: int) -> str:
    """A sum of USD over ``requests`` of which ``unknown`` had no price."""
    if requests and unknown >= requests:
        return "unknown"
    text = money(value)
    return f"{text} (+{unknown} unpriced)" if unknown else text


def when(timestamp: float | None) -> str:
    if timestamp is None:
        return "-"
    return datetime.fromtimestamp(timestamp, tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def ratio(value: float) -> str:
    return f"{value:.1f}x" if math.isfinite(value) else "all dropped"


def seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def render_compression(query: str, ctx: CompressedContext, elapsed: float, titles: dict[str, str]) -> str:
    """A readable before/after report of one compression."""
    approx = " (approximate tokenizer)" if ctx.tokens_approximate else ""
    lines = [
        f"query: {query}",
        "",
        f"{'':14}{'before':>12}{'after':>12}",
        f"{'tokens':14}{ctx.tokens_in:>12,}{ctx.tokens_out:>12,}   ({ctx.model}{approx})",
        f"{'cost/request':14}{money(ctx.cost_before):>12}{money(ctx.cost_after):>12}",
        f"ratio {ctx.ratio:.1f}x, saved {ctx.tokens_saved:,} tokens"
        + (f" = {money(ctx.cost_saved)} per request, ${ctx.cost_saved * 1e6:,.2f} per million requests"
           if ctx.cost_saved is not None else ""),
        f"time {elapsed:.2f} s: " + ", ".join(f"{s.name} {s.seconds:.2f} s" for s in ctx.stages),
        *([f"plan ({ctx.plan.planner}): {ctx.plan.reason}"] if ctx.plan is not None else []),
        "",
        f"kept {len(ctx.chunks)} chunks:",
    ]
    for chunk in ctx.chunks:
        title = titles.get(chunk.source_id, "")
        score = chunk.score if chunk.score is not None else float("nan")
        lines.append(f"  [{chunk.source_id}] {title[:40]:40} {chunk.tokens_out:>4}/{chunk.tokens_in:<4} tokens, "
                     f"{len(chunk.spans)} span(s), score {score:.3f}")
    lines += ["", "compressed context:", "-" * 60, ctx.text, "-" * 60]
    return "\n".join(lines)


GROUP_HEADER = ("requests", "tokens in", "tokens out", "saved", "ratio", "saved USD (net)",
                "compressor USD", "cache hits")


def group_cells(totals: LedgerTotals) -> tuple[str, ...]:
    """One table row's cells for ``totals`` (see :data:`GROUP_HEADER`)."""
    hit_rate = totals.cache_hits / totals.requests if totals.requests else 0.0
    return (f"{totals.requests:,}", f"{totals.tokens_in:,}", f"{totals.tokens_out:,}", f"{totals.tokens_saved:,}",
            ratio(totals.ratio), known_money(totals.net_saved, totals.net_unknown, totals.requests),
            known_money(totals.llm_cost, totals.llm_unpriced, totals.requests), f"{hit_rate:.1%}")


def top_groups(groups: dict[str, LedgerTotals], limit: int = MAX_ROWS) -> list[tuple[str, LedgerTotals]]:
    """The groups with the most tokens saved first; at most ``limit`` rows."""
    return sorted(groups.items(), key=lambda kv: (-kv[1].tokens_saved, kv[0]))[:limit]


def _table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> list[str]:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    fmt = [f"{{:<{w}}}" if i == 0 else f"{{:>{w}}}" for i, w in enumerate(widths)]
    return ["  ".join(f.format(c) for f, c in zip(fmt, row, strict=True)).rstrip() for row in [header, *rows]]


def _latency_line(name: str, p: Percentiles) -> str:
    if not p.count:
        return f"  {name}: none"
    return (f"  {name} ({p.count:,}): p50 {seconds(p.p50)}  p90 {seconds(p.p90)}  p95 {seconds(p.p95)}  "
            f"p99 {seconds(p.p99)}  max {seconds(p.max)}")


def render_summary(report: Report, by: str = "model") -> str:
    """The terminal summary of a ledger, grouped ``by`` model, tenant or pipeline."""
    lines = [f"ctxcomp report: {report.source}"]
    if report.since is not None:
        lines.append(f"since {when(report.since)}")
    if report.skipped:
        lines.append(f"skipped {report.skipped:,} bad line(s): {report.problems[0]}"
                     + (" ..." if report.skipped > 1 else ""))
    if report.empty:
        lines.append("no records" + (" in this period" if report.since is not None else " (the ledger is empty)"))
        return "\n".join(lines)
    t = report.totals
    lines.append(f"{t.requests:,} compressions and {report.usage.calls:,} LLM calls, "
                 f"{when(report.first)} to {when(report.last)}")
    if t.requests:
        lines += ["", *_group_table(report, by), "", "latency (seconds, as the caller saw it):"]
        lines += [_latency_line(name, p) for name, p in report.latency.items()]
        if report.stages:
            lines += ["", "stages (cache misses):", *_stage_table(report)]
    if report.usage.calls:
        lines += ["", *_audit_lines(report)]
    return "\n".join(lines)


def _group_table(report: Report, by: str) -> list[str]:
    groups = report.groups[by]
    rows = [(name or "(none)", *group_cells(totals)) for name, totals in top_groups(groups)]
    if len(groups) > MAX_ROWS:
        rows.append((f"... {len(groups) - MAX_ROWS} more", *[""] * len(GROUP_HEADER)))
    rows.append(("total", *group_cells(report.totals)))
    return _table((by, *GROUP_HEADER), rows)


def _stage_table(report: Report) -> list[str]:
    rows = [(s.name, f"{s.runs:,}", f"{s.tokens_in:,}", f"{s.tokens_out:,}", f"{s.seconds / s.runs:.3f}",
             f"{s.llm_tokens_in:,}/{s.llm_tokens_out:,}", known_money(s.llm_cost, s.llm_unpriced, s.runs))
            for s in report.stages]
    return _table(("stage", "runs", "tokens in", "tokens out", "mean s", "LLM tokens in/out", "LLM USD"), rows)


def _audit_lines(report: Report) -> list[str]:
    u, cfg = report.usage, report.audit_config
    lines = [f"LLM usage: {u.calls:,} calls, {u.input_tokens:,} input and {u.output_tokens:,} output tokens billed, "
             f"{known_money(u.cost, u.unpriced, u.calls)}",
             f"usage audit (billed input tokens vs ctxcomp's count; flagged above "
             f"max({cfg.min_tokens} tokens, {cfg.tolerance:.0%})):"]
    rows = []
    for row in report.audit:
        worst = row.worst
        worst_text = (f"{worst.reported:,} billed vs {worst.expected:,} sent ({worst.difference:+,})"
                      if worst is not None else "-")
        rows.append((row.provider or "?", row.model, f"{row.calls:,}", f"{row.checked:,}", f"{row.flagged:,}",
                     worst_text))
    return lines + _table(("provider", "model", "calls", "checked", "flagged", "largest difference"), rows)
