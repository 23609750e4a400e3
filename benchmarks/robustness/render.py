"""Render the robustness tables (benchmarks/results/robustness.json, cjk_recall.json) into
README.md between ``<!-- robustness:start -->`` and ``<!-- robustness:end -->``.

    python benchmarks/robustness/render.py            # rewrite the README block
    python benchmarks/robustness/render.py --print    # print it instead
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "benchmarks" / "results"
START, END = "<!-- robustness:start -->", "<!-- robustness:end -->"
ORDER = ("truncate", "embedding", "gemfilter")


def _cell(row: dict | None) -> str:
    if not row:
        return "–"
    if row.get("error"):
        return "error"
    flag = "" if row.get("non_empty", True) and row.get("within_budget", True) else " ⚠"
    return f"{row['s_per_mb']:.3g} s/MB, {row['peak_rss_mb']:.0f} MB (+{row['rss_rise_mb']:.0f}){flag}"


def _loads(runs: dict) -> str:
    values = [row.get("load_avg_1min") for rows in runs.values() for row in rows.values()]
    values = [v for v in values if v is not None]
    return f"{min(values):g}–{max(values):g}" if values else "unknown"


def throughput_table() -> list[str]:
    data = json.loads((RESULTS / "robustness.json").read_text())
    runs = data["runs"]
    sizes = ("10KB", "100KB", "1MB")
    lines = ["| compressor | input | " + " | ".join(sizes) + " |", "| --- | --- | " + " | ".join("---" for _ in sizes) + " |"]
    for name in [n for n in ORDER if n in runs] + sorted(set(runs) - set(ORDER)):
        for kind in ("prose", "cjk", "json", "base64"):
            cells = [_cell(runs[name].get(f"{kind}/{size}")) for size in sizes]
            lines.append(f"| `{name}` | {kind} | " + " | ".join(cells) + " |")
    s = data.get("settings", {})
    lines += ["", f"Each cell: time per MB of input (one `compress` call, ratio 4; median of 3 under 100 KB), "
              f"peak RSS of the process during the call and its rise over the RSS before it (models loaded "
              f"beforehand). Input in chunks of ~{s.get('chunk_bytes', 2000):,} bytes; segmenter `{s.get('segmenter')}`; "
              f"{s.get('cpu', '')}. ⚠ would mark an empty or over-budget output: there is none; "
              f"– is not measured yet. These rows ran at a 1-minute load average of {_loads(runs)} on the 2 "
              "cores (other jobs outside the bench lock): times are inflated several-fold, the model stages' "
              "most (a profile in the same conditions put all of `embedding`'s time in MiniLM's forward pass). "
              "Command: `flock /work/.bench.lock python benchmarks/robustness/throughput.py --compressor NAME "
              "--out benchmarks/results/robustness.json` (`robustness.json` has MB/s, tokens in/out and seconds)."]
    return lines


def recall_table() -> list[str]:
    data = json.loads((RESULTS / "cjk_recall.json").read_text())
    runs = {r["label"]: r for r in data["runs"]}
    lines = ["| method | ratio | answer recall before | after (zh / ja) | gold recall after | ratio achieved |",
             "| --- | --- | --- | --- | --- | --- |"]
    after, before = runs.get("after", {}).get("results", {}), runs.get("before", {}).get("results", {})
    for key, row in after.items():
        old = before.get(key, {}).get("answer_recall")
        lines.append(f"| `{row['method']}` | {row['ratio']:g}x | {old if old is not None else '–'} | "
                     f"**{row['answer_recall']:.3f}** ({row['answer_recall_zh']:.2f} / {row['answer_recall_ja']:.2f}) | "
                     f"{row['gold_recall']:.3f} | {row['ratio_achieved_median']} |")
    n = runs.get("after", {}).get("examples")
    lines += ["", f"{n} questions (15 Chinese, 15 Japanese; `benchmarks/data/cjk_qa`, original CC0 text), each "
              "with its gold passage among 9 distractors, ~"
              f"{runs.get('after', {}).get('tokens_in_median', 0):,.0f} o200k tokens of context (median). *Before* is the splitter "
              "this work replaced (commit d6023e4), *after* this branch, same examples and models. Command: "
              "`python benchmarks/robustness/cjk_recall.py --ratio 4,10 --out benchmarks/results/cjk_recall.json "
              "--label after` (`PYTHONPATH=<old checkout> ... --label before --merge` for the other column)."]
    return lines


def block() -> str:
    parts = [START, ""]
    if (RESULTS / "robustness.json").exists():
        parts += [*throughput_table(), ""]
    if (RESULTS / "cjk_recall.json").exists():
        parts += [*recall_table(), ""]
    return "\n".join([*parts, END])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--print", action="store_true")
    args = parser.parse_args()
    text = block()
    if args.print:
        print(text)
        return 0
    readme = REPO / "README.md"
    current = readme.read_text("utf-8")
    if START not in current:
        print(f"README.md has no {START} marker", file=sys.stderr)
        return 1
    head, rest = current.split(START, 1)
    tail = rest.split(END, 1)[1]
    readme.write_text(head + text + tail, "utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
