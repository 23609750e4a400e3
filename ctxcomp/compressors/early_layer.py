"""Early-layer filtering (GemFilter): a small causal LM's early attention picks the context.

Method (arXiv 2409.17422, "Discovering the Gems in Early Layers"): run only the first
r+1 layers of a causal LM over ``[context + query]``; at layer r, score each context
token by the attention the query pays it; keep the best, in original order.

What this implementation does beyond the reference (which scores with the last token's
raw dot products, batch size 1, a pinned transformers):

- **Linear memory.** Layers below r run with sdpa; the forward stops at layer r, where
  only the query rows' attention is computed (RoPE applied, GQA heads repeated, causal):
  O(n) memory, never the n x n map (:mod:`ctxcomp.models.attention`).
- **Better scores** (:mod:`ctxcomp.compressors.early_layer_scoring`): the query's own
  tokens score (not template tokens); the attention of a content-free probe question is
  subtracted to remove the position prior ("Found in the Middle"); sink and separator
  tokens belong to no unit and are ignored; sentences mix in their passage's score;
  several layers can be combined; optionally mixed with MiniLM similarity.
- **A learned scorer** (default for the shipped SmolLM2): instead of hand-set weights, a
  linear model over request-normalized features, fit on the NQ-20 dev slice with
  cross-validation (``benchmarks/gemfilter/learn.py``, weights in
  ``ctxcomp/data/gemfilter-<model>.json``): per layer, the sentence's and its passage's
  calibrated attention from the query rows (mean and max) and from the last token;
  MiniLM similarity of sentence and passage; BM25 of sentence and passage within the
  request; answer cues (a year for "when" questions, a new name for "who" ones...);
  position in the passage and length. Same forward pass, about 0.1 s more per request.
- **Verbatim sentences.** ``unit="sentence"`` (default) keeps whole sentences; ``token``
  keeps words as in the paper; ``chunk`` keeps whole passages. Budgets are exact and every
  kept span maps to the source (:func:`ctxcomp.assembly.select_units`).
- **Long inputs.** Input longer than the model's window is split into windows of whole
  chunks (or sentences of an over-long chunk); each window carries the probe and the
  query and is scored separately; calibrated scores are comparable across windows.
- **Batches.** :meth:`EarlyLayerFilter.compress_batch` runs the prompts of many requests
  through the model together (right-padded, grouped by length).

Devices: cuda > mps > cpu, bf16 (the same code runs on CUDA; see ctxcomp.models.causal).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from functools import cached_property
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np

from ctxcomp.assembly import Assembly, Quotas, Unit, assemble, make_context, select_units, whole_units
from ctxcomp.compressors.base import BaseCompressor, ModelRevision, chunk_quotas, per_request
from ctxcomp.compressors.bounds import fit_by_bm25
from ctxcomp.compressors.early_layer_config import MIN_ROOM, EarlyLayerConfig
from ctxcomp.compressors.early_layer_prompt import Prompt, build_prompt, overhead_tokens, plan_windows
from ctxcomp.compressors.early_layer_scoring import (
    LinearScorer,
    aggregate,
    head_features,
    pool,
    text_features,
    token_scores,
    unit_token_ranges,
    zscore,
)
from ctxcomp.errors import ConfigError, InputError
from ctxcomp.inputs import ChunkLike, check_query, coerce_chunks, input_tokens
from ctxcomp.score_memo import current_memo
from ctxcomp.text import split_sentences, word_spans
from ctxcomp.tokens import TokenCounter, get_counter
from ctxcomp.types import Budget, Chunk, CompressedContext, StageReport

log = logging.getLogger(__name__)

@dataclass
class _Request:
    """One (query, chunks) request on its way through scoring."""

    query: str
    chunks: list[Chunk]
    prompts: list[Prompt] = field(default_factory=list)
    # when the input was cut down (max_input_tokens): the request's own chunks, and the
    # index in them of each scored chunk
    source: list[Chunk] | None = None
    keep: list[int] | None = None
    # per window: token chunk, start, end, {row set: {layer: scores}} (see _token_scores)
    tokens: list[tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, dict[int, np.ndarray]]]] = field(
        default_factory=list)


class EarlyLayerFilter(BaseCompressor):
    """Keep the context an early layer of a small causal LM attends to from the query.

    Example:
        >>> gf = EarlyLayerFilter(model="smollm2-135m")  # needs `ctxcomp models pull smollm2-135m`
        >>> ctx = gf.compress("who wrote Hamlet?", chunks, Budget(ratio=4))  # doctest: +SKIP
    """

    name = "gemfilter"

    def __init__(self, config: EarlyLayerConfig | None = None, **settings: Any) -> None:
        super().__init__()
        self.settings = config if config is not None else EarlyLayerConfig(**settings)
        self._lm: Any = None
        self._layers: tuple[int, ...] = ()
        self._embedder: Any = None

    # -- setup and identity ------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        data = asdict(self.settings)
        for key in ("batch_size", "device", "dtype", "layer"):
            data.pop(key)
        if data["max_input_tokens"] == EarlyLayerConfig.max_input_tokens:
            del data["max_input_tokens"]  # the default: cache keys stay as they were
        scorer = self._learned
        data["layers"] = list(self._layers or (scorer.layers if scorer else self.settings.layers))
        if scorer is not None:
            data["scorer_weights"] = scorer.digest
        return data

    @cached_property
    def _learned(self) -> LinearScorer | None:
        """The learned scorer in use, or None for the hand-set recipe (see ``scorer``)."""
        s = self.settings
        if s.scorer == "recipe" or (s.scorer == "auto" and s.layer is not None):
            return None
        if s.scorer == "auto":
            from ctxcomp.models.shipped import SHIPPED

            # a hub id of a shipped model uses that model's weights
            name = next((n for n, m in SHIPPED.items() if m.hub_id and m.hub_id == s.model), s.model)
            shipped = files("ctxcomp") / "data" / f"gemfilter-{name}.json"
            if not shipped.is_file():
                return None
            path = Path(str(shipped))
        else:
            path = Path(s.scorer).expanduser()
            if not path.is_file():
                raise ConfigError(f"scorer weights file {str(path)!r} does not exist")
        try:
            scorer = LinearScorer.load(path)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"cannot read scorer weights {str(path)!r}: {exc}") from exc
        return scorer.without("emb_") if s.embedding_weight == 0 else scorer

    def model_revisions(self) -> list[ModelRevision]:
        self.setup()
        return [ModelRevision(self.settings.model, self._lm.revision)]

    def _setup(self) -> None:
        from ctxcomp.models.causal import load_causal_lm

        self._lm = load_causal_lm(self.settings.model, self.settings.device, self.settings.dtype)
        scorer = self._learned
        if scorer is not None:
            self._layers = self._check_layers(scorer.layers)
        else:
            self._layers = self._check_layers(self.settings.layers or (max(1, round(0.4 * self._lm.num_layers)),))
        if self.settings.embedding_weight > 0:
            from ctxcomp.compressors.embedding import EmbeddingCompressor

            unit = "chunk" if self.settings.unit == "chunk" else "sentence"
            # no unit cap of its own: its scores must line up with this stage's units
            self._embedder = EmbeddingCompressor(unit=unit, dedup_threshold=None, max_units=None)
            self._embedder.setup()

    def _check_layers(self, layers: tuple[int, ...]) -> tuple[int, ...]:
        n = self._lm.num_layers
        bad = [x for x in layers if x >= n]
        if bad:
            raise ConfigError(f"layer {bad[0]} is out of range: {self.settings.model} has layers 0..{n - 1}")
        cfg = getattr(self._lm.model.config, "text_config", self._lm.model.config)
        types = getattr(cfg, "layer_types", None)
        if types:
            local = [x for x in layers if types[x] != "full_attention"]
            if local:
                globals_ = [i for i, t in enumerate(types) if t == "full_attention"]
                raise ConfigError(
                    f"layer {local[0]} of {self.settings.model} uses sliding-window attention and cannot see "
                    f"far back; use a global layer: {globals_}"
                )
        return layers

    # -- scoring -------------------------------------------------------------------------
    def _window_room(self, query: str) -> tuple[int, int]:
        """(tokens one prompt may have, of which context) for ``query``."""
        lm = self._lm
        window = min(self.settings.max_window or lm.max_positions, lm.max_positions)
        room = window - overhead_tokens(lm.tokenizer, query, self._query_first())
        if room < MIN_ROOM:
            raise InputError(
                f"the query alone takes {window - room} of the {window} tokens the scoring model "
                f"{self.settings.model!r} can read; shorten the query"
            )
        return window, room

    def _prompts(self, query: str, chunks: Sequence[Chunk]) -> list[Prompt]:
        tok = self._lm.tokenizer
        texts = [c.text for c in chunks]
        lengths = [len(ids) for ids in tok(texts, add_special_tokens=False)["input_ids"]]
        window, room = self._window_room(query)
        first = self._query_first()
        for shrink in (1.0, 0.9, 0.75, 0.5):  # token estimates of split chunks may run over
            prompts = [build_prompt(tok, texts, w, query, first)
                       for w in plan_windows(texts, lengths, int(room * shrink))]
            if all(len(p.input_ids) <= window for p in prompts):
                return prompts
        raise InputError("cannot fit the context into the scoring model's window")  # pragma: no cover

    def _run(self, prompts: Sequence[Prompt]) -> list[dict[str, dict[int, np.ndarray]]]:
        """Per prompt: {"q"|"x"|"p"|"l": {layer: (heads, n) attention}}: the query rows'
        mean (q) and max (x), the probe rows' mean (p), the last row (l)."""
        import torch

        from ctxcomp.models.attention import query_attention

        lm = self._lm
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i].input_ids))
        out: list[Any] = [None] * len(prompts)
        pad = lm.tokenizer.pad_token_id if lm.tokenizer.pad_token_id is not None else 0
        for start in range(0, len(order), self.settings.batch_size):
            group = [prompts[i] for i in order[start : start + self.settings.batch_size]]
            width = max(len(p.input_ids) for p in group)
            ids = torch.full((len(group), width), pad, dtype=torch.long)
            rows = []
            for b, p in enumerate(group):
                ids[b, : len(p.input_ids)] = torch.from_numpy(p.input_ids)
                rows.append(torch.from_numpy(np.concatenate([p.query_rows, p.probe_rows, [p.last_row]])))
            with lm.lock:
                att = query_attention(lm.model, ids.to(lm.device), rows, self._layers,
                                      [len(p.input_ids) for p in group])
            for b, p in enumerate(group):
                nq, npr = len(p.query_rows), len(p.probe_rows)
                res: dict[str, dict[int, np.ndarray]] = {"q": {}, "x": {}, "p": {}, "l": {}}
                for layer, a in att[b].items():
                    a = a.float().cpu().numpy()
                    res["q"][layer] = a[:, :nq].mean(axis=1)
                    res["x"][layer] = a[:, :nq].max(axis=1)
                    res["p"][layer] = a[:, nq : nq + npr].mean(axis=1) if npr else np.zeros_like(a[:, 0])
                    res["l"][layer] = a[:, -1]
                out[order[start + b]] = res
        return out

    def _token_scores(self, att: dict[str, dict[int, np.ndarray]]) -> dict[str, dict[int, np.ndarray]]:
        """Calibrated token scores: per row set, per layer, (heads, n) for a learned
        scorer; the recipe's pooled head-mean (n,) under key ``r`` otherwise."""
        s = self.settings
        scorer = self._scorer_for_units()
        if scorer is None:
            key = "q" if s.rows == "query" else "l"
            return {"r": {layer: pool(token_scores(att[key][layer], att["p"][layer], s.calibration), s.window)
                          for layer in self._layers}}
        calibration = float(scorer.meta.get("calibration", 1.0))
        return {key: {layer: att[key][layer] - calibration * att["p"][layer] for layer in self._layers}
                for key in scorer.row_sets}

    def _query_first(self) -> bool:
        """Whether prompts also state the query before the context (as the learned scorer was fit)."""
        scorer = self._scorer_for_units()
        return bool(scorer is not None and scorer.meta.get("query_first"))

    def _scorer_for_units(self) -> LinearScorer | None:
        """The learned scorer, if one is in use and the unit is a sentence (what it was fit on)."""
        return self._learned if self.settings.unit == "sentence" else None

    def _units(self, chunks: Sequence[Chunk]) -> list[Unit]:
        units: list[Unit] = []
        for index, chunk in enumerate(chunks):
            if self.settings.unit == "chunk":
                spans = [(0, len(chunk.text))] if chunk.text.strip() else []
            elif self.settings.unit == "token":
                spans = word_spans(chunk.text)
            else:
                spans = split_sentences(chunk.text)
            units.extend(Unit(index, span) for span in spans)
        return units

    def _unit_scores(self, req: _Request, units: list[Unit]) -> np.ndarray:
        s = self.settings
        chunk_of = np.array([u.chunk for u in units], dtype=np.int64)
        tok_chunk = np.concatenate([t[0] for t in req.tokens])
        tok_start = np.concatenate([t[1] for t in req.tokens])
        tok_end = np.concatenate([t[2] for t in req.tokens])
        ranges = unit_token_ranges(units, tok_chunk, tok_start, tok_end)

        def joined(key: str, layer: int) -> np.ndarray:  # one request's windows, end to end
            return np.concatenate([t[3][key][layer] for t in req.tokens], axis=-1)

        whole = [Unit(i, (0, len(c.text))) for i, c in enumerate(req.chunks)]
        scorer = self._scorer_for_units()
        if scorer is not None:
            chunk_ranges = unit_token_ranges(whole, tok_chunk, tok_start, tok_end)
            top = int(scorer.meta.get("top", 8))
            features: dict[str, np.ndarray] = {}
            for key in scorer.row_sets:
                heads = {layer: joined(key, layer) for layer in self._layers}
                features.update(head_features(heads, ranges, chunk_ranges, chunk_of, top, "" if key == "q" else key))
            similarity = None
            if self._embedder is not None and units:
                _, sims, chunk_sims, _ = self._embedder.similarities(req.query, req.chunks)
                similarity = (sims, chunk_sims)
            features.update(text_features(req.query, req.chunks, units, similarity))
            return scorer.score(features, len(units))
        top = 1 if s.unit == "token" else s.top
        mix_chunks = s.unit != "chunk" and s.chunk_weight > 0
        if mix_chunks:
            chunk_ranges = unit_token_ranges(whole, tok_chunk, tok_start, tok_end)
        per_layer = []
        for layer in self._layers:
            scores = joined("r", layer)
            unit = zscore(aggregate(scores, ranges, top))
            if mix_chunks:
                chunk = zscore(aggregate(scores, chunk_ranges, 0))
                unit = (1 - s.chunk_weight) * unit + s.chunk_weight * chunk[chunk_of]
            per_layer.append(zscore(unit))
        score = np.mean(per_layer, axis=0)
        if self._embedder is not None and units:
            score = (1 - s.embedding_weight) * zscore(score) + s.embedding_weight * self._embedding_scores(req, units)
        return score

    def _embedding_scores(self, req: _Request, units: list[Unit]) -> np.ndarray:
        scored, _ = self._embedder.score_units(req.query, req.chunks)
        by_span = {(u.chunk, u.span): u.score for u in scored}
        if self.settings.unit == "token":  # a word takes its sentence's similarity
            values = []
            for u in units:
                best = [v for (c, sp), v in by_span.items() if c == u.chunk and sp[0] <= u.span[0] < sp[1]]
                values.append(best[0] if best else 0.0)
            return zscore(np.asarray(values, dtype=np.float64))
        return zscore(np.asarray([by_span.get((u.chunk, u.span), 0.0) for u in units], dtype=np.float64))

    def _bound_input(self, req: _Request) -> None:
        """Cut an over-long request down to max_input_tokens (see the config)."""
        limit = self.settings.max_input_tokens
        if limit is None:
            return
        texts = [c.text for c in req.chunks]
        lengths = [len(ids) for ids in self._lm.tokenizer(texts, add_special_tokens=False)["input_ids"]]
        if sum(lengths) <= limit:
            return
        keep = fit_by_bm25(req.query, texts, lengths, limit)
        if not keep:
            raise InputError(f"{self.name}: every chunk is over max_input_tokens={limit} (the shortest has "
                             f"{min(lengths):,} tokens); split the chunks, raise max_input_tokens, or put a "
                             "cheaper stage (e.g. 'embedding') first")
        log.info("%s: input of %d tokens over max_input_tokens=%d; scoring the %d of %d chunks that fit, "
                 "best BM25 match first", self.name, sum(lengths), limit, len(keep), len(req.chunks))
        req.source, req.keep = req.chunks, keep
        req.chunks = [req.chunks[i] for i in keep]

    def _score_requests(self, requests: Sequence[_Request]) -> None:
        flat: list[tuple[int, Prompt]] = []
        for i, req in enumerate(requests):
            self._bound_input(req)
            req.prompts = self._prompts(req.query, req.chunks)
            flat.extend((i, p) for p in req.prompts)
        attention = self._run([p for _, p in flat])
        for (i, prompt), att in zip(flat, attention, strict=True):
            scores = self._token_scores(att)
            keep = prompt.token_chunk >= 0
            requests[i].tokens.append((prompt.token_chunk[keep], prompt.token_start[keep], prompt.token_end[keep],
                                       {key: {layer: v[..., keep] for layer, v in per.items()}
                                        for key, per in scores.items()}))

    def _scored(self, req: _Request) -> list[Unit]:
        """The request's units with their scores (remembered in the run's memo for the stage
        after a planner that used them)."""
        units = self._units(req.chunks)
        scores = self._unit_scores(req, units)
        scored = [Unit(u.chunk, u.span, float(v)) for u, v in zip(units, scores, strict=True)]
        memo = current_memo()
        if memo is not None:
            memo.put(self._memo_owner, req.query, req.chunks, scored)
        return scored

    def _select(self, req: _Request, limit: int, counter: TokenCounter, quotas: Quotas = None) -> Assembly:
        scored = self._scored(req)
        if req.keep is not None and req.source is not None:  # back to the request's own chunks
            scored = [Unit(req.keep[u.chunk], u.span, u.score) for u in scored]
            return select_units(req.source, scored, counter, limit, quotas)
        return select_units(req.chunks, scored, counter, limit, quotas)

    def _memo_get(self, query: str, chunks: Sequence[Chunk]) -> list[Unit] | None:
        memo = current_memo()
        return memo.get(self._memo_owner, query, chunks) if memo is not None else None

    @cached_property
    def _memo_owner(self) -> str:
        return json.dumps({"model": self.settings.model, **self.config()}, sort_keys=True, default=str)

    def score_units(self, query: str, chunks: Sequence[Chunk]) -> list[Unit]:
        """Every sentence (or the configured unit) of ``chunks`` with its score, higher is
        more relevant to ``query``; chunks cut by ``max_input_tokens`` have none. Inside a
        pipeline run, reused from a request that scored the same chunks for the same query
        (see :mod:`ctxcomp.score_memo`)."""
        query = check_query(query, True)
        items = list(chunks)
        cached = self._memo_get(query, items)
        if cached is not None:
            return cached
        self.setup()
        req = _Request(query, items)
        self._score_requests([req])
        scored = self._scored(req)
        return [Unit(req.keep[u.chunk], u.span, u.score) for u in scored] if req.keep is not None else scored

    def _propose(
        self, query: str, chunks: Sequence[Chunk], limit: int, counter: TokenCounter, quotas: Quotas = None
    ) -> Assembly:
        cached = self._memo_get(query, chunks)
        if cached is not None:  # scored already, in this request's context or a larger one
            return select_units(chunks, cached, counter, limit, quotas)
        req = _Request(query, list(chunks))
        self._score_requests([req])
        return self._select(req, limit, counter, quotas)

    # -- batches -------------------------------------------------------------------------
    def compress_batch(
        self, requests: Sequence[tuple[str, Sequence[ChunkLike]]], budget: Budget | Sequence[Budget]
    ) -> list[CompressedContext]:
        """Compress many (query, chunks) pairs, sharing forward passes across them.

        Same results as calling :meth:`compress` on each (padding does not change scores);
        faster on accelerators, about the same on CPU.
        """
        budgets = per_request(budget, len(requests))
        started = time.perf_counter()
        prepared = []
        for (query, chunks), b in zip(requests, budgets, strict=True):
            counter = get_counter(b.model)
            items = coerce_chunks(chunks)
            tokens_in = input_tokens(items, counter)
            quotas = chunk_quotas(items, b, counter)
            prepared.append((check_query(query, True), items, tokens_in, b.limit(tokens_in), quotas, b, counter))
        if any(n > limit or quotas for _, _, n, limit, quotas, _, _ in prepared):
            self.setup()
        # scored already (a planner's gemfilter utility, in this request's context): reused
        cached = [self._memo_get(q, items) if n > limit or quotas else None
                  for q, items, n, limit, quotas, _, _ in prepared]
        todo = [_Request(q, items) for (q, items, n, limit, quotas, _, _), hit in zip(prepared, cached, strict=True)
                if (n > limit or quotas) and hit is None]
        if todo:
            self._score_requests(todo)
        seconds = (time.perf_counter() - started) / max(len(prepared), 1)
        out: list[CompressedContext] = []
        pending = iter(todo)
        for (_query, items, tokens_in, limit, quotas, b, counter), hit in zip(prepared, cached, strict=True):
            if tokens_in <= limit and not quotas:
                assembly = assemble(items, whole_units(items), counter)
            elif hit is not None:
                assembly = select_units(items, hit, counter, limit, quotas)
            else:
                assembly = self._select(next(pending), limit, counter, quotas)
            report = StageReport(self.name, tokens_in, assembly.tokens, seconds, limit=limit)
            out.append(make_context(items, assembly, tokens_in, b, limit, counter, (report,)))
        return out
