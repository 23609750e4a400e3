"""Folder scanning and sentence-packed chunking with exact offsets."""

from __future__ import annotations

import pytest

from ctxcomp import InputError
from ctxcomp.retrievers.corpus import chunk_text, scan_folder, sha256


def test_chunks_are_exact_slices_of_whole_sentences() -> None:
    text = " ".join(f"Sentence number {i} has exactly seven words." for i in range(20))
    chunks = chunk_text(text, "a.md", chunk_words=30)
    assert len(chunks) == 5  # 7 words per sentence, 4 sentences (28 words) per chunk
    for n, c in enumerate(chunks):
        assert c.id == f"a.md#{n}"
        assert text[c.metadata["start"]:c.metadata["end"]] == c.text
        assert c.text.endswith("words.") and len(c.text.split()) <= 30
    assert chunk_text("", "e.md", 30) == []


def test_scan_folder(tmp_path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.md").write_text("alpha", encoding="utf-8")
    (tmp_path / "sub" / "b.txt").write_text("beta", encoding="utf-8")
    (tmp_path / "c.pdf").write_bytes(b"%PDF")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "d.md").write_text("hidden", encoding="utf-8")
    (tmp_path / "bad.txt").write_bytes(b"caf\xe9")
    files = scan_folder(tmp_path, (".txt", ".md"))
    assert [f.path for f in files] == ["a.md", "bad.txt", "sub/b.txt"]
    assert files[0].digest == sha256("alpha")
    assert "\ufffd" in files[1].text  # undecodable bytes replaced, not fatal


def test_scan_folder_errors(tmp_path) -> None:
    with pytest.raises(InputError):
        scan_folder(tmp_path / "missing", (".md",))
    with pytest.raises(InputError):
        scan_folder(tmp_path, (".md",))
