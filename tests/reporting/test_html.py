"""The HTML report rendered in headless Chromium: plots render, nothing is fetched, the
console stays clean, and a screenshot is taken."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ctxcomp.reporting.aggregate import build_report
from ctxcomp.reporting.html import render_html, write_html
from ctxcomp.reporting.ledger import Ledger
from ctxcomp.reporting.records import CompressionRecord
from ctxcomp.reporting.usage import make_usage
from ctxcomp.types import StageReport

pytest.importorskip("matplotlib")
CHARTS = {"tokens-by-model", "usd-by-model", "tokens-by-tenant", "usd-by-tenant", "ratios", "latency", "cache"}


def write_sample_ledger(path: Path, records: int = 600, days: float = 2.0) -> None:
    """A realistic ledger: three models (one unpriced), four tenants, cache hits, a
    summarizing stage with LLM cost, billed usage with one planted discrepancy."""
    rng = random.Random(7)
    start = 1_760_000_000.0
    with Ledger(path) as ledger:
        for i in range(records):
            stamp = start + i * days * 86400 / records
            tokens_in = rng.randint(1500, 4000)
            tokens_out = tokens_in // rng.choice([2, 4, 6, 10])
            hit = rng.random() < 0.3
            stages = (StageReport("embedding", tokens_in, tokens_out * 2, 0.1),
                      StageReport("summarize", tokens_out * 2, tokens_out, 0.4, llm_tokens_in=300,
                                  llm_tokens_out=40, llm_cost=300 * 0.15e-6 + 40 * 0.6e-6))
            record = CompressionRecord.from_counts(
                rng.choice(["gpt-4o-mini", "gpt-4.1", "mystery-llm"]), tokens_in, tokens_out,
                tenant=rng.choice(["acme", "globex", "initech", "umbrella"]), seconds=0.002 if hit else 0.5,
                cache_hit=hit, pipeline=rng.choice(["p-1", "p-2"]), stages=stages, timestamp=stamp)
            ledger.add(record)
            if i % 20 == 0:
                extra = 500 if i == 100 else 0
                ledger.record_usage(make_usage("gpt-4o-mini", tokens_out + 50 + extra, 100, provider="openai",
                                               expected_input_tokens=tokens_out + 50, timestamp=stamp))


def test_html_is_self_contained(tmp_path: Path) -> None:
    write_sample_ledger(tmp_path / "l.jsonl", records=120)
    page = render_html(build_report(str(tmp_path / "l.jsonl")))
    assert "http://" not in page and "https://" not in page.replace("http://www.w3.org", "")
    assert page.count('src="data:image/svg+xml;base64,') == len(CHARTS)
    assert "unknown" in page  # the unpriced model's dollars
    assert 'class="flagged"' in page  # the planted discrepancy


def test_report_renders_in_chromium(tmp_path: Path, browser: Any) -> None:
    write_sample_ledger(tmp_path / "l.jsonl")
    html = write_html(build_report(str(tmp_path / "l.jsonl")), tmp_path / "report.html")
    browser.open(html.as_uri())
    charts = browser.evaluate("""Array.from(document.querySelectorAll("figure[data-chart] img")).map(img => {
        const r = img.getBoundingClientRect(), k = window.devicePixelRatio;
        return {id: img.closest("figure").dataset.chart, complete: img.complete, w: img.naturalWidth,
                h: img.naturalHeight, shown: r.width,
                box: [r.left * k, (r.top + window.scrollY) * k, r.right * k, (r.bottom + window.scrollY) * k]}; })""")
    assert {c["id"] for c in charts} == CHARTS
    for chart in charts:  # every SVG decoded and laid out
        assert chart["complete"] and chart["w"] > 300 and chart["h"] > 150 and chart["shown"] > 300, chart
    assert browser.errors() == []
    assert all(url.startswith(("file://", "data:")) for url in browser.requests()), browser.requests()
    # The sorting script runs: sort the by-model table on "requests", both directions.
    order = browser.evaluate("""(() => { const t = document.querySelector("table.sortable");
        const col = () => Array.from(t.tBodies[0].rows).filter(r => !r.classList.contains("total"))
                                 .map(r => parseInt(r.cells[1].textContent.replace(/,/g, "")));
        t.tHead.rows[0].cells[1].click(); const down = col();
        t.tHead.rows[0].cells[1].click(); return [down, col()]; })()""")
    assert order[0] == sorted(order[0], reverse=True) and order[1] == sorted(order[1])
    shot = tmp_path / "report.png"
    browser.screenshot(shot)
    _check_screenshot(shot, {c["id"]: c["box"] for c in charts})
    assert browser.errors() == []


def _check_screenshot(path: Path, boxes: dict[str, list[float]]) -> None:
    """Each chart's area of the screenshot holds plotted colour, not a blank box."""
    from PIL import Image

    image = Image.open(path).convert("RGB")
    assert image.width >= 1000 and image.height > 2000  # the whole page, not the viewport
    for chart, box in boxes.items():
        pixels = np.asarray(image.crop(tuple(int(v) for v in box)), dtype=np.int16)  # type: ignore[arg-type]
        saturation = pixels.max(axis=2) - pixels.min(axis=2)  # grey axes and text have none
        assert (saturation > 60).mean() > 0.005, f"chart {chart} shows no plotted data in the screenshot"


def test_the_console_check_catches_errors(tmp_path: Path, browser: Any) -> None:
    """The harness is not blind: a fetch the CSP forbids and a script error both show."""
    page = render_html(build_report(str(_empty(tmp_path))))
    page = page.replace("</body>", '<img src="https://example.invalid/x.png"><script>undefinedCall()</script></body>')
    (tmp_path / "bad.html").write_text(page, encoding="utf-8")
    browser.open((tmp_path / "bad.html").as_uri())
    errors = browser.errors()
    assert any("undefinedCall" in e for e in errors), (errors, [e.get("method") for e in browser.events])
    assert any("Content Security Policy" in e or "example.invalid" in e for e in errors), errors


def _empty(tmp_path: Path) -> Path:
    path = tmp_path / "empty.jsonl"
    path.write_text("")
    return path


def test_empty_ledger_page(tmp_path: Path, browser: Any) -> None:
    html = write_html(build_report(str(_empty(tmp_path))), tmp_path / "empty.html")
    browser.open(html.as_uri())
    assert browser.evaluate("document.querySelector('p.empty').textContent") == "The ledger has no records."
    assert browser.evaluate("document.querySelectorAll('figure').length") == 0
    assert browser.errors() == []
