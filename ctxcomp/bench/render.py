"""Render ``benchmarks/results/*.json`` into README.md between the results markers.

Everything between ``<!-- results:start -->`` and ``<!-- results:end -->`` is generated:
one section per results file of a known suite (sorted by file name), with the command
that produced it, the machine, the table and the plot (a PNG with the same stem).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ctxcomp.bench.report import markdown_table
from ctxcomp.errors import InputError

START = "<!-- results:start -->"
END = "<!-- results:end -->"
SUITES = {"nq": "Multi-document QA (NQ, 20 passages)", "needle": "Needle in a haystack",
          "locomo": "LoCoMo conversation memory"}
GROUP_BY = {"needle": ("length",)}

NOTES = (
    "Model-free metrics (`ctxcomp.bench.metrics`): *answer recall* = a normalized gold answer "
    "still occurs in the compressed text; *gold recall* = the same, counting only text kept from "
    "the gold passage (provenance; – where a method has none); *evidence recall* = share of gold "
    "chunks (LoCoMo: evidence turns) with at least half their characters kept; *ratio achieved* = median "
    "tokens in / tokens out with the target tokenizer (gpt-4o-mini's o200k); *over budget* = "
    "outputs longer than the budget; latencies are wall seconds per compression on the machine "
    "named (shared CPU cores: latencies across runs are not comparable, within a run they are); "
    "peak RSS is the process's highest resident memory while the method ran (with `--interleave` every "
    "model stays loaded, so it is the whole process's). LLMLingua's `target_token` is counted with its "
    "own tokenizer, so it can overshoot the budget; its output has no provenance."
)


def _section(path: Path, doc: dict[str, Any], readme_dir: Path) -> list[str]:
    suite = doc.get("suite", "")
    env = doc.get("env", {})
    rows = doc.get("results", [])
    lines = [f"### {SUITES.get(suite, suite)}: `{path.name}`", ""]
    data = doc.get("data", {})
    if isinstance(data, dict) and data.get("examples") is not None:
        lines.append(f"{data['examples']} examples from `{data.get('path', '')}`.")
    for run in env.get("runs") or [env]:  # merged results list every run's command
        lines.append(f"Command: `{run.get('command', '?')}`  ")
    machine = f"{env.get('cpu_count', '?')} CPUs, load {env.get('load_average_1m', '?')}"
    lines.append(f"Run {env.get('date_utc', '?')} at commit `{env.get('git_commit', '?')}`, {machine}"
                 + ("" if env.get("finished", True) else " (**partial run**)") + ".")
    lines += ["", markdown_table(rows, GROUP_BY.get(suite, ())), ""]
    png = path.with_suffix(".png")
    if png.is_file():
        rel = os.path.relpath(png, readme_dir)
        lines += [f"![{suite} results]({rel})", ""]
    return lines


def _num(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "–" if value is None else str(value)
    return f"{value:,.2f}" if isinstance(value, float) and abs(value) < 1000 else f"{value:,.0f}"


def _cache_section(path: Path, doc: dict[str, Any]) -> list[str]:
    """The ``cache`` suite (ctxcomp.bench.cache): hit/miss latency and memory per backend."""
    env = doc.get("environment", doc.get("env", {}))
    settings = doc.get("settings", {})
    lines = [f"### Context cache: `{path.name}`", "",
             f"Command: `{env.get('command', '?')}`  ",
             f"Run {env.get('date_utc', '?')} at commit `{env.get('git_commit', '?')}`, "
             f"{env.get('cpu_count', '?')} CPUs, load {env.get('load_average_1m', '?')}; compressor "
             f"`{settings.get('compressor', '?')}`, budget {settings.get('budget', '?')} tokens.", "",
             "| backend | miss p50 ms | hit p50 ms | hit p99 ms | payload bytes | bytes / entry |",
             "|---|---:|---:|---:|---:|---:|"]
    memory = doc.get("memory_per_entry", {})
    for name, backend in sorted(doc.get("backends", {}).items()):
        miss, hit = backend.get("miss", {}), backend.get("hit", {})
        lines.append(f"| {name} | {_num(miss.get('p50_ms'))} | {_num(hit.get('p50_ms'))} | {_num(hit.get('p99_ms'))} "
                     f"| {_num(backend.get('payload_bytes'))} | {_num(memory.get(name, {}).get('bytes_per_entry'))} |")
    load = doc.get("throughput") or {}
    if load.get("requests_per_s") is not None:
        lines.append("")
        lines.append(f"Throughput (hits, {load.get('processes')} processes x {load.get('clients_per_process')} "
                     f"clients): {_num(load['requests_per_s'])} requests/s, p50 "
                     f"{_num(load.get('latency_under_load', {}).get('p50_ms'))} ms under load.")
    return [*lines, ""]


def render(results: Path, readme_dir: Path) -> str:
    """The generated region (without the markers) for the result files in ``results``."""
    lines = ["", NOTES, ""]
    found = False
    docs = []
    for path in sorted(results.glob("*.json")):
        try:
            docs.append((path, json.loads(path.read_text(encoding="utf-8"))))
        except (OSError, json.JSONDecodeError) as exc:
            raise InputError(f"cannot read results file {path}: {exc}") from exc
    order = [*SUITES, "cache"]
    rank = {suite: i for i, suite in enumerate(order)}
    docs.sort(key=lambda item: (rank.get(str(item[1].get("suite")), len(order)) if isinstance(item[1], dict)
                                else len(order), item[0].stem != item[1].get("suite"), item[0].name))
    for path, doc in docs:
        if isinstance(doc, dict) and doc.get("suite") == "cache":
            found = True
            lines += _cache_section(path, doc)
        elif isinstance(doc, dict) and doc.get("suite") in SUITES:
            found = True
            lines += _section(path, doc, readme_dir)
    if not found:
        lines += ["No results yet: run `make bench`.", ""]
    return "\n".join(lines)


def update_readme(readme: Path, results: Path, check: bool = False) -> bool:
    """Replace the results region of ``readme``; returns whether it changed.

    Raises:
        InputError: the README or its markers are missing.
    """
    try:
        text = readme.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"README not found: {readme}") from None
    start, end = text.find(START), text.find(END)
    if start < 0 or end < start:
        raise InputError(f"{readme} has no '{START}' ... '{END}' region")
    new = text[: start + len(START)] + "\n" + render(results, readme.parent) + "\n" + text[end:]
    if new == text:
        return False
    if not check:
        readme.write_text(new, encoding="utf-8")
    return True
