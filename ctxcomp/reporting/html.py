"""The self-contained HTML report of a ledger (``ctxcomp report --html out.html``).

One file, no network: charts are SVG images embedded as data URIs, the style and the
small table-sorting script are inline, and a Content-Security-Policy forbids the page
any fetch, so it opens the same offline, from a mail attachment or a CI artifact.
"""

from __future__ import annotations

import base64
import html
import time
from collections.abc import Sequence
from pathlib import Path

from ctxcomp.reporting.aggregate import Percentiles, Report
from ctxcomp.reporting.text import (
    GROUP_HEADER,
    MAX_ROWS,
    group_cells,
    known_money,
    ratio,
    seconds,
    top_groups,
    when,
)

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'"

STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 1180px; color: #1d232a; padding: 0 1rem; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; } h2 { margin-top: 2.2rem; border-bottom: 1px solid #ddd; }
.meta { color: #5c6670; } .warn { background: #fff4e0; border-left: 4px solid #e39b22; padding: .5rem 1rem; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(170px, 1fr)); gap: .8rem; }
.card { background: #f4f6f8; border-radius: 8px; padding: .7rem 1rem; }
.card b { display: block; font-size: 1.35rem; } .card span { color: #5c6670; font-size: .85rem; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(520px, 1fr)); gap: 1rem; }
figure { margin: 0; background: #fff; border: 1px solid #e3e6ea; border-radius: 8px; padding: .5rem; }
figure img { width: 100%; height: auto; display: block; } figcaption { color: #5c6670; font-size: .85rem; }
table { border-collapse: collapse; width: 100%; margin: .6rem 0 1.2rem; font-variant-numeric: tabular-nums; }
th, td { padding: .3rem .6rem; border-bottom: 1px solid #e3e6ea; text-align: right; white-space: nowrap; }
th:first-child, td:first-child { text-align: left; } th { cursor: pointer; background: #f4f6f8; }
tr.total td { font-weight: 600; border-top: 2px solid #aab; } tr.flagged td { background: #fdecea; }
"""

# Click a header to sort its table (numbers by value, the total row stays last).
SCRIPT = """
document.querySelectorAll("table.sortable th").forEach(function (th, col) {
  th.addEventListener("click", function () {
    var body = th.closest("table").tBodies[0];
    var rows = Array.prototype.slice.call(body.rows).filter(function (r) { return !r.classList.contains("total"); });
    var total = body.querySelector("tr.total");
    var down = th.dataset.order !== "desc";
    th.dataset.order = down ? "desc" : "asc";
    var key = function (row) {
      var text = row.cells[th.cellIndex].textContent.replace(/[$,%x]/g, "");
      var value = parseFloat(text);
      return isNaN(value) ? text : value;
    };
    rows.sort(function (a, b) {
      var x = key(a), y = key(b);
      return (x < y ? -1 : x > y ? 1 : 0) * (down ? -1 : 1);
    });
    rows.forEach(function (r) { body.appendChild(r); });
    if (total) { body.appendChild(total); }
  });
});
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]], total: tuple[str, ...] | None = None,
           flagged: set[int] | None = None) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = []
    for i, row in enumerate(rows):
        css = ' class="flagged"' if flagged and i in flagged else ""
        body.append(f"<tr{css}>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>")
    if total is not None:
        body.append('<tr class="total">' + "".join(f"<td>{_e(c)}</td>" for c in total) + "</tr>")
    return f'<table class="sortable"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _cards(report: Report) -> str:
    t = report.totals
    p = report.latency["all"]
    hit_rate = t.cache_hits / t.requests if t.requests else 0.0
    cards = [
        (f"{t.tokens_saved:,}", "tokens saved"),
        (known_money(t.net_saved, t.net_unknown, t.requests), "saved, net of compressor cost"),
        (ratio(t.ratio), "overall compression ratio"),
        (f"{t.requests:,}", "compressions"),
        (f"{hit_rate:.1%}", "cache hit rate"),
        (f"{seconds(p.p50)} / {seconds(p.p95)} s", "latency p50 / p95"),
    ]
    return '<div class="cards">' + "".join(f"<div class='card'><b>{_e(v)}</b><span>{_e(k)}</span></div>"
                                           for v, k in cards) + "</div>"


def _charts(report: Report) -> str:
    from ctxcomp.reporting.charts import all_charts

    figures = []
    for chart_id, (title, svg) in all_charts(report).items():
        data = base64.b64encode(svg.encode("utf-8")).decode("ascii")
        figures.append(f'<figure data-chart="{_e(chart_id)}"><img alt="{_e(title)}" '
                       f'src="data:image/svg+xml;base64,{data}"><figcaption>{_e(title)}</figcaption></figure>')
    return f'<div class="charts">{"".join(figures)}</div>'


def _groups(report: Report) -> str:
    parts = []
    for dim in ("model", "tenant", "pipeline"):
        groups = report.groups[dim]
        rows = [(name, *group_cells(totals)) for name, totals in top_groups(groups, 10 * MAX_ROWS)]
        more = f"<p class='meta'>{len(groups) - len(rows)} more not shown.</p>" if len(groups) > len(rows) else ""
        parts.append(f"<h3>By {dim}</h3>" + _table((dim, *GROUP_HEADER), rows, ("total", *group_cells(report.totals)))
                     + more)
    return "".join(parts)


def _latency(report: Report) -> str:
    def row(name: str, p: Percentiles) -> tuple[str, ...]:
        return (name, f"{p.count:,}", seconds(p.p50), seconds(p.p90), seconds(p.p95), seconds(p.p99), seconds(p.max))

    rows = [row(k, v) for k, v in report.latency.items()]
    rows += [row(f"model {k}", v) for k, v in sorted(report.latency_by["model"].items())[:MAX_ROWS]]
    rows += [row(f"pipeline {k}", v) for k, v in sorted(report.latency_by["pipeline"].items())[:MAX_ROWS]]
    return _table(("requests", "count", "p50 s", "p90 s", "p95 s", "p99 s", "max s"), rows)


def _stages(report: Report) -> str:
    if not report.stages:
        return "<p class='meta'>No stage ran (every request was a cache hit or already fit its budget).</p>"
    rows = [(s.name, f"{s.runs:,}", f"{s.tokens_in:,}", f"{s.tokens_out:,}", f"{s.tokens_in - s.tokens_out:,}",
             f"{s.seconds / s.runs:.3f}", f"{s.llm_tokens_in:,}", f"{s.llm_tokens_out:,}",
             known_money(s.llm_cost, s.llm_unpriced, s.runs)) for s in report.stages]
    return _table(("stage", "runs", "tokens in", "tokens out", "saved", "mean s", "LLM tokens in", "LLM tokens out",
                   "LLM USD"), rows)


def _audit(report: Report) -> str:
    u, cfg = report.usage, report.audit_config
    if not u.calls:
        return "<p class='meta'>No LLM usage recorded (add a ledger callback to your LLM client to audit it).</p>"
    rows, flagged = [], set()
    for i, r in enumerate(report.audit):
        w = r.worst
        worst = f"{w.reported:,} billed vs {w.expected:,} sent ({w.difference:+,})" if w is not None else "-"
        rows.append((r.provider or "?", r.model, f"{r.calls:,}", f"{r.checked:,}", f"{r.unchecked:,}",
                     f"{r.flagged:,}", f"{r.reported:,}", f"{r.expected:,}", worst))
        if r.flagged:
            flagged.add(i)
    intro = (f"<p>{u.calls:,} LLM calls billed {u.input_tokens:,} input and {u.output_tokens:,} output tokens "
             f"({_e(known_money(u.cost, u.unpriced, u.calls))}). Billed input tokens are compared with ctxcomp's own "
             f"count of what was sent; a call is flagged when they differ by more than "
             f"max({cfg.min_tokens} tokens, {cfg.tolerance:.0%}).</p>")
    return intro + _table(("provider", "model", "calls", "checked", "unchecked", "flagged", "billed in",
                           "counted in", "largest difference"), rows, flagged=flagged)


def render_html(report: Report) -> str:
    """The report as one self-contained HTML page."""
    warnings = "".join(f"<p class='warn'>{_e(p)}</p>" for p in report.problems)
    period = f"{when(report.first)} to {when(report.last)}" if report.first is not None else "no records"
    since = f", since {when(report.since)}" if report.since is not None else ""
    head = (f"<h1>ctxcomp savings report</h1><p class='meta'>{_e(report.source)}: {_e(period)}{_e(since)}; "
            f"generated {_e(when(time.time()))}</p>{warnings}")
    if report.empty:
        body = "<p class='empty'>The ledger has no records" + (" in this period" if since else "") + ".</p>"
    else:
        body = (_cards(report) + "<h2>Savings, ratios, latency and cache</h2>" + _charts(report)
                + "<h2>Totals</h2>" + _groups(report) + "<h2>Latency</h2>" + _latency(report)
                + "<h2>Stages</h2>" + _stages(report) + "<h2>Usage audit</h2>" + _audit(report))
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>ctxcomp report: {_e(report.source)}</title><style>{STYLE}</style></head>"
            f"<body>{head}{body}<script>{SCRIPT}</script></body></html>\n")


def write_html(report: Report, path: str | Path) -> Path:
    """Write :func:`render_html` to ``path`` (folders created); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(report), encoding="utf-8")
    return path
