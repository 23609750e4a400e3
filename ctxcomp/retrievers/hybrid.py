"""The embedded hybrid retriever: BM25 (bm25s) + dense (MiniLM), fused by reciprocal rank.

No service needed: the index lives in memory and, optionally, in a folder on disk
(``manifest.json`` with the config, the encoder revision and a SHA-256 per source file;
``chunks.jsonl``; ``vectors.npy``; ``bm25/``). Opening a folder corpus with an
``index_dir`` loads the saved index when every file's hash still matches, and rebuilds
it otherwise, re-embedding only chunks whose text changed.

Example:
    >>> index = HybridRetriever.from_folder("docs/", index_dir="docs.index")  # doctest: +SKIP
    >>> for chunk in index.retrieve("how do I reset my password", k=3): ...  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ctxcomp._deps import require
from ctxcomp.errors import ConfigError, InputError
from ctxcomp.models.sentence import DEFAULT_EMBEDDING_MODEL, load_encoder
from ctxcomp.retrievers.corpus import chunk_text, scan_folder, sha256
from ctxcomp.types import Chunk

log = logging.getLogger(__name__)

FORMAT_VERSION = 1


@dataclass(frozen=True)
class HybridConfig:
    """Settings of :class:`HybridRetriever`.

    Attributes:
        model: sentence-transformers spec of the dense encoder (shipped MiniLM by default).
        chunk_words: words per chunk when a folder is split (whole sentences).
        rrf_k: the reciprocal-rank-fusion constant (60, as in Cormack et al. 2009).
        depth: candidates each ranker contributes to the fusion.
        suffixes: file endings read from a folder.
        batch_size: texts per encoder call.
        device: torch device for the encoder (None: cuda > mps > cpu).
    """

    model: str = DEFAULT_EMBEDDING_MODEL
    chunk_words: int = 120
    rrf_k: int = 60
    depth: int = 50
    suffixes: tuple[str, ...] = (".txt", ".md")
    batch_size: int = 16
    device: str | None = None

    def __post_init__(self) -> None:
        for name in ("chunk_words", "rrf_k", "depth", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be an int >= 1, got {value!r}")
        if not self.suffixes:
            raise ConfigError("suffixes must name at least one file ending")

    def digest_fields(self) -> dict[str, Any]:
        """The settings that change the index (not batch size or device)."""
        data = asdict(self)
        for key in ("batch_size", "device", "rrf_k", "depth"):
            data.pop(key)
        data["suffixes"] = list(self.suffixes)
        return data


class HybridRetriever:
    """BM25 + dense retrieval over chunks, fused by reciprocal rank.

    Build with :meth:`from_texts` or :meth:`from_folder`, or load with :meth:`load`.
    :meth:`retrieve` returns :class:`~ctxcomp.Chunk` s whose ``score`` is the fused score
    and whose metadata adds ``bm25_rank`` / ``dense_rank`` (1-based; None: not a candidate).
    """

    def __init__(self, chunks: Sequence[Chunk], config: HybridConfig | None = None, *,
                 vectors: np.ndarray | None = None, files: Mapping[str, str] | None = None,
                 _bm25: Any = None) -> None:
        if not chunks:
            raise InputError("nothing to index: no chunk has text")
        ids = [c.id for c in chunks]
        if len(set(ids)) != len(ids):
            raise InputError("chunk ids must be unique")
        self.config = config or HybridConfig()
        self.chunks = list(chunks)
        self.files = dict(files or {})
        self._bm25s = require("bm25s", "models", "BM25 retrieval")
        self._bm25 = _bm25 if _bm25 is not None else self._build_bm25()
        self.vectors = vectors if vectors is not None else self.embed([c.text for c in self.chunks])
        if self.vectors.shape[0] != len(self.chunks):
            raise InputError("vectors and chunks differ in number")

    # -- construction ------------------------------------------------------------------
    @classmethod
    def from_texts(cls, texts: Sequence[str], *, ids: Sequence[str] | None = None,
                   metadatas: Sequence[Mapping[str, Any]] | None = None,
                   config: HybridConfig | None = None) -> HybridRetriever:
        """One chunk per text (already split by the caller); empty texts are skipped.

        Raises:
            InputError: not a list of str, lengths differ, or every text is empty.
        """
        if isinstance(texts, (str, bytes)) or not isinstance(texts, Sequence):
            raise InputError("texts must be a list of str")
        if any(not isinstance(t, str) for t in texts):
            raise InputError("every text must be a str")
        ids = [str(i) for i in ids] if ids is not None else [str(i) for i in range(len(texts))]
        metas = list(metadatas) if metadatas is not None else [{} for _ in texts]
        if len(ids) != len(texts) or len(metas) != len(texts):
            raise InputError("texts, ids and metadatas must have the same length")
        chunks = [Chunk(t, id=i, metadata=dict(m)) for t, i, m in zip(texts, ids, metas, strict=True) if t.strip()]
        return cls(chunks, config)

    @classmethod
    def from_folder(cls, folder: str | Path, *, index_dir: str | Path | None = None,
                    config: HybridConfig | None = None) -> HybridRetriever:
        """Index every .txt/.md file under ``folder``.

        With ``index_dir``: load the saved index if it was built from the same files
        (SHA-256 each) with the same settings; otherwise rebuild (reusing the vectors of
        unchanged chunks) and save it there.
        """
        config = config or HybridConfig()
        skip = Path(index_dir) if index_dir is not None else None
        sources = scan_folder(folder, config.suffixes, skip=skip)
        files = {s.path: s.digest for s in sources}
        old: HybridRetriever | None = None
        if index_dir is not None and (Path(index_dir) / "manifest.json").exists():
            try:
                old = cls.load(index_dir, config=config)
            except (InputError, ConfigError) as exc:
                log.warning("ignoring the index in %s: %s", index_dir, exc)
            if old is not None and old.files == files:
                log.info("index in %s is current (%d files)", index_dir, len(files))
                return old
        chunks = [c for s in sources for c in chunk_text(s.text, s.path, config.chunk_words)]
        index = cls._embed_missing(chunks, config, files, old)
        if index_dir is not None:
            index.save(index_dir)
        return index

    @classmethod
    def _embed_missing(cls, chunks: list[Chunk], config: HybridConfig, files: dict[str, str],
                       old: HybridRetriever | None) -> HybridRetriever:
        known = {sha256(c.text): v for c, v in zip(old.chunks, old.vectors, strict=True)} if old else {}
        missing = [c.text for c in chunks if sha256(c.text) not in known]
        if missing:
            fresh = _encode(config, missing)
            known.update({sha256(t): v for t, v in zip(missing, fresh, strict=True)})
        log.info("embedded %d of %d chunks", len(missing), len(chunks))
        vectors = np.stack([known[sha256(c.text)] for c in chunks]).astype(np.float32)
        return cls(chunks, config, vectors=vectors, files=files)

    def _build_bm25(self) -> Any:
        tokens = self._tokenize([c.text for c in self.chunks])
        bm25 = self._bm25s.BM25()
        bm25.index(tokens, show_progress=False)
        return bm25

    def _tokenize(self, texts: list[str]) -> list[list[str]]:
        return self._bm25s.tokenize(texts, stopwords="en", return_ids=False, show_progress=False)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-normalized float32 embeddings of ``texts`` with the configured encoder."""
        return _encode(self.config, texts)

    # -- retrieval ---------------------------------------------------------------------
    def retrieve(self, query: str, k: int = 5) -> list[Chunk]:
        """The ``k`` best chunks for ``query`` by reciprocal-rank fusion of BM25 and dense.

        Raises:
            InputError: an empty query or ``k`` < 1.
        """
        if not isinstance(query, str) or not query.strip():
            raise InputError("the query is empty")
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise InputError(f"k must be an int >= 1, got {k!r}")
        depth = min(len(self.chunks), max(self.config.depth, k))
        lexical = self._bm25_ranking(query, depth)
        dense = list(np.argsort(-(self.vectors @ self.embed([query])[0]), kind="stable")[:depth])
        fused: dict[int, float] = {}
        ranks: dict[int, dict[str, int]] = {}
        for name, ranking in (("bm25_rank", lexical), ("dense_rank", dense)):
            for rank, i in enumerate(ranking, start=1):
                fused[int(i)] = fused.get(int(i), 0.0) + 1.0 / (self.config.rrf_k + rank)
                ranks.setdefault(int(i), {})[name] = rank
        best = sorted(fused, key=lambda i: (-fused[i], i))[:k]
        out = []
        for i in best:
            c = self.chunks[i]
            meta = {**c.metadata, "bm25_rank": ranks[i].get("bm25_rank"),
                    "dense_rank": ranks[i].get("dense_rank")}
            out.append(Chunk(c.text, id=c.id, metadata=meta, score=fused[i]))
        return out

    async def aretrieve(self, query: str, k: int = 5) -> list[Chunk]:
        """Async form of :meth:`retrieve` (runs in a worker thread)."""
        return await asyncio.to_thread(self.retrieve, query, k)

    def _bm25_ranking(self, query: str, depth: int) -> list[int]:
        vocab = self._bm25.vocab_dict
        tokens = [t for t in self._tokenize([query])[0] if t in vocab]
        if not tokens:
            return []
        scores = np.asarray(self._bm25.get_scores(tokens))
        order = np.argsort(-scores, kind="stable")[:depth]
        return [int(i) for i in order if scores[i] > 0]

    # -- persistence -------------------------------------------------------------------
    def save(self, index_dir: str | Path) -> None:
        """Write the index to ``index_dir`` (replaced atomically as a whole)."""
        target = Path(index_dir)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".ctxcomp-index-", dir=target.parent))
        try:
            manifest = {"format": FORMAT_VERSION, "config": self.config.digest_fields(),
                        "encoder": load_encoder(self.config.model, self.config.device).revision,
                        "files": self.files, "chunks": len(self.chunks)}
            (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True))
            with (tmp / "chunks.jsonl").open("w", encoding="utf-8") as fh:
                for c in self.chunks:
                    fh.write(json.dumps({"id": c.id, "text": c.text, "metadata": dict(c.metadata)},
                                        ensure_ascii=False, default=str) + "\n")
            np.save(tmp / "vectors.npy", self.vectors, allow_pickle=False)
            self._bm25.save(str(tmp / "bm25"), show_progress=False)
            if target.exists():
                shutil.rmtree(target)
            os.replace(tmp, target)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)

    @classmethod
    def load(cls, index_dir: str | Path, *, config: HybridConfig | None = None) -> HybridRetriever:
        """Open an index written by :meth:`save`.

        Raises:
            InputError: no index there, or a file of it is missing or unreadable.
            ConfigError: it was built with other settings or another encoder revision.
        """
        root = Path(index_dir)
        try:
            manifest = json.loads((root / "manifest.json").read_text())
        except (OSError, ValueError) as exc:
            raise InputError(f"no readable ctxcomp index in {str(root)!r}: {exc}") from exc
        config = config or HybridConfig(**_config_from(manifest))
        if manifest.get("format") != FORMAT_VERSION:
            raise ConfigError(f"index format {manifest.get('format')} is not {FORMAT_VERSION}; rebuild it")
        if manifest.get("config") != config.digest_fields():
            raise ConfigError("the index was built with other settings; rebuild it")
        revision = load_encoder(config.model, config.device).revision
        if manifest.get("encoder") != revision:
            raise ConfigError(f"the index was built with encoder {manifest.get('encoder')}, not {revision}")
        bm25s = require("bm25s", "models", "BM25 retrieval")
        try:
            with (root / "chunks.jsonl").open(encoding="utf-8") as fh:
                chunks = [Chunk(r["text"], id=r["id"], metadata=r["metadata"]) for r in map(json.loads, fh)]
            vectors = np.load(root / "vectors.npy", allow_pickle=False)
            bm25 = bm25s.BM25.load(str(root / "bm25"), show_progress=False)
        except (OSError, ValueError, KeyError) as exc:
            raise InputError(f"the index in {str(root)!r} is damaged: {exc}") from exc
        return cls(chunks, config, vectors=vectors, files=manifest.get("files", {}), _bm25=bm25)


def _config_from(manifest: Mapping[str, Any]) -> dict[str, Any]:
    data = dict(manifest.get("config", {}))
    if "suffixes" in data:
        data["suffixes"] = tuple(data["suffixes"])
    return data


def _encode(config: HybridConfig, texts: Sequence[str]) -> np.ndarray:
    if not texts:
        return np.zeros((0, 1), dtype=np.float32)
    model = load_encoder(config.model, config.device).model
    vectors = model.encode(list(texts), batch_size=config.batch_size, normalize_embeddings=True,
                           convert_to_numpy=True, show_progress_bar=False)
    return np.asarray(vectors, dtype=np.float32)

