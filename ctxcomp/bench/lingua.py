"""LLMLingua and LongLLMLingua (the ``llmlingua`` package) as peers, on SmolLM2-135M.

The released ``llmlingua`` 0.2.2 needs a compatibility patch for transformers 5 and the
offline tiktoken file; both live in the repository's ``benchmarks/peers/llmlingua_compat.py``
(never in the library). This module finds that file (``--peers-dir``,
``$CTXCOMP_BENCH_PEERS``, or ``benchmarks/peers`` above the working directory or beside
the ctxcomp package) and loads it.

Settings, to the same token budget (``target_token`` = the budget):

- ``llmlingua``: ``compress_prompt(passages, instruction="", question="", target_token=T)``,
  the README's basic usage (coarse passage filter + iterative token-level compression,
  no question awareness).
- ``longllmlingua``: the question-aware settings LLMLingua's DOCUMENT.md gives for RAG
  (its LlamaIndex example): ``question=query, rank_method="longllmlingua",
  condition_in_question="after", condition_compare=True, context_budget="+100",
  reorder_context="sort", dynamic_context_compression_ratio=0.4``, and
  ``concate_question=False`` so that only the compressed context is measured.

LLMLingua deletes tokens and re-decodes the text, so its output has no provenance
(gold recall is reported as null). Its ``target_token`` is counted with its own
tokenizer, so it may miss the target tokenizer's budget; violations are reported as is.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

from ctxcomp.bench.methods import Outcome
from ctxcomp.errors import ConfigError, ModelLoadError
from ctxcomp.tokens import get_counter
from ctxcomp.types import CHUNK_SEPARATOR, Budget, Chunk

COMPAT_FILE = "llmlingua_compat.py"
DEFAULT_MODEL = "smollm2-135m"

LONGLLMLINGUA_SETTINGS: dict[str, Any] = {
    "rank_method": "longllmlingua",
    "condition_in_question": "after",
    "condition_compare": True,
    "context_budget": "+100",
    "reorder_context": "sort",
    "dynamic_context_compression_ratio": 0.4,
    "concate_question": False,
}


def find_peers_dir(explicit: str | None = None) -> Path:
    """The folder holding ``llmlingua_compat.py``.

    Raises:
        ConfigError: none found (the message says where it looked).
    """
    candidates = []
    if explicit:
        candidates.append(Path(explicit))
    if os.environ.get("CTXCOMP_BENCH_PEERS"):
        candidates.append(Path(os.environ["CTXCOMP_BENCH_PEERS"]))
    here = Path.cwd().resolve()
    candidates += [p / "benchmarks" / "peers" for p in (here, *here.parents)]
    candidates.append(Path(__file__).resolve().parents[2] / "benchmarks" / "peers")
    for folder in candidates:
        if (folder / COMPAT_FILE).is_file():
            return folder
    raise ConfigError(
        f"the llmlingua peers need {COMPAT_FILE} (the transformers-5 patch kept in the ctxcomp "
        "repository's benchmarks/peers/); run from a checkout or pass --peers-dir; looked in: "
        + ", ".join(str(c) for c in candidates[:4]))


def load_compat(peers_dir: str | None = None) -> ModuleType:
    """Import ``llmlingua_compat.py`` from the peers folder."""
    path = find_peers_dir(peers_dir) / COMPAT_FILE
    spec = importlib.util.spec_from_file_location("ctxcomp_bench_llmlingua_compat", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def resolve_model(spec: str) -> str:
    """A local folder for ``spec``: an existing path, or a shipped model pulled once."""
    if Path(spec).is_dir():
        return str(spec)
    from ctxcomp.models.shipped import pull

    return str(pull(spec))


_shared: dict[tuple[str, str], Any] = {}
_lock = threading.Lock()


def shared_compressor(model: str, peers_dir: str | None) -> Any:
    """One PromptCompressor per model folder, shared by both methods (loaded once)."""
    key = (model, str(peers_dir))
    with _lock:
        if key not in _shared:
            from ctxcomp._deps import require

            require("llmlingua", "bench", "the LLMLingua peers")
            compat = load_compat(peers_dir)
            folder = resolve_model(model)
            try:
                _shared[key] = compat.load_prompt_compressor(folder)
            except Exception as exc:
                raise ModelLoadError(f"llmlingua could not load {folder}: {exc}") from exc
        return _shared[key]


class LLMLinguaMethod:
    """``llmlingua``'s PromptCompressor (LLMLingua settings) to the budget."""

    provenance = False
    settings_for_call: ClassVar[dict[str, Any]] = {}
    question_aware: ClassVar[bool] = False

    def __init__(self, label: str, settings: dict[str, Any], peers_dir: str | None = None,
                 llmlingua_model: str | None = None, **_: Any) -> None:
        self.label = label
        self.model = str(settings.pop("model", llmlingua_model or DEFAULT_MODEL))
        self.extra = dict(settings)  # any other compress_prompt keyword, e.g. iterative_size=100
        self.peers_dir = peers_dir
        self._compressor: Any = None

    def setup(self) -> None:
        if self._compressor is None:
            self._compressor = shared_compressor(self.model, self.peers_dir)

    def run(self, query: str, chunks: Sequence[Chunk], budget: Budget) -> Outcome:
        self.setup()
        counter = get_counter(budget.model)
        texts = [c.text for c in chunks if c.text]
        limit = budget.limit(counter.count(CHUNK_SEPARATOR.join(texts)))
        kwargs = {**self.settings_for_call, **self.extra}
        if self.question_aware:
            kwargs["question"] = query
        try:
            result = self._compressor.compress_prompt(texts, target_token=limit, **kwargs)
        except TypeError as exc:
            raise ConfigError(f"bad llmlingua setting for {self.label}: {exc}") from exc
        return Outcome(str(result["compressed_prompt"]).strip(), None)

    def describe(self) -> dict[str, Any]:
        return {"kind": "peer", "class": "llmlingua PromptCompressor (+ transformers-5 get_ppl patch)",
                "model": self.model, "settings": {**self.settings_for_call, **self.extra},
                "budget": "target_token = budget tokens (target tokenizer)"}


class LongLLMLinguaMethod(LLMLinguaMethod):
    """LongLLMLingua: the question-aware settings LLMLingua documents for RAG."""

    settings_for_call = LONGLLMLINGUA_SETTINGS
    question_aware = True
