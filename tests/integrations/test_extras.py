"""Without the framework installed, the integrations fail with the pip command to run;
the framework-neutral modules never import a framework or a model library."""

from __future__ import annotations

import subprocess
import sys

import pytest


def python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize(("blocked", "module", "extra"), [
    ("langchain_core", "ctxcomp.integrations.langchain", "langchain"),
    ("llama_index", "ctxcomp.integrations.llamaindex", "llamaindex"),
])
def test_missing_framework_names_the_extra(blocked: str, module: str, extra: str) -> None:
    proc = python(
        f"import sys; sys.modules[{blocked!r}] = None\n"
        "from ctxcomp.errors import MissingDependencyError\n"
        f"try:\n    import {module}\nexcept MissingDependencyError as exc:\n    print('MISSING', exc.extra, exc)\n"
    )
    assert proc.returncode == 0, proc.stderr
    assert f"MISSING {extra}" in proc.stdout and f'pip install "ctxcomp[{extra}]"' in proc.stdout


def test_neutral_modules_import_light() -> None:
    proc = python(
        "import sys\n"
        "import ctxcomp.integrations, ctxcomp.reporting.usage, ctxcomp.memory.history\n"
        "import ctxcomp.retrievers.hybrid, ctxcomp.retrievers.adapters, ctxcomp.retrievers.corpus\n"
        "heavy = ['torch', 'transformers', 'sentence_transformers', 'langchain_core', 'llama_index', 'bm25s']\n"
        "print([m for m in heavy if m in sys.modules])\n"
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
