"""Token scores from a causal LM: gradient x input (query-conditioned) and self-information.

Both read the chunks the same way: each chunk is tokenized on its own (offsets kept), and
the token sequences are packed, in order, into windows of at most ``window`` context
tokens (chunks joined by the tokens of a blank line; a longer chunk spans windows). Rows
are batched ``batch_size`` at a time.

- :func:`attribution_scores`: each window is followed by ``"\\n\\nQuestion:"`` and the
  query (or ``"\\n\\nQuestion: <query>\\nAnswer:"`` and a reference answer). The target is
  the log-likelihood of the query (answer) tokens; one backward pass per batch gives its
  gradient with respect to every input embedding, and a context token's score is
  ``grad . embedding`` (gradient x input: the first-order change of the log-likelihood
  when that token's embedding is scaled away). With ``steps > 0`` it is integrated
  gradients from a zero baseline instead (context embeddings scaled by ``(k + 0.5) /
  steps``, the query left as it is, all steps in the same batch).
- :func:`selfinfo_scores`: ``-log p(token | window prefix)``, forward only (Selective
  Context's signal). The first token of a window gets the window's mean.

Only the first ``max_tokens`` context tokens are scored; later ones get score 0.
The forward-only attention runtime (:mod:`ctxcomp.models.attention`) is not used here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ctxcomp._deps import require
from ctxcomp.models.causal import LoadedLM

MAX_TARGET_TOKENS = 64


@dataclass(frozen=True)
class TokenScores:
    """One chunk's scored tokens: character ``offsets`` (n, 2) and ``scores`` (n,)."""

    offsets: np.ndarray
    scores: np.ndarray


@dataclass
class Row:
    """One model input: token ids, and for each context position the (chunk, token) it scores."""

    ids: list[int] = field(default_factory=list)
    owners: list[tuple[int, int, int]] = field(default_factory=list)  # (position, chunk, token)
    target_start: int = 0


def tokenize(lm: LoadedLM, texts: Sequence[str]) -> list[tuple[list[int], np.ndarray]]:
    """(ids, offsets) of each text, with no special tokens."""
    out: list[tuple[list[int], np.ndarray]] = []
    for text in texts:
        if not text:
            out.append(([], np.zeros((0, 2), dtype=np.int64)))
            continue
        enc = lm.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        out.append((list(enc["input_ids"]), np.asarray(enc["offset_mapping"], dtype=np.int64).reshape(-1, 2)))
    return out


def pack(lm: LoadedLM, tokens: Sequence[list[int]], window: int, max_tokens: int, suffix: list[int]) -> list[Row]:
    """Context windows (each followed by ``suffix``) covering the first ``max_tokens`` tokens."""
    sep = lm.tokenizer("\n\n", add_special_tokens=False)["input_ids"]
    rows: list[Row] = []
    row = Row()
    budget = max_tokens
    for c, ids in enumerate(tokens):
        t = 0
        while t < len(ids) and budget > 0:
            if row.owners and len(row.owners) >= window:
                rows.append(row)
                row = Row()
            if row.owners and t == 0:
                row.ids.extend(sep)
            take = min(len(ids) - t, window - len(row.owners), budget)
            for k in range(t, t + take):
                row.owners.append((len(row.ids), c, k))
                row.ids.append(ids[k])
            t += take
            budget -= take
    if row.owners:
        rows.append(row)
    for r in rows:
        r.ids.extend(suffix)
        r.target_start = len(r.ids)
    return rows


def _torch() -> Any:
    return require("torch", "models", "token attribution")


def embed_rows(lm: LoadedLM, rows: Sequence[Row], target: Sequence[int]) -> tuple[Any, Any, Any]:
    """(ids (B, n), attention mask (B, n), input embeddings (B, n, d)) with ``target`` appended."""
    torch = _torch()
    n = max(len(r.ids) for r in rows) + len(target)
    pad = lm.tokenizer.pad_token_id if lm.tokenizer.pad_token_id is not None else 0
    ids = torch.full((len(rows), n), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), n), dtype=torch.long)
    for b, r in enumerate(rows):
        full = r.ids + list(target)
        ids[b, : len(full)] = torch.tensor(full)
        mask[b, : len(full)] = 1
    ids, mask = ids.to(lm.device), mask.to(lm.device)
    return ids, mask, lm.model.get_input_embeddings()(ids).detach()


def loglik(lm: LoadedLM, x: Any, mask: Any, starts: Sequence[int], target: Sequence[int]) -> Any:
    """Sum over rows of log p(target | row prefix), from input embeddings ``x`` (B, n, d)."""
    torch = _torch()
    hidden = lm.model.get_decoder()(inputs_embeds=x, attention_mask=mask, use_cache=False).last_hidden_state
    m = len(target)
    rows = torch.arange(x.shape[0], device=x.device).repeat_interleave(m)
    pos = torch.tensor([s + k - 1 for s in starts for k in range(m)], device=x.device)
    logits = lm.model.get_output_embeddings()(hidden[rows, pos]).float()
    wanted = torch.tensor(list(target) * x.shape[0], device=x.device)
    return torch.log_softmax(logits, dim=-1).gather(1, wanted[:, None]).sum()


def _attribute_batch(lm: LoadedLM, rows: Sequence[Row], target: list[int], steps: int) -> Any:
    torch = _torch()
    ids, mask, emb = embed_rows(lm, rows, target)
    starts = [r.target_start for r in rows]
    if steps:
        ctx = torch.zeros(ids.shape, dtype=emb.dtype, device=emb.device)
        for b, r in enumerate(rows):
            ctx[b, [p for p, _, _ in r.owners]] = 1
        alphas = (torch.arange(steps, dtype=emb.dtype, device=emb.device) + 0.5) / steps
        scale = 1 - ctx[:, None, :] + ctx[:, None, :] * alphas[None, :, None]  # (B, S, n)
        x = (emb[:, None] * scale[..., None]).reshape(-1, *emb.shape[1:])
        mask = mask.repeat_interleave(steps, dim=0)
        starts = [s for s in starts for _ in range(steps)]
    else:
        x = emb
    x = x.clone().requires_grad_(True)
    with torch.enable_grad():
        loglik(lm, x, mask, starts, target).backward()
    grad = x.grad.float()
    if steps:
        grad = grad.reshape(len(rows), steps, *emb.shape[1:]).mean(1)
    return (grad * emb.float()).sum(-1)  # (B, n)


def _collect(rows: Sequence[Row], values: Sequence[np.ndarray], tokens: Sequence[tuple[list[int], np.ndarray]]) -> list[TokenScores]:
    scores = [np.zeros(len(ids), dtype=np.float32) for ids, _ in tokens]
    for r, v in zip(rows, values, strict=True):
        for pos, c, k in r.owners:
            scores[c][k] = v[pos]
    return [TokenScores(off, s) for (_, off), s in zip(tokens, scores, strict=True)]


def _target(lm: LoadedLM, query: str, answer: str | None) -> tuple[list[int], list[int]]:
    enc = lm.tokenizer
    if answer is None:
        prefix, target = "\n\nQuestion:", " " + query.strip()
    else:
        prefix, target = "\n\nQuestion: " + query.strip() + "\nAnswer:", " " + answer.strip()
    ids = enc(target, add_special_tokens=False)["input_ids"][:MAX_TARGET_TOKENS]
    return enc(prefix, add_special_tokens=False)["input_ids"], list(ids)


def attribution_scores(
    lm: LoadedLM, texts: Sequence[str], query: str, *, answer: str | None = None, steps: int = 0,
    window: int = 1024, batch_size: int = 4, max_tokens: int = 16384,
) -> list[TokenScores]:
    """Gradient x input (``steps == 0``) or integrated gradients of log p(query | context)
    (or of log p(answer | context, query)) per context token of each text."""
    torch = _torch()
    tokens = tokenize(lm, texts)
    suffix, target = _target(lm, query, answer)
    window = max(16, min(window, lm.max_positions - len(suffix) - len(target) - 4))
    rows = pack(lm, [ids for ids, _ in tokens], window, max_tokens, suffix)
    values: list[np.ndarray] = []
    with lm.lock:
        for i in range(0, len(rows), batch_size):
            batch = rows[i : i + batch_size]
            out = (_attribute_batch(lm, batch, target, steps) if target
                   else torch.zeros(len(batch), max(len(r.ids) for r in batch)))
            values.extend(out.detach().cpu().numpy())
    return _collect(rows, values, tokens)


def selfinfo_scores(
    lm: LoadedLM, texts: Sequence[str], *, window: int = 1024, batch_size: int = 4, max_tokens: int = 16384,
) -> list[TokenScores]:
    """Self-information ``-log p(token | prefix)`` per context token of each text (forward only)."""
    torch = _torch()
    tokens = tokenize(lm, texts)
    rows = pack(lm, [ids for ids, _ in tokens], max(16, min(window, lm.max_positions - 4)), max_tokens, [])
    values: list[np.ndarray] = []
    with lm.lock, torch.inference_mode():
        for i in range(0, len(rows), batch_size):
            batch = rows[i : i + batch_size]
            ids, mask, _ = embed_rows(lm, batch, [])
            hidden = lm.model.get_decoder()(input_ids=ids, attention_mask=mask, use_cache=False).last_hidden_state
            head = lm.model.get_output_embeddings()
            for b, r in enumerate(batch):
                n = len(r.ids)
                info = np.zeros(n, dtype=np.float32)
                for a in range(0, n - 1, 512):
                    z = min(n - 1, a + 512)
                    logp = torch.log_softmax(head(hidden[b, a:z]).float(), dim=-1)
                    nxt = ids[b, a + 1 : z + 1]
                    info[a + 1 : z + 1] = (-logp.gather(1, nxt[:, None]).squeeze(1)).cpu().numpy()
                info[0] = float(info[1:].mean()) if n > 1 else 0.0
                values.append(info)
    return _collect(rows, values, tokens)


def aggregate(scored: TokenScores, spans: Sequence[tuple[int, int]], words: Sequence[int],
              mode: str = "sum") -> list[float]:
    """One score per piece from the |scores| of the tokens overlapping it.

    ``sum`` / ``max`` / ``mean`` over those tokens; a piece of several words (an atom) gets
    its value divided by its word count, so atoms compete per word.
    """
    if not len(scored.scores):
        return [0.0] * len(spans)
    starts, ends = scored.offsets[:, 0], scored.offsets[:, 1]
    values = np.abs(scored.scores.astype(np.float64))
    order = np.argsort(starts, kind="stable")
    starts, ends, values = starts[order], np.maximum.accumulate(ends[order]), values[order]
    out = []
    for (s, e), n in zip(spans, words, strict=True):
        lo = int(np.searchsorted(ends, s, side="right"))
        hi = int(np.searchsorted(starts, e, side="left"))
        part = values[lo:hi]
        if not len(part):
            out.append(0.0)
            continue
        v = float(part.max() if mode == "max" else part.mean() if mode == "mean" else part.sum())
        out.append(v / max(1, n))
    return out
