"""Loading the benchmark suites into :class:`Example` lists.

Formats are those of ``../shared/data`` (see its README): NQ multi-document QA as
gzipped (or plain) JSONL, LoCoMo as its JSON list, and a needle-in-a-haystack folder of
``.txt`` essays plus a ``needles.json``. Any file of the same format works. Nothing here
tells a compressor which chunk is gold: chunk metadata carries only neutral fields.
"""

from __future__ import annotations

import gzip
import json
import random
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ctxcomp.errors import InputError
from ctxcomp.text import split_sentences
from ctxcomp.tokens import TokenCounter
from ctxcomp.types import Chunk


@dataclass(frozen=True)
class Example:
    """One benchmark item.

    Attributes:
        id: a stable id (used for seeding random methods and for reports).
        query: the question.
        chunks: the context, in prompt order.
        answers: acceptable answer strings (may be empty, e.g. open-ended items).
        gold_ids: ids of the chunks that hold the answer / evidence.
        stratum: the group used for stratified ``--limit`` (gold position, category).
        setting: extra axes of the result grid (needle length and depth).
    """

    id: str
    query: str
    chunks: tuple[Chunk, ...]
    answers: tuple[str, ...]
    gold_ids: frozenset[str]
    stratum: str = ""
    setting: Mapping[str, Any] = field(default_factory=dict)


def _open_text(path: Path) -> Iterator[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as handle:  # type: ignore[operator]
            yield from handle
    except FileNotFoundError:
        raise InputError(f"data file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {path}: {exc}") from exc


def _nq_example(record: Any, number: int) -> Example:
    if not isinstance(record, dict):
        raise InputError("each line must be a JSON object", line=number)
    missing = [k for k in ("question", "answers", "ctxs") if k not in record]
    if missing:
        raise InputError(f"missing field(s) {', '.join(missing)}", line=number)
    passages = record["ctxs"]
    if not isinstance(passages, list) or not passages:
        raise InputError("'ctxs' must be a non-empty list of passages", line=number)
    chunks, gold = [], set()
    for i, passage in enumerate(passages):
        if not isinstance(passage, dict) or "text" not in passage:
            raise InputError(f"passage {i} has no 'text'", line=number)
        title = str(passage.get("title") or "").strip()
        text = f"{title}\n{passage['text']}" if title else str(passage["text"])
        chunks.append(Chunk(text, id=f"p{i}", metadata={"title": title}))
        if passage.get("isgold") or (not any(p.get("isgold") for p in passages) and passage.get("hasanswer")):
            gold.add(f"p{i}")
    answers = tuple(str(a) for a in record["answers"])
    position = record.get("gold_index", min((int(g[1:]) for g in gold), default=-1))
    return Example(id=str(record.get("litm_line", number)), query=str(record["question"]),
                   chunks=tuple(chunks), answers=answers, gold_ids=frozenset(gold),
                   stratum=str(position))


def load_nq(path: str | Path) -> list[Example]:
    """Multi-document QA records (``question``, ``answers``, ``ctxs``) as examples.

    Each passage becomes a chunk ``"title\\ntext"`` with id ``p<index>``; the gold
    passage is the ``isgold`` one (else those with ``hasanswer``).

    Raises:
        InputError: unreadable file, bad JSON or a record without the needed fields
            (with the 1-based line number).
    """
    examples = []
    for number, line in enumerate(_open_text(Path(path)), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"invalid JSON: {exc.msg}", line=number) from None
        examples.append(_nq_example(record, number))
    if not examples:
        raise InputError(f"no records in {path}")
    return examples


def _turn_text(turn: Mapping[str, Any], date: str) -> str:
    text = f"[{date}] {turn.get('speaker', '')}: {turn.get('text', '')}".strip()
    if turn.get("blip_caption"):
        text += f" [shares a photo: {turn['blip_caption']}]"
    return text


def _locomo_turns(conversation: Mapping[str, Any]) -> list[Chunk]:
    chunks = []
    sessions = sorted((int(k.split("_")[1]) for k in conversation
                       if k.startswith("session_") and k.count("_") == 1), key=int)
    for n in sessions:
        date = str(conversation.get(f"session_{n}_date_time", ""))
        for turn in conversation.get(f"session_{n}") or []:
            chunks.append(Chunk(_turn_text(turn, date), id=str(turn["dia_id"]),
                                metadata={"session": n, "speaker": turn.get("speaker", "")}))
    return chunks


def load_locomo(path: str | Path, categories: Sequence[int] = (1, 2, 3, 4)) -> list[Example]:
    """LoCoMo QA items as examples: context = every turn of the conversation.

    A turn becomes the chunk ``"[session date] Speaker: text"`` (plus the image caption
    when a photo was shared) with its ``dia_id`` as id; gold = the evidence turns.
    Category 5 (adversarial, no answer) is left out unless asked for.

    Raises:
        InputError: the file is not a LoCoMo JSON list.
    """
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"data file not found: {path}") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, list) or not all(isinstance(s, dict) and "qa" in s and "conversation" in s
                                             for s in data):
        raise InputError(f"{path} is not a LoCoMo file (a list of samples with 'conversation' and 'qa')")
    examples = []
    for sample in data:
        chunks = tuple(_locomo_turns(sample["conversation"]))
        ids = {c.id for c in chunks}
        for i, qa in enumerate(sample["qa"]):
            if qa.get("category") not in categories:
                continue
            answer = qa.get("answer", qa.get("adversarial_answer"))
            examples.append(Example(
                id=f"{sample.get('sample_id', '')}#{i}", query=str(qa["question"]), chunks=chunks,
                answers=(str(answer),) if answer is not None and qa.get("category") != 5 else (),
                gold_ids=frozenset(e for e in qa.get("evidence", []) if e in ids),
                stratum=str(qa.get("category"))))
    return examples


def stratified(examples: Sequence[Example], limit: int | None) -> list[Example]:
    """At most ``limit`` examples, equally many per stratum, spread over the file (deterministic).

    Strata (gold position, QA category) share the limit round-robin in sorted order; within
    a stratum the picks are evenly spaced (indices ``i * size // count``), so a small limit
    still covers the whole file (LoCoMo's questions follow the conversation: taking the
    first ones would favour early evidence). Output keeps file order.
    """
    if limit is None or limit >= len(examples):
        return list(examples)
    groups: dict[str, list[Example]] = {}
    for example in examples:
        groups.setdefault(example.stratum, []).append(example)
    order = sorted(groups, key=lambda s: (len(s), s))
    counts = dict.fromkeys(order, 0)
    remaining = limit
    while remaining:
        for stratum in order:
            if remaining and counts[stratum] < len(groups[stratum]):
                counts[stratum] += 1
                remaining -= 1
    chosen = [groups[s][i * len(groups[s]) // counts[s]] for s in order for i in range(counts[s])]
    position = {id(e): i for i, e in enumerate(examples)}
    return sorted(chosen, key=lambda e: position[id(e)])


# -- needle in a haystack -----------------------------------------------------------------

def load_needle(path: str | Path) -> tuple[str, str]:
    """(needle sentence, question) from a ``needles.json`` (its ``single_needle``)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        needle = data["single_needle"]["needle"].strip()
        question = data["single_needle"]["retrieval_question"].strip()
    except FileNotFoundError:
        raise InputError(f"needles file not found: {path}") from None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InputError(f"{path} needs single_needle.needle and .retrieval_question: {exc}") from exc
    return needle, question


def haystack_sentences(directory: str | Path) -> list[str]:
    """The sentences of every ``*.txt`` in ``directory``, files in sorted name order."""
    files = sorted(Path(directory).glob("*.txt"))
    if not files:
        raise InputError(f"no .txt files in haystack folder {directory}")
    sentences: list[str] = []
    for file in files:
        text = file.read_text(encoding="utf-8")
        sentences.extend(" ".join(text[s:e].split()) for s, e in split_sentences(text))
    return sentences


def evenly_spaced_depths(count: int) -> list[float]:
    """``count`` depth percentages from 0 to 100 inclusive (upstream's linspace)."""
    if count < 1:
        raise InputError(f"--depths must be >= 1, got {count}")
    return [0.0] if count == 1 else [round(100.0 * i / (count - 1), 2) for i in range(count)]


def build_haystack(
    sentences: Sequence[str], needle: str, length: int, depth: float, counter: TokenCounter,
    chunk_tokens: int = 200,
) -> tuple[list[Chunk], str]:
    """Chunks of about ``length`` tokens with ``needle`` as its own sentence at ``depth`` %.

    The haystack is cut to ``length`` tokens (minus the needle) at a sentence boundary;
    the needle goes at the first sentence boundary at or after ``depth`` % of it. The
    sentences are then grouped into chunks of about ``chunk_tokens`` tokens (ids
    ``h<i>``). Returns the chunks and the id of the chunk holding the needle.
    """
    room = length - counter.count(needle)
    taken, used = [], 0
    for sentence in sentences:
        cost = counter.count(sentence) + 1
        if used + cost > room:
            break
        taken.append((sentence, used))
        used += cost
    if not taken:
        raise InputError(f"length {length} is too small for the needle")
    cut = next((i for i, (_, start) in enumerate(taken) if start >= used * depth / 100.0), len(taken))
    ordered = [s for s, _ in taken[:cut]] + [needle] + [s for s, _ in taken[cut:]]
    chunks: list[Chunk] = []
    current: list[str] = []
    size, needle_chunk = 0, ""
    for sentence in ordered:
        current.append(sentence)
        size += counter.count(sentence) + 1
        if sentence is needle:
            needle_chunk = f"h{len(chunks)}"
        if size >= chunk_tokens:
            chunks.append(Chunk(" ".join(current), id=f"h{len(chunks)}"))
            current, size = [], 0
    if current:
        chunks.append(Chunk(" ".join(current), id=f"h{len(chunks)}"))
    return chunks, needle_chunk


def needle_examples(
    haystack: str | Path, needles: str | Path, lengths: Sequence[int], depths: int,
    counter: TokenCounter, chunk_tokens: int = 200,
) -> list[Example]:
    """One example per (length, depth): the needle's question over its haystack."""
    needle, question = load_needle(needles)
    sentences = haystack_sentences(haystack)
    out = []
    for length in lengths:
        for depth in evenly_spaced_depths(depths):
            chunks, gold = build_haystack(sentences, needle, length, depth, counter, chunk_tokens)
            out.append(Example(id=f"len{length}-depth{depth:g}", query=question, chunks=tuple(chunks),
                               answers=(needle,), gold_ids=frozenset({gold}),
                               stratum=str(length), setting={"length": length, "depth": depth}))
    return out


def seed_for(seed: int, example_id: str) -> int:
    """A per-example seed derived from the run seed (stable across processes)."""
    return random.Random(f"{seed}:{example_id}").randrange(2**31)
