"""LangChain's EmbeddingsFilter and LlamaIndex's SentenceEmbeddingOptimizer as peers.

Both run the frameworks' own classes on the same MiniLM (all-MiniLM-L6-v2, shipped,
loaded once through :func:`ctxcomp.models.sentence.load_encoder`) and are brought to the
same token budget as every other method. What exactly happens:

``langchain-embeddings-filter``
    Each chunk is split into sentences with ctxcomp's splitter (the same units as
    ``embedding``); each sentence becomes a LangChain ``Document``. A real
    ``langchain_classic...EmbeddingsFilter(embeddings=MiniLMEmbeddings(), k=<all>)``
    ranks them (its own cosine similarity, its ``query_similarity_score`` state). The
    ranked sentences are then kept best-first while the assembled text fits the budget
    (ctxcomp's ``select_units``: exact count, original order). EmbeddingsFilter itself has
    only ``k`` and ``similarity_threshold``; neither is a token budget, so ranking by its
    similarity and cutting at the budget is the closest faithful use.

``llamaindex-sentence-optimizer``
    The whole context is one ``TextNode``; a real ``SentenceEmbeddingOptimizer`` with
    ``embed_model=MiniLMEmbedding()``, its default punkt sentence tokenizer and
    ``context_before=context_after=0`` (its default of 1 adds neighbour sentences and
    duplicates text) keeps the top ``percentile_cutoff`` share of sentences. The
    harness searches (bisection over the number of sentences k, via
    ``percentile_cutoff=(k+0.5)/N``) for the largest k whose output fits the budget.
    Embeddings are memoized per text during one compression, so the search does not
    re-encode. The output text is the optimizer's own (sentences joined by a space, best
    first); provenance is recovered by locating each kept sentence in the input.
    Per-node use (one node per passage) cannot reach a global budget: the optimizer
    keeps ``int(n * percentile)`` sentences per node and raises on zero.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ctxcomp._deps import require
from ctxcomp.assembly import Unit, merge_spans, select_units
from ctxcomp.bench.methods import Outcome
from ctxcomp.models.sentence import DEFAULT_EMBEDDING_MODEL, load_encoder
from ctxcomp.text import split_sentences
from ctxcomp.tokens import TokenCounter, get_counter
from ctxcomp.types import CHUNK_SEPARATOR, Budget, Chunk, CompressedChunk, Span, join_spans

BATCH_SIZE = 16  # the same as EmbeddingConfig's default


def _encode(texts: Sequence[str], model: str) -> list[list[float]]:
    encoder = load_encoder(model).model
    vectors = encoder.encode(list(texts), batch_size=BATCH_SIZE, normalize_embeddings=True,
                             convert_to_numpy=True, show_progress_bar=False)
    return [row.tolist() for row in vectors]


def minilm_langchain_embeddings(model: str = DEFAULT_EMBEDDING_MODEL) -> Any:
    """A LangChain ``Embeddings`` on the shipped sentence-transformers model."""
    lc = require("langchain_core.embeddings", "langchain", "the LangChain peer")

    class MiniLMEmbeddings(lc.Embeddings):  # type: ignore[misc,name-defined]
        """LangChain embeddings backed by ctxcomp's shared sentence-transformers model."""

        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            return _encode(texts, model) if texts else []

        def embed_query(self, text: str) -> list[float]:
            return _encode([text], model)[0]

    return MiniLMEmbeddings()


def minilm_llamaindex_embedding(model: str = DEFAULT_EMBEDDING_MODEL) -> Any:
    """A LlamaIndex ``BaseEmbedding`` on the shipped model, memoizing vectors per text."""
    base = require("llama_index.core.base.embeddings.base", "llamaindex", "the LlamaIndex peer")
    pyd = require("llama_index.core.bridge.pydantic", "llamaindex", "the LlamaIndex peer")

    class MiniLMEmbedding(base.BaseEmbedding):  # type: ignore[misc,name-defined]
        """LlamaIndex embedding backed by ctxcomp's shared sentence-transformers model."""

        _memo: dict[str, list[float]] = pyd.PrivateAttr(default_factory=dict)

        @classmethod
        def class_name(cls) -> str:
            return "ctxcomp-minilm"

        def clear(self) -> None:
            self._memo.clear()

        def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
            missing = [t for t in dict.fromkeys(texts) if t not in self._memo]
            if missing:
                self._memo.update(zip(missing, _encode(missing, model), strict=True))
            return [self._memo[t] for t in texts]

        def _get_text_embedding(self, text: str) -> list[float]:
            return self._get_text_embeddings([text])[0]

        def _get_query_embedding(self, query: str) -> list[float]:
            return self._get_text_embeddings([query])[0]

        async def _aget_query_embedding(self, query: str) -> list[float]:
            return self._get_query_embedding(query)

    return MiniLMEmbedding(model_name=model)


def provenance_from_spans(
    chunks: Sequence[Chunk], spans: Sequence[Span], offsets: Sequence[int], counter: TokenCounter,
    scores: dict[int, float] | None = None,
) -> tuple[CompressedChunk, ...]:
    """Per-chunk provenance of character ``spans`` of the joined context.

    ``offsets[i]`` is where chunk i starts in ``CHUNK_SEPARATOR.join(texts)``; a span that
    crosses a chunk boundary is split at it.
    """
    per_chunk: dict[int, list[Span]] = {}
    for start, end in spans:
        for i, (chunk, base) in enumerate(zip(chunks, offsets, strict=True)):
            lo, hi = max(start, base), min(end, base + len(chunk.text))
            if lo < hi:
                per_chunk.setdefault(i, []).append((lo - base, hi - base))
    out = []
    for i in sorted(per_chunk):
        merged = tuple(merge_spans(per_chunk[i]))
        text = join_spans(chunks[i].text, merged)
        out.append(CompressedChunk(text=text, source_id=chunks[i].id, spans=merged,
                                   tokens_in=counter.count(chunks[i].text), tokens_out=counter.count(text),
                                   score=(scores or {}).get(i), metadata=chunks[i].metadata))
    return tuple(out)


class LangChainEmbeddingsFilter:
    """LangChain's ``EmbeddingsFilter`` ranking sentences, cut to the budget."""

    provenance = True

    def __init__(self, label: str, settings: dict[str, Any], **_: Any) -> None:
        self.label = label
        self.model = str(settings.pop("model", DEFAULT_EMBEDDING_MODEL))
        if settings:
            raise TypeError(f"unknown settings {sorted(settings)}")
        self._filter_cls: Any = None
        self._embeddings: Any = None

    def setup(self) -> None:
        if self._filter_cls is None:
            module = require("langchain_classic.retrievers.document_compressors.embeddings_filter",
                             "langchain", "the LangChain EmbeddingsFilter peer")
            require("langchain_community", "bench", "LangChain's EmbeddingsFilter (it imports it)")
            self._embeddings = minilm_langchain_embeddings(self.model)
            self._filter_cls = module.EmbeddingsFilter
            load_encoder(self.model)

    def run(self, query: str, chunks: Sequence[Chunk], budget: Budget) -> Outcome:
        self.setup()
        documents = require("langchain_core.documents", "langchain").Document
        counter = get_counter(budget.model)
        docs = [documents(page_content=c.text[s:e], metadata={"chunk": i, "span": (s, e)})
                for i, c in enumerate(chunks) for s, e in split_sentences(c.text)]
        if not docs:
            return Outcome("", ())
        ranker = self._filter_cls(embeddings=self._embeddings, k=len(docs))
        ranked = ranker.compress_documents(docs, query)
        units = [Unit(d.metadata["chunk"], tuple(d.metadata["span"]), float(d.state["query_similarity_score"]))
                 for d in ranked]
        limit = budget.limit(counter.count(CHUNK_SEPARATOR.join(c.text for c in chunks if c.text)))
        assembly = select_units(chunks, units, counter, limit)
        return Outcome(assembly.text, assembly.chunks)

    def describe(self) -> dict[str, Any]:
        return {"kind": "peer", "class": "langchain_classic EmbeddingsFilter", "model": self.model,
                "units": "ctxcomp sentences", "budget": "rank by its similarity, keep best-first to the budget"}


class LlamaIndexSentenceOptimizer:
    """LlamaIndex's ``SentenceEmbeddingOptimizer`` with ``percentile_cutoff`` searched to the budget."""

    provenance = True

    def __init__(self, label: str, settings: dict[str, Any], **_: Any) -> None:
        self.label = label
        self.model = str(settings.pop("model", DEFAULT_EMBEDDING_MODEL))
        self.context = int(settings.pop("context", 0))
        if settings:
            raise TypeError(f"unknown settings {sorted(settings)}")
        self._embed: Any = None

    def setup(self) -> None:
        if self._embed is None:
            require("llama_index.core.postprocessor.optimizer", "llamaindex", "the LlamaIndex peer")
            self._embed = minilm_llamaindex_embedding(self.model)
            load_encoder(self.model)

    def _optimize(self, text: str, query: str, k: int, total: int) -> str:
        from llama_index.core.postprocessor.optimizer import SentenceEmbeddingOptimizer
        from llama_index.core.schema import NodeWithScore, TextNode

        optimizer = SentenceEmbeddingOptimizer(
            embed_model=self._embed, percentile_cutoff=(k + 0.5) / total,
            context_before=self.context, context_after=self.context)
        nodes = optimizer.postprocess_nodes([NodeWithScore(node=TextNode(text=text))], query_str=query)
        return str(nodes[0].node.get_content())

    def run(self, query: str, chunks: Sequence[Chunk], budget: Budget) -> Outcome:
        self.setup()
        from llama_index.core.utils import globals_helper

        counter = get_counter(budget.model)
        texts = [c.text for c in chunks]
        joined = CHUNK_SEPARATOR.join(texts)
        limit = budget.limit(counter.count(joined))
        sentences = list(globals_helper.punkt_tokenizer.span_tokenize(joined))
        total = len(sentences)
        self._embed.clear()
        lo, hi, best = 1, total, None
        while lo <= hi:  # the largest k whose output fits
            mid = (lo + hi) // 2
            out = self._optimize(joined, query, mid, total)
            if counter.count(out) <= limit:
                best, lo = out, mid + 1
            else:
                hi = mid - 1
        text = best if best is not None else ""
        self._embed.clear()
        offsets, pos = [], 0
        for t in texts:
            offsets.append(pos)
            pos += len(t) + len(CHUNK_SEPARATOR)
        spans = locate_sentences(text, joined, sentences)
        chunks_out = provenance_from_spans(chunks, spans, offsets, counter) if spans is not None else None
        return Outcome(text, chunks_out)

    def describe(self) -> dict[str, Any]:
        return {"kind": "peer", "class": "llama_index.core SentenceEmbeddingOptimizer", "model": self.model,
                "context_before_after": self.context, "node": "whole context as one TextNode",
                "budget": "bisection over percentile_cutoff to the largest output that fits"}


def locate_sentences(output: str, source: str, sentences: Sequence[Span]) -> list[Span] | None:
    """Which sentence spans of ``source`` make up ``output`` (sentences joined by spaces).

    Greedy, longest match first; None if ``output`` is not such a concatenation.
    """
    if not output:
        return []
    candidates = sorted(sentences, key=lambda s: s[0] - s[1])  # longest first
    used: set[Span] = set()
    found: list[Span] = []
    pos = 0
    while pos < len(output):
        for span in candidates:
            piece = source[span[0] : span[1]]
            if span not in used and output.startswith(piece, pos):
                used.add(span)
                found.append(span)
                pos += len(piece) + 1
                break
        else:
            return None
    return sorted(found)
