"""LLMLingua 0.2.2 on transformers 5: the peer, made runnable here without touching it.

Two things stop the released ``llmlingua`` from running in this environment:

1. It calls ``tiktoken.encoding_for_model("gpt-3.5-turbo")`` at construction, which
   downloads the encoding file. :func:`load_prompt_compressor` first writes the shipped
   ``cl100k_base`` file into tiktoken's cache (``ctxcomp.tokens.ensure_offline_encoding``).
2. Its ``get_ppl`` passes the KV cache around as a legacy list of ``[key, value]`` pairs
   and slices it (``for k, v in past_key_values``); transformers 5 returns a
   ``DynamicCache`` whose iteration yields 3-tuples, so ``compress_prompt`` fails with
   "too many values to unpack". :class:`CompatPromptCompressor` overrides only
   ``get_ppl``: it turns the legacy list into a ``DynamicCache`` before the forward pass
   and hands a legacy list back. The arithmetic is upstream's, line for line.

This module lives in ``benchmarks/`` on purpose: it patches a third-party peer for the
benchmark, and the ctxcomp library never imports it.
"""

from __future__ import annotations

from typing import Any


def _legacy(cache: Any) -> list[list[Any]]:
    """A transformers-5 cache as llmlingua's list of ``[key, value]`` per layer."""
    return [[layer.keys, layer.values] for layer in cache.layers]


def load_prompt_compressor(model_dir: str, device: str = "cpu") -> Any:
    """A :class:`CompatPromptCompressor` on the causal LM in ``model_dir`` (fp32 on CPU).

    fp32 because llmlingua turns losses into numpy arrays, which have no bfloat16.
    """
    from ctxcomp.tokens import ensure_offline_encoding

    ensure_offline_encoding("cl100k_base")
    import torch
    from llmlingua import PromptCompressor
    from transformers import DynamicCache

    class CompatPromptCompressor(PromptCompressor):  # type: ignore[misc]
        """llmlingua's PromptCompressor with a transformers-5 compatible ``get_ppl``."""

        def get_ppl(
            self,
            text: str,
            granularity: str = "sentence",
            input_ids: Any = None,
            attention_mask: Any = None,
            past_key_values: Any = None,
            return_kv: bool = False,
            end: int | None = None,
            condition_mode: str = "none",
            condition_pos_id: int = 0,
        ) -> Any:
            if input_ids is None:
                tokenized_text = self.tokenizer(text, return_tensors="pt")
                input_ids = tokenized_text["input_ids"].to(self.device)
                attention_mask = tokenized_text["attention_mask"].to(self.device)
            past_length = past_key_values[0][0].shape[2] if past_key_values is not None else 0
            if end is None:
                end = input_ids.shape[1]
            end = min(end, past_length + self.max_position_embeddings)
            cache = None
            if past_key_values is not None:
                cache = DynamicCache(ddp_cache_data=[(k, v) for k, v in past_key_values])
            with torch.no_grad():
                response = self.model(
                    input_ids[:, past_length:end],
                    attention_mask=attention_mask[:, :end],
                    past_key_values=cache,
                    use_cache=True,
                )
            new_past = _legacy(response.past_key_values)
            shift_logits = response.logits[..., :-1, :].contiguous()
            shift_labels = input_ids[..., past_length + 1 : end].contiguous()
            active = (attention_mask[:, past_length:end] == 1)[..., :-1].view(-1)
            active_logits = shift_logits.view(-1, shift_logits.size(-1))[active]
            active_labels = shift_labels.view(-1)[active]
            loss = torch.nn.CrossEntropyLoss(reduction="none")(active_logits, active_labels)
            if condition_mode == "before":
                loss = loss[:condition_pos_id]
            elif condition_mode == "after":
                loss = loss[condition_pos_id:]
            res = loss.mean() if granularity == "sentence" else loss
            return (res, new_past) if return_kv else res

    return CompatPromptCompressor(model_name=model_dir, device_map=device,
                                  model_config={"torch_dtype": torch.float32})
