"""Prove that the splitter's output on English prose is unchanged (or show what changed).

The learned gemfilter scorer was fit on the spans ``ctxcomp.text`` produced when it was
trained, so a new splitter must give the same spans on ordinary English text. This script
hashes, for every passage of the dev slices (NQ-20 as ``title\\ntext`` and as text alone,
MuSiQue, the haystack essays), the spans of ``split_sentences`` (default and the small
``max_chars`` gemfilter uses for over-long chunks), ``word_spans`` and ``title_of``, and
compares the digests with ``benchmarks/results/splitter_identity.json``.

    python benchmarks/robustness/splitter_identity.py            # check (exit 1 on a change)
    python benchmarks/robustness/splitter_identity.py --write    # record the reference
    python benchmarks/robustness/splitter_identity.py --diff 5   # show 5 changed passages
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path

from ctxcomp.text import split_sentences, title_of, word_spans

REPO = Path(__file__).resolve().parents[2]
DATA = REPO.parent / "shared" / "data"
RESULT = REPO / "benchmarks" / "results" / "splitter_identity.json"
MAX_CHARS = (400, 120, 40)


def passages(data: Path) -> Iterator[tuple[str, str]]:
    """(dataset, text) for every dev passage that is present."""
    for name in ("nq20", "musique"):
        path = data / name / "dev.jsonl.gz"
        if not path.exists():
            continue
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            for line in fh:
                for ctx in json.loads(line)["ctxs"]:
                    yield name, f"{ctx['title']}\n{ctx['text']}"
                    yield name, ctx["text"]
    essays = data / "haystack" / "PaulGrahamEssays"
    for path in sorted(essays.glob("*.txt")) if essays.exists() else ():
        yield "haystack", path.read_text("utf-8")


PARTS = ("sentences", "words", "title")
HISTORY = (
    "sentences and title: unchanged from the splitter the shipped gemfilter scorer was fit with (every passage, "
    "every max_chars). words: differ from it on 40 of 12,000 NQ and 36 of 8,000 MuSiQue passages, those holding "
    "CJK text or a run over 64 characters (URLs), which word_spans now segments / cuts into bounded pieces "
    "(compared with --against a --dump of the old splitter)"
)


def fingerprint(text: str) -> list[object]:
    """Per part: the sentence spans (for each max_chars), the word spans, the title."""
    return [[split_sentences(text, max_chars=m) for m in MAX_CHARS], word_spans(text), title_of(text)]


def digests(data: Path) -> tuple[dict[str, dict[str, object]], dict[str, list[str]]]:
    sums: dict[str, dict[str, hashlib._Hash]] = {}
    counts: dict[str, int] = {}
    texts: dict[str, list[str]] = {}
    for name, text in passages(data):
        for part, value in zip(PARTS, fingerprint(text), strict=True):
            digest = sums.setdefault(name, {}).setdefault(part, hashlib.sha256())
            digest.update(hashlib.sha256(json.dumps(value).encode()).digest())
        counts[name] = counts.get(name, 0) + 1
        texts.setdefault(name, []).append(text)
    return {n: {"passages": counts[n], **{p: h.hexdigest() for p, h in sums[n].items()}} for n in sums}, texts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--write", action="store_true", help="record the reference digests")
    parser.add_argument("--diff", type=int, default=0, help="print this many changed passages (with --against)")
    parser.add_argument("--against", type=Path, help="a JSON of per-passage fingerprints from the old splitter")
    parser.add_argument("--dump", type=Path, help="write per-passage fingerprints here")
    args = parser.parse_args()
    found, texts = digests(args.data)
    if args.dump:
        args.dump.write_text(json.dumps({n: [fingerprint(t) for t in ts] for n, ts in texts.items()}))
    if args.write:
        RESULT.write_text(json.dumps({
            "what": "per dataset and part, SHA-256 over per-passage spans of split_sentences (max_chars 400/120/40), word_spans and title_of",
            "command": "python benchmarks/robustness/splitter_identity.py --write",
            "history": HISTORY,
            "datasets": found}, indent=2) + "\n")
        print(json.dumps(found, indent=2))
        return 0
    reference = json.loads(RESULT.read_text())["datasets"]
    changed = [f"{n}.{p}" for n, v in found.items() for p in PARTS if reference.get(n, {}).get(p) != v[p]]
    if args.against:
        old = json.loads(args.against.read_text())
        differ: dict[str, int] = {}
        for name, ts in texts.items():
            for text, before in zip(ts, old[name], strict=True):
                now = json.loads(json.dumps(fingerprint(text)))
                for part, a, b in zip(PARTS, now, before, strict=True):
                    if a != b:
                        differ[f"{name}.{part}"] = differ.get(f"{name}.{part}", 0) + 1
                        if sum(differ.values()) <= args.diff:
                            print(f"--- {name}.{part}: {text[:300]!r}")
        print("passages that differ:", json.dumps(differ))
    print(json.dumps({"checked": found, "changed": changed}, indent=2))
    return 1 if changed else 0


if __name__ == "__main__":
    sys.exit(main())
