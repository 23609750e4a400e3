"""Tiny random-weight causal LMs for tests (no download, a second to build).

:func:`build_tiny_lm` writes a transformers folder (a small Llama or Gemma-3 config with
random weights, plus a byte-level BPE tokenizer trained on the given texts) that
:func:`ctxcomp.models.causal.load_causal_lm` loads like any local model. Scores from it
are meaningless; it exercises shapes, masks, offsets, windows and selection logic.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from ctxcomp._deps import require

_SAMPLE = (
    "The quick brown fox jumps over the lazy dog. Paris is the capital of France. "
    "Question: what is this about? Answer: Documents: a needle in a haystack."
)


def build_tiny_lm(
    path: str | Path,
    texts: Iterable[str] = (),
    arch: Literal["llama", "gemma3"] = "llama",
    layers: int = 4,
    max_positions: int = 512,
    seed: int = 0,
) -> Path:
    """Save a tiny random causal LM and tokenizer to ``path``; returns the folder.

    Args:
        path: output folder (created).
        texts: extra text to train the tokenizer on (vocabulary of ~400 tokens).
        arch: ``llama`` (GQA 4 query / 2 key heads) or ``gemma3`` (q/k norms, every
            other layer sliding-window with window 16).
        layers: number of decoder layers.
        max_positions: the model's context window.
        seed: torch seed for the weights.
    """
    torch = require("torch", "models", "building a test model")
    transformers = require("transformers", "models", "building a test model")
    tokenizers = require("tokenizers", "models", "building a test tokenizer")
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    bpe = tokenizers.Tokenizer(tokenizers.models.BPE(unk_token=None))
    bpe.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = tokenizers.decoders.ByteLevel()
    trainer = tokenizers.trainers.BpeTrainer(
        vocab_size=400, special_tokens=["<pad>", "<bos>", "<eos>"],
        initial_alphabet=tokenizers.pre_tokenizers.ByteLevel.alphabet(),
    )
    bpe.train_from_iterator([_SAMPLE, *texts], trainer)
    tok = transformers.PreTrainedTokenizerFast(
        tokenizer_object=bpe, pad_token="<pad>", bos_token="<bos>", eos_token="<eos>"
    )
    common = dict(
        vocab_size=bpe.get_vocab_size(), hidden_size=64, intermediate_size=128, num_hidden_layers=layers,
        num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=max_positions,
        pad_token_id=0, bos_token_id=1, eos_token_id=2,
    )
    torch.manual_seed(seed)
    if arch == "gemma3":
        types = ["sliding_attention" if i % 2 == 0 else "full_attention" for i in range(layers)]
        config = transformers.Gemma3TextConfig(**common, sliding_window=16, layer_types=types,
                                               query_pre_attn_scalar=16)
        model = transformers.Gemma3ForCausalLM(config)
    else:
        model = transformers.LlamaForCausalLM(transformers.LlamaConfig(**common))
    model.save_pretrained(str(out))
    tok.save_pretrained(str(out))
    return out
