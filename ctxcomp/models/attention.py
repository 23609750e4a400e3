"""Attention of a few query rows at chosen layers, without the n x n attention map.

GemFilter-style scoring needs, at an early layer r, how much the query tokens attend to
every earlier token. Asking transformers for ``output_attentions`` materializes a full
heads x n x n map per layer (7 GB for 10 SmolLM2 layers at 4k tokens), so instead:

1. the decoder runs with its efficient kernel (sdpa) and a forward pre-hook on each
   wanted layer's attention module captures that module's input (the normalized hidden
   states) and its rotary embeddings;
2. the hook at the deepest wanted layer raises, so no later layer (and no LM head) runs;
3. :func:`rows_attention` projects queries for the R scoring rows only and keys for all
   n positions, applies q/k norms (gemma-3) and RoPE, repeats the GQA key heads, scales,
   masks causally (and by sliding window / padding) and takes the softmax.

Memory is O(heads x R x n) and time linear in n beyond the layers themselves. Works for
decoders whose attention modules follow the Llama layout (``q_proj``/``k_proj``, optional
``q_norm``/``k_norm``, ``scaling``, ``position_embeddings=(cos, sin)`` with the
rotate-half convention): Llama, SmolLM2, Mistral, Qwen2/3, Gemma-2/3.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ctxcomp._deps import require
from ctxcomp.errors import ConfigError

torch = require("torch", "models", "early-layer attention")


class _StopForward(Exception):
    """Raised inside a hook to end the forward pass after the last wanted layer."""


@dataclass(frozen=True)
class Captured:
    """What the attention module of one layer received: (B, n, d) inputs and RoPE (B, n, hd)."""

    hidden: Any
    cos: Any
    sin: Any


def decoder_layers(model: Any) -> Any:
    """The list of decoder layers of a ``*ForCausalLM`` (or its base model)."""
    base = model.get_decoder() if hasattr(model, "get_decoder") else model
    layers = getattr(base, "layers", None)
    if layers is None:
        raise ConfigError(f"{type(model).__name__} has no .layers; early-layer scoring needs a Llama-style decoder")
    return layers


def capture(model: Any, input_ids: Any, layers: Sequence[int], attention_mask: Any = None) -> dict[int, Captured]:
    """Run the decoder up to the deepest of ``layers`` and return what each layer's attention got.

    Args:
        model: a transformers causal LM (sdpa attention recommended).
        input_ids: (B, n) token ids.
        layers: 0-based decoder layer indices.
        attention_mask: (B, n) 1 for real tokens, 0 for right padding, or None.
    """
    stack = decoder_layers(model)
    wanted = sorted(set(layers))
    if not wanted or wanted[0] < 0 or wanted[-1] >= len(stack):
        raise ConfigError(f"layers must be in 0..{len(stack) - 1}, got {list(layers)}")
    out: dict[int, Captured] = {}

    def hook_for(index: int) -> Any:
        def hook(module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            hidden = kwargs["hidden_states"] if "hidden_states" in kwargs else args[0]
            cos, sin = kwargs["position_embeddings"]
            out[index] = Captured(hidden, cos, sin)
            if index == wanted[-1]:
                raise _StopForward

        return hook

    handles = [stack[i].self_attn.register_forward_pre_hook(hook_for(i), with_kwargs=True) for i in wanted]
    base = model.get_decoder() if hasattr(model, "get_decoder") else model
    try:
        with torch.inference_mode():
            base(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
    except _StopForward:
        pass
    finally:
        for handle in handles:
            handle.remove()
    return out


def _rotate_half(x: Any) -> Any:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def _heads(proj: Any, norm: Any, hidden: Any, head_dim: int, cos: Any, sin: Any) -> Any:
    """(heads, len, head_dim) projected states with optional per-head norm and RoPE, float32."""
    states = proj(hidden).view(hidden.shape[0], -1, head_dim).transpose(0, 1)
    if norm is not None:
        states = norm(states)
    states = states.float()
    return states * cos.float() + _rotate_half(states) * sin.float()


def rows_attention(
    attn: Any, captured: Captured, batch_index: int, rows: Any, length: int | None = None
) -> Any:
    """Softmax attention of query ``rows`` over all keys of one sequence at one layer.

    Args:
        attn: the layer's attention module (gives projections, norms, scaling, window).
        captured: that layer's captured input.
        batch_index: which sequence of the batch.
        rows: 1-D LongTensor of query positions (each must be < ``length``).
        length: number of real tokens of this sequence (right padding after); None: all.

    Returns:
        float32 tensor (heads, len(rows), length) whose rows sum to 1, equal to the rows
        of the layer's full attention map (eager attention, causal mask).
    """
    n = captured.hidden.shape[1] if length is None else length
    hidden = captured.hidden[batch_index, :n]
    cos, sin = captured.cos[batch_index % captured.cos.shape[0], :n], captured.sin[batch_index % captured.sin.shape[0], :n]
    head_dim = attn.head_dim
    with torch.inference_mode():
        q = _heads(attn.q_proj, getattr(attn, "q_norm", None), hidden[rows], head_dim, cos[rows], sin[rows])
        k = _heads(attn.k_proj, getattr(attn, "k_norm", None), hidden, head_dim, cos, sin)
        k = k.repeat_interleave(q.shape[0] // k.shape[0], dim=0)  # GQA: each key head serves a group
        logits = torch.matmul(q, k.transpose(1, 2)) * float(attn.scaling)
        softcap = getattr(attn, "attn_logit_softcapping", None)
        if softcap:
            logits = torch.tanh(logits / softcap) * softcap
        keys = torch.arange(n, device=logits.device)
        blocked = keys[None, :] > rows[:, None]  # causal
        window = getattr(attn, "sliding_window", None)
        if window:
            blocked |= keys[None, :] <= rows[:, None] - window
        logits = logits.masked_fill(blocked[None], float("-inf"))
        return torch.softmax(logits, dim=-1)


def query_attention(
    model: Any,
    input_ids: Any,
    rows: Sequence[Any],
    layers: Sequence[int],
    lengths: Sequence[int] | None = None,
) -> list[dict[int, Any]]:
    """Per sequence, per layer: the (heads, R, n) attention of ``rows`` (see :func:`rows_attention`).

    Args:
        model: a transformers causal LM.
        input_ids: (B, n) token ids, right-padded.
        rows: per sequence, a LongTensor of query positions.
        layers: decoder layers to read.
        lengths: per sequence, its real length (None: no padding).
    """
    batch = input_ids.shape[0]
    lens = list(lengths) if lengths is not None else [input_ids.shape[1]] * batch
    mask = None
    if lengths is not None and min(lens) < input_ids.shape[1]:
        mask = (torch.arange(input_ids.shape[1])[None, :] < torch.tensor(lens)[:, None]).long()
        mask = mask.to(input_ids.device)
    got = capture(model, input_ids, layers, mask)
    stack = decoder_layers(model)
    return [
        {layer: rows_attention(stack[layer].self_attn, got[layer], b, rows[b].to(input_ids.device), lens[b])
         for layer in layers}
        for b in range(batch)
    ]
