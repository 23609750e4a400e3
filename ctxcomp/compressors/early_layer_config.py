"""Settings of the early-layer filter (:class:`~ctxcomp.compressors.early_layer.EarlyLayerFilter`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from ctxcomp.errors import ConfigError
from ctxcomp.settings import check_types

DEFAULT_MODEL = "smollm2-135m"
#: Default scoring layer(s) per shipped model, chosen by measurement on the NQ-20 dev slice
#: (60 questions) and dev needles (2k/4k tokens, 5 depths): benchmarks/results/gemfilter_layers.json
#: (scripts: benchmarks/gemfilter/). SmolLM2 layer 18 is the best single layer on both
#: (layers 8-12 and 16 miss most needles); 14 adds to it at no extra cost (the forward
#: stops at 18). gemma-3 may only use global layers (5, 11, 17). These are the layers of
#: ``scorer="recipe"``; the learned scorer (the default where weights ship) reads its own
#: layers from its weights: 10, 12, 14, 16, 18 for SmolLM2, where adding 20 and 22 gained
#: nothing out of fold (benchmarks/results/gemfilter_learned.json).
DEFAULT_LAYERS: dict[str, tuple[int, ...]] = {
    "smollm2-135m": (14, 18),
    "gemma3-270m": (5,),
}
MIN_ROOM = 32  # fewer context tokens per window than this is not worth a forward pass


@dataclass(frozen=True)
class EarlyLayerConfig:
    """Settings of :class:`EarlyLayerFilter`.

    Attributes:
        model: causal LM spec (shipped name, folder, .gguf, hub id).
        layer: scoring layer, or several (scores are z-scored and averaged); None: the
            measured default for the model (:data:`DEFAULT_LAYERS`, else 40% of its depth).
        rows: ``query``: the query's own tokens score; ``last``: the last token (reference).
        window: moving-average pooling width in tokens (GemFilter uses 5; 1 measured as
            good or better for sentence units).
        unit: ``sentence`` (verbatim sentences), ``token`` (words) or ``chunk``.
        calibration: weight of the content-free probe's attention subtracted (0: off).
        top: a unit scores the mean of its ``top`` best token scores (0: all tokens).
        chunk_weight: share of the passage score in a sentence's score (0..1).
        embedding_weight: share of MiniLM query similarity (EmbeddingCompressor's
            sentence+passage score) in the final score; 0 turns it off (attention only).
            0.6 measured best on NQ dev (benchmarks/results/gemfilter_layers.json).
        scorer: how token attention becomes sentence scores. ``auto`` (default): the learned
            scorer shipped for the model (``ctxcomp/data/gemfilter-<model>.json``: a linear
            model over per-head attention, MiniLM and BM25 features fit on NQ dev,
            benchmarks/gemfilter/learn.py) when there is one and ``layer`` is not set,
            else ``recipe``; ``recipe``: the hand-set recipe below (layer, rows, window,
            calibration, top, chunk_weight, embedding_weight); or a path to such a JSON
            file. With a learned scorer, ``embedding_weight=0`` drops its MiniLM features.
        max_window: context window in tokens (None: the model's own).
        max_input_tokens: the most input tokens (scoring model's tokenizer) one request
            may run through the model (about 0.6 s per 1,000 tokens on 2 CPU cores). A
            larger input is cut down first, at no model cost: whole chunks, best BM25
            match to the query first, while they fit; a request whose best chunk alone
            is over the limit raises InputError. None: no limit.
        batch_size: prompts per forward pass in :meth:`EarlyLayerFilter.compress_batch`.
        device / dtype: torch device and dtype (None: automatic, see ctxcomp.models.causal).
    """

    model: str = DEFAULT_MODEL
    layer: int | tuple[int, ...] | None = None
    rows: Literal["query", "last"] = "query"
    window: int = 1
    unit: Literal["sentence", "token", "chunk"] = "sentence"
    calibration: float = 1.0
    top: int = 8
    chunk_weight: float = 0.0
    embedding_weight: float = 0.6
    scorer: str = "auto"
    max_window: int | None = None
    max_input_tokens: int | None = 65_536
    batch_size: int = 4
    device: str | None = None
    dtype: str | None = None
    layers: tuple[int, ...] = field(init=False, default=())

    def __post_init__(self) -> None:
        check_types(self)
        raw: Any = self.layer
        layer: tuple[int, ...] | None
        if raw is None:
            layer = None
        elif isinstance(raw, int) and not isinstance(raw, bool):
            layer = (raw,)
        elif isinstance(raw, (list, tuple)):
            layer = tuple(raw)
        else:
            raise ConfigError(f"layer must be a non-negative int or a tuple of them, got {raw!r}")
        if layer is not None and (not layer or not all(isinstance(x, int) and x >= 0 for x in layer)):
            raise ConfigError(f"layer must be a non-negative int or a tuple of them, got {raw!r}")
        object.__setattr__(self, "layer", layer)
        object.__setattr__(self, "layers", layer or DEFAULT_LAYERS.get(self.model, ()))
        checks = [
            (self.rows in ("query", "last"), f"rows must be 'query' or 'last', got {self.rows!r}"),
            (self.unit in ("sentence", "token", "chunk"), f"unit must be sentence, token or chunk, got {self.unit!r}"),
            (isinstance(self.window, int) and self.window >= 1, f"window must be an int >= 1, got {self.window!r}"),
            (self.top >= 0, f"top must be >= 0, got {self.top}"),
            (0.0 <= self.chunk_weight <= 1.0, f"chunk_weight must be in [0, 1], got {self.chunk_weight}"),
            (0.0 <= self.embedding_weight <= 1.0, f"embedding_weight must be in [0, 1], got {self.embedding_weight}"),
            (self.calibration >= 0.0, f"calibration must be >= 0, got {self.calibration}"),
            (self.max_window is None or self.max_window > MIN_ROOM, f"max_window must be > {MIN_ROOM}"),
            (self.max_input_tokens is None or self.max_input_tokens > MIN_ROOM,
             f"max_input_tokens must be > {MIN_ROOM} or None"),
            (self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}"),
            (isinstance(self.model, str) and bool(self.model.strip()), "model must be a non-empty string"),
            (isinstance(self.scorer, str) and (self.scorer in ("auto", "recipe") or self.scorer.endswith(".json")),
             f"scorer must be 'auto', 'recipe' or a path to a .json weights file, got {self.scorer!r}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
