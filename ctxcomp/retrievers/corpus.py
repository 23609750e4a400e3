"""Reading a folder of .txt/.md files into chunks, with content hashes for the index manifest.

Chunks are contiguous slices of a file (whole sentences packed up to ``chunk_words``
words), so ``metadata["start"]:metadata["end"]`` points into the file's text exactly.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ctxcomp.errors import InputError
from ctxcomp.text import split_sentences
from ctxcomp.types import Chunk

log = logging.getLogger(__name__)


def sha256(text: str) -> str:
    """Hex SHA-256 of ``text`` (UTF-8)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class SourceFile:
    """One file of the corpus: its path relative to the folder, text and content hash."""

    path: str
    text: str
    digest: str


def scan_folder(folder: str | Path, suffixes: Sequence[str], skip: Path | None = None) -> list[SourceFile]:
    """Every file under ``folder`` ending in one of ``suffixes``, sorted by relative path.

    Hidden files and folders (and ``skip``, e.g. an index folder inside) are ignored.
    Undecodable bytes are replaced (with a warning) rather than failing the whole folder.

    Raises:
        InputError: ``folder`` is not a directory, or holds no matching file.
    """
    root = Path(folder)
    if not root.is_dir():
        raise InputError(f"{str(root)!r} is not a folder")
    wanted = tuple(s.lower() for s in suffixes)
    skip_resolved = skip.resolve() if skip is not None else None
    files: list[SourceFile] = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts) or not path.is_file():
            continue
        if skip_resolved is not None and skip_resolved in path.resolve().parents:
            continue
        if not path.name.lower().endswith(wanted):
            continue
        raw = path.read_bytes()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            log.warning("%s is not valid UTF-8; undecodable bytes were replaced", path)
            text = raw.decode("utf-8", errors="replace")
        files.append(SourceFile(rel.as_posix(), text, sha256(text)))
    if not files:
        raise InputError(f"no {'/'.join(suffixes)} files under {str(root)!r}")
    return files


def chunk_text(text: str, source: str, chunk_words: int) -> list[Chunk]:
    """Pack whole sentences of ``text`` into chunks of at most ``chunk_words`` words
    (a longer sentence is a chunk of its own). Ids are ``source#n``."""
    chunks: list[Chunk] = []
    start = end = words = 0
    open_chunk = False
    for s, e in split_sentences(text):
        n = len(text[s:e].split())
        if open_chunk and words + n > chunk_words:
            chunks.append(_chunk(text, source, len(chunks), start, end))
            open_chunk = False
        if not open_chunk:
            start, words, open_chunk = s, 0, True
        end = e
        words += n
    if open_chunk:
        chunks.append(_chunk(text, source, len(chunks), start, end))
    return chunks


def _chunk(text: str, source: str, n: int, start: int, end: int) -> Chunk:
    return Chunk(text[start:end], id=f"{source}#{n}", metadata={"source": source, "start": start, "end": end})
