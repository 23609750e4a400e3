"""The core install stays light and missing extras say what to install."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ctxcomp._deps import require
from ctxcomp.errors import MissingDependencyError

HEAVY = ("torch", "transformers", "sentence_transformers", "langchain_core", "llama_index", "redis")


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_import_ctxcomp_loads_no_heavy_dependency() -> None:
    code = (
        "import sys, ctxcomp\n"
        "from ctxcomp import Pipeline, Budget, Chunk, count_tokens\n"
        "import ctxcomp.cli, ctxcomp.pipeline, ctxcomp.compressors.embedding\n"
        f"print([m for m in {HEAVY!r} if m in sys.modules])\n"
    )
    result = _run(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_require_names_the_extra_to_install() -> None:
    with pytest.raises(MissingDependencyError) as info:
        require("definitely_not_installed_pkg", "models", "testing")
    assert 'pip install "ctxcomp[models]"' in str(info.value)
    assert info.value.extra == "models"
    assert isinstance(info.value, ImportError)


def test_embedding_without_sentence_transformers_says_which_extra() -> None:
    code = (
        "import sys\n"
        "sys.modules['sentence_transformers'] = None  # simulate the missing extra\n"
        "from ctxcomp.compressors.embedding import EmbeddingCompressor\n"
        "from ctxcomp.errors import MissingDependencyError\n"
        "try:\n"
        "    EmbeddingCompressor().setup()\n"
        "except MissingDependencyError as e:\n"
        "    print('OK', e)\n"
    )
    result = _run(code)
    assert result.stdout.startswith("OK"), result.stderr
    assert 'ctxcomp[models]' in result.stdout
