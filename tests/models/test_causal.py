"""The causal-LM loader: specs, devices, errors, one load per process."""

from __future__ import annotations

import threading

import pytest

pytest.importorskip("torch")

from ctxcomp.errors import ModelLoadError
from ctxcomp.models import causal
from ctxcomp.models.testing import build_tiny_lm


@pytest.fixture()
def empty_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CTXCOMP_CACHE_DIR", str(tmp_path / "cache"))
    # Models loaded earlier in this process (by other tests) must not answer for an empty cache.
    monkeypatch.setattr(causal, "_cache", {})
    return tmp_path / "cache"


def test_device_and_dtype_choice():
    import torch

    assert causal.pick_device("cpu") == "cpu"
    expected = "cuda" if torch.cuda.is_available() else causal.pick_device()
    assert causal.pick_device() == expected
    native = causal.cpu_has_native_bf16()
    assert causal.pick_dtype("cpu") == (torch.bfloat16 if native else torch.float32)
    assert causal.pick_dtype("cpu", "fp32") == torch.float32
    assert causal.pick_dtype("cpu", "bf16") == torch.bfloat16
    with pytest.raises(ModelLoadError, match="unknown dtype"):
        causal.pick_dtype("cpu", "int3")


def test_cpu_bf16_only_where_native(monkeypatch):
    import torch

    epyc = "processor\t: 0\nflags\t\t: fpu sse2 avx avx2 fma\n"
    sapphire = "flags\t\t: fpu avx2 avx512f avx512_bf16 amx_bf16\n"
    graviton = "Features\t: fp asimd bf16 i8mm\n"
    assert not causal.cpu_has_native_bf16(epyc)
    assert causal.cpu_has_native_bf16(sapphire)
    assert causal.cpu_has_native_bf16(graviton)
    assert not causal.cpu_has_native_bf16("")
    monkeypatch.setattr(causal, "cpu_has_native_bf16", lambda: False)
    assert causal.pick_dtype("cpu") == torch.float32
    monkeypatch.setenv("CTXCOMP_DTYPE", "bf16")
    assert causal.pick_dtype("cpu") == torch.bfloat16
    monkeypatch.delenv("CTXCOMP_DTYPE")
    monkeypatch.setattr(causal, "cpu_has_native_bf16", lambda: True)
    assert causal.pick_dtype("cpu") == torch.bfloat16


def test_unpulled_shipped_model_names_the_pull_command(empty_cache):
    with pytest.raises(ModelLoadError, match="ctxcomp models pull smollm2-135m"):
        causal.load_causal_lm("smollm2-135m")


def test_missing_paths(tmp_path):
    with pytest.raises(ModelLoadError, match="not found"):
        causal.load_causal_lm(str(tmp_path / "nothing.gguf"))
    with pytest.raises(ModelLoadError, match="not found"):
        causal.load_causal_lm(str(tmp_path / "no" / "such" / "folder"))
    with pytest.raises(ModelLoadError, match="non-empty"):
        causal.load_causal_lm("  ")


def test_hub_ids_pass_through_and_paths_resolve(tmp_path):
    # Loading a hub id needs a hub (none here; transformers retries for ~45 s): resolve only.
    assert causal.resolve("HuggingFaceTB/SmolLM2-135M-Instruct") == (
        "HuggingFaceTB/SmolLM2-135M-Instruct", None, "HuggingFaceTB/SmolLM2-135M-Instruct")
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    folder, name, revision = causal.resolve(str(gguf))
    assert (folder, name) == (str(tmp_path), "m.gguf") and revision.startswith("m.gguf:4:")


def test_local_folder_loads_once_across_threads(tmp_path):
    path = str(build_tiny_lm(tmp_path / "tiny"))
    got = []
    threads = [threading.Thread(target=lambda: got.append(causal.load_causal_lm(path, device="cpu")))
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 4 and all(lm is got[0] for lm in got)
    lm = got[0]
    assert lm.device == "cpu" and lm.num_layers == 4 and lm.max_positions == 512
    assert not lm.model.training
