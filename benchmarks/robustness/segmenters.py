"""Which word segmenter for unspaced scripts: ICU against the usual per-language libraries.

Measures, on the Chinese and Japanese passages of benchmarks/data/cjk_qa and a few Thai
sentences: word-boundary agreement (F1 of boundary positions) of ICU's dictionary-based
BreakIterator with jieba (zh), fugashi + unidic-lite (ja) and pythainlp newmm (th), the
time to segment 1 MB, the first-call setup time, and the answer-boundary rate (the share
of cjk_qa answers that start and end on a word boundary: what a word-level cut needs).

    pip install pyicu-wheels jieba fugashi unidic-lite pythainlp   # in a scratch target
    python benchmarks/robustness/segmenters.py --out benchmarks/results/segmenters.json

Installed sizes (``du`` of the installed package folders) are passed in with --sizes.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
THAI = ("กรุงเทพมหานครเป็นเมืองหลวงและนครที่มีประชากรมากที่สุดของประเทศไทย แม่น้ำเจ้าพระยาไหลผ่านกลางเมือง "
        "ประเทศไทยมีพระมหากษัตริย์เป็นประมุข ภาษาไทยเป็นภาษาราชการ เชียงใหม่เป็นเมืองใหญ่ทางภาคเหนือ")


def _bounds(tokens: list[str]) -> set[int]:
    out, pos = set(), 0
    for t in tokens:
        pos += len(t)
        out.add(pos)
    return out


def _f1(a: list[str], b: list[str]) -> float:
    x, y = _bounds(a), _bounds(b)
    return round(2 * len(x & y) / (len(x) + len(y)), 3)


def _icu(text: str) -> list[str]:
    import icu

    bi = icu.BreakIterator.createWordInstance(icu.Locale.getRoot())
    bi.setText(text)
    out, prev = [], 0
    for b in bi:
        out.append(text[prev:b])
        prev = b
    return out


def _seconds_per_mb(fn: Callable[[str], list[str]], text: str) -> float:
    big = text * max(1, 200_000 // len(text.encode("utf-8")))
    started = time.perf_counter()
    fn(big)
    return round((time.perf_counter() - started) / (len(big.encode("utf-8")) / 1e6), 3)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--sizes", default="", help="name=MB,... installed sizes measured with du")
    args = parser.parse_args()
    rows = [json.loads(line) for line in (REPO / "benchmarks/data/cjk_qa/passages.jsonl").read_text("utf-8").splitlines()]
    texts = {"zh": "".join(r["text"] for r in rows if r["lang"] == "zh"),
             "ja": "".join(r["text"] for r in rows if r["lang"] == "ja"), "th": THAI}
    result: dict = {"command": "python benchmarks/robustness/segmenters.py --out benchmarks/results/segmenters.json",
                    "installed_mb": dict(kv.split("=") for kv in args.sizes.split(",") if kv)}
    started = time.perf_counter()
    _icu("预热")
    result["setup_s"] = {"icu": round(time.perf_counter() - started, 3)}
    peers: dict[str, tuple[str, Callable[[str], list[str]]]] = {}
    started = time.perf_counter()
    import jieba

    jieba.lcut("预热")
    result["setup_s"]["jieba"] = round(time.perf_counter() - started, 3)
    peers["zh"] = ("jieba", jieba.lcut)
    started = time.perf_counter()
    import fugashi

    tagger = fugashi.Tagger()
    result["setup_s"]["fugashi+unidic-lite"] = round(time.perf_counter() - started, 3)
    peers["ja"] = ("fugashi+unidic-lite", lambda s: [w.surface for w in tagger(s)])
    started = time.perf_counter()
    from pythainlp.tokenize import word_tokenize

    word_tokenize("ทดสอบ")
    result["setup_s"]["pythainlp"] = round(time.perf_counter() - started, 3)
    peers["th"] = ("pythainlp", lambda s: word_tokenize(s, keep_whitespace=True))
    for lang, text in texts.items():
        name, fn = peers[lang]
        result[lang] = {"peer": name, "boundary_f1_icu_vs_peer": _f1(_icu(text), fn(text)),
                        "s_per_mb": {"icu": _seconds_per_mb(_icu, text), name: _seconds_per_mb(fn, text)}}
        if lang in ("zh", "ja"):
            for seg_name, seg in (("icu", _icu), (name, fn)):
                ok = 0
                answers = [(r["text"], a) for r in rows if r["lang"] == lang for a in r["answers"]]
                for passage, answer in answers:
                    b = _bounds(seg(passage)) | {0}
                    start = passage.index(answer)
                    ok += start in b and start + len(answer) in b
                result[lang].setdefault("answer_boundary_rate", {})[seg_name] = round(ok / len(answers), 3)
    print(json.dumps(result, indent=2, ensure_ascii=False))
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
