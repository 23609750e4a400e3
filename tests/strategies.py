"""Hypothesis strategies for hostile-but-valid input: every script, structure and size.

* :func:`scripts`: text in Latin, CJK (Chinese, Japanese), Thai, Arabic, Devanagari, emoji
  (ZWJ sequences, skin tones, flags) and combining marks, mixed within one text.
* :func:`structures`: JSON (pretty and minified), Markdown, source code, base64, URLs,
  long unbroken runs.
* :func:`sized`: one of the above repeated to a size in a tier of 0, 10, 1k, 10k, 100k or
  1M characters (up to ``max_chars``), so a handful of examples reach the sizes where bugs
  live without hypothesis having to build megabytes character by character.
* :func:`chunk_lists`: lists of such texts as request chunks.

Imported by tests as ``from tests.strategies import ...``.
"""

from __future__ import annotations

import base64
import json

from hypothesis import strategies as st

_ALPHABETS = {
    "latin": "abcdefghijklmnopqrstuvwxyzABCDEFGHIJ  .,;:!?'-()0123456789éüñçß",
    "chinese": "北京是中华人民共和国的首都也全国政治文化中心长城黄河流经九个省区。，、！？",
    "japanese": "東京は日本の首都でありひらがなカタカナ漢字を使う。、「」！？ー",
    "thai": "กขคงจฉชซญดตถทนบปผพฟภมยรลวศษสหอฮะาิีึืุูเแโใไ่้๊๋ ",
    "arabic": "ابتثجحخدذرزسشصضطظعغفقكلمنهوي ،؟.",
    "devanagari": "अआइईउऊएऐओऔकखगघचछजझटठडढणतथदधनपफबभमयरलवशसह।ािीुूेैोौं ",
    "combining": "a\u0301e\u0300o\u0302\u0308\u0327 ",
}
_EMOJI = ["👍", "👍🏽", "👨\u200d👩\u200d👧", "🇯🇵", "😀", "❤\ufe0f", "🧑\u200d🦰", " "]


@st.composite
def scripts(draw: st.DrawFn, max_size: int = 300) -> str:
    """Text mixing a few scripts (each a run of its own alphabet)."""
    parts = draw(st.lists(st.sampled_from([*sorted(_ALPHABETS), "emoji"]), min_size=1, max_size=4))
    out = []
    for name in parts:
        if name == "emoji":
            out.append("".join(draw(st.lists(st.sampled_from(_EMOJI), max_size=20))))
        else:
            out.append(draw(st.text(alphabet=_ALPHABETS[name], max_size=max_size // len(parts))))
    return " ".join(out)


_JSON_LEAVES = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.text(max_size=20))
_JSON = st.recursive(_JSON_LEAVES, lambda inner: st.one_of(
    st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=8), inner, max_size=5)), max_leaves=30)


@st.composite
def structures(draw: st.DrawFn) -> str:
    """Structured text that has no sentences: JSON, Markdown, code, base64, URLs."""
    kind = draw(st.sampled_from(["json", "minified_json", "markdown", "code", "base64", "url", "run"]))
    if kind in ("json", "minified_json"):
        value = draw(_JSON)
        return json.dumps(value, indent=None if kind == "minified_json" else 2,
                          separators=(",", ":") if kind == "minified_json" else None, ensure_ascii=False)
    if kind == "markdown":
        words = draw(st.lists(st.text(alphabet=_ALPHABETS["latin"], min_size=1, max_size=10), min_size=1,
                              max_size=12))
        return f"# {words[0]}\n\n- " + "\n- ".join(words) + "\n\n| a | b |\n|---|---|\n| 1 | 2 |\n"
    if kind == "code":
        name = draw(st.text(alphabet="abcxyz_", min_size=1, max_size=8))
        return f"def {name}(x):\n    return {{'k': [x, x * 2]}}  # note\n\nprint({name}(3))\n"
    if kind == "base64":
        return base64.b64encode(draw(st.binary(max_size=600))).decode()
    if kind == "url":
        path = draw(st.text(alphabet="abc123/-_.", max_size=120))
        return f"https://example.com/{path}?q={path[:20]}&api_version=2"
    return draw(st.sampled_from("x0=/")) * draw(st.integers(1, 2000))


def texts(max_size: int = 300) -> st.SearchStrategy[str]:
    """Any of :func:`scripts` or :func:`structures`."""
    return st.one_of(scripts(max_size), structures())


@st.composite
def sized(draw: st.DrawFn, max_chars: int = 1_000_000) -> str:
    """A text of :func:`texts` repeated (with a space) to a drawn size in [0, max_chars]."""
    base = draw(texts())
    tiers = [t for t in (0, 10, 1_000, 10_000, 100_000, 1_000_000) if t <= max_chars]
    target = min(max_chars, draw(st.sampled_from(tiers)) + draw(st.integers(0, 999)))
    if not base or target == 0:
        return base[:target]
    reps = max(1, target // (len(base) + 1))
    return " ".join([base] * reps)[:max_chars]


def chunk_lists(max_chunks: int = 8, max_size: int = 300) -> st.SearchStrategy[list[str]]:
    """Lists of chunk texts, each a script mix or a structure."""
    return st.lists(texts(max_size), min_size=1, max_size=max_chunks)
