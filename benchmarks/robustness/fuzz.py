"""Coverage-guided fuzzing (atheris / libFuzzer) of the parsers that read untrusted bytes.

Targets:
  splitter  ctxcomp.text: split_sentences / word_spans on any Unicode text. Every span is
            in order and inside the text, bounded (max_chars; MAX_WORD_CHARS for words), and
            the spans cover every non-space character.
  jsonl     ctxcomp.io.read_requests on any bytes: it returns requests or raises
            InputError (with the line), nothing else.
  codec     ctxcomp.cache.codec.decode on any bytes, against a fixed request: it returns a
            context whose text is rebuilt from the request's chunk, or raises CorruptPayload.

Not part of CI (it runs until told to stop). One target in-process:

    pip install atheris
    python benchmarks/robustness/fuzz.py splitter -max_total_time=60 -rss_limit_mb=4096

All targets in turn, each in a child process, with a summary written as JSON:

    python benchmarks/robustness/fuzz.py all --seconds 120 --out benchmarks/results/fuzz.json

A crash makes libFuzzer stop and write ``crash-<sha1>`` with the input; rerun the target
with that file as its argument to reproduce.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGETS = ("splitter", "jsonl", "codec")
SEEDS = {
    "splitter": ["Dr. Smith arrived. He sat down!", "東京は日本の首都です。人口は約1400万人！", "กรุงเทพมหานคร เป็นเมือง",
                 '{"a":[1,2,{"b":"c"}]}', "QUJDRA==" * 20, "👨\u200d👩\u200d👧 e\u0301"],
    "jsonl": ['{"text": "a b c", "id": 1}\n{"text": "d"}\n', '{"query": "q", "chunks": [{"text": "x"}]}\n'],
}


def _splitter(data: bytes) -> None:
    import atheris

    from ctxcomp.text import MAX_WORD_CHARS, split_sentences, word_spans

    fdp = atheris.FuzzedDataProvider(data)
    max_chars = fdp.ConsumeIntInRange(1, 500)
    text = fdp.ConsumeUnicodeNoSurrogates(len(data))
    visible = "".join(text.split())
    for spans, bound in ((split_sentences(text, max_chars), max_chars), (word_spans(text), MAX_WORD_CHARS)):
        prev = 0
        for start, end in spans:
            assert prev <= start < end <= len(text) and end - start <= bound, (start, end, bound)
            prev = end
        assert "".join("".join(text[s:e] for s, e in spans).split()) == visible


def _jsonl(data: bytes) -> None:
    from ctxcomp.errors import InputError
    from ctxcomp.io import read_requests

    with tempfile.NamedTemporaryFile(suffix=".jsonl", delete=False) as fh:
        fh.write(data)
    try:
        read_requests(fh.name)
    except InputError:
        pass
    finally:
        os.unlink(fh.name)


_REQUEST = None


def _codec(data: bytes) -> None:
    global _REQUEST
    from ctxcomp.cache.codec import CorruptPayload, decode
    from ctxcomp.tokens import get_counter
    from ctxcomp.types import Chunk

    if _REQUEST is None:
        _REQUEST = [Chunk("alpha beta gamma. delta epsilon.", id="a"), Chunk("東京は日本の首都です。", id="b")]
    try:
        ctx = decode(data, _REQUEST, counter=get_counter("gpt-4o-mini"), model="gpt-4o-mini").context
    except CorruptPayload:
        return
    sources = {c.id: c.text for c in _REQUEST}
    for kept in ctx.chunks:
        assert all(0 <= s < e <= len(sources[kept.source_id]) for s, e in kept.spans)


def fuzz_one(target: str, argv: list[str]) -> None:
    import atheris

    with atheris.instrument_imports(include=["ctxcomp"]):
        import ctxcomp.cache.codec
        import ctxcomp.io
        import ctxcomp.text  # noqa: F401
    corpus = Path(tempfile.mkdtemp(prefix=f"fuzz-{target}-"))
    for i, seed in enumerate(SEEDS.get(target, [])):
        (corpus / f"seed{i}").write_bytes(seed.encode("utf-8"))
    if target == "codec":
        from ctxcomp.cache.codec import encode
        from ctxcomp.compressors.truncate import TruncateCompressor
        from ctxcomp.types import Budget, Chunk

        chunks = [Chunk("alpha beta gamma. delta epsilon.", id="a"), Chunk("東京は日本の首都です。", id="b")]
        (corpus / "seed0").write_bytes(encode(TruncateCompressor().compress("", chunks, Budget(max_tokens=5)), 0.1))
    fn = {"splitter": _splitter, "jsonl": _jsonl, "codec": _codec}[target]
    atheris.Setup([sys.argv[0], *argv, str(corpus)], fn)
    atheris.Fuzz()


def run_all(seconds: int, out: Path | None) -> int:
    results = {}
    for target in TARGETS:
        started = time.perf_counter()
        proc = subprocess.run([sys.executable, __file__, target, f"-max_total_time={seconds}", "-rss_limit_mb=4096", "-timeout=10",
                               "-print_final_stats=1"], capture_output=True, text=True)
        log = proc.stderr
        runs = re.findall(r"Done (\d+) runs in (\d+) second", log)
        cov = re.findall(r"cov: (\d+)", log)
        results[target] = {"returncode": proc.returncode, "runs": int(runs[-1][0]) if runs else None,
                           "seconds": round(time.perf_counter() - started, 1), "edges_covered": int(cov[-1]) if cov else None,
                           "crashed": proc.returncode != 0, "tail": log.strip().splitlines()[-3:]}
        print(target, json.dumps(results[target]), file=sys.stderr)
    if out:
        out.write_text(json.dumps({"command": f"python benchmarks/robustness/fuzz.py all --seconds {seconds}",
                                   "targets": results}, indent=2, ensure_ascii=False) + "\n")
    return 1 if any(r["crashed"] for r in results.values()) else 0


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in (*TARGETS, "all"):
        print(__doc__, file=sys.stderr)
        return 2
    if sys.argv[1] == "all":
        seconds = int(sys.argv[sys.argv.index("--seconds") + 1]) if "--seconds" in sys.argv else 60
        out = Path(sys.argv[sys.argv.index("--out") + 1]) if "--out" in sys.argv else None
        return run_all(seconds, out)
    fuzz_one(sys.argv[1], sys.argv[2:])
    return 0


if __name__ == "__main__":
    sys.exit(main())
