"""Each example runs offline end to end (a subprocess, as a user would run it)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

pytestmark = [pytest.mark.slow, pytest.mark.model]


def run(script: str, *args: str) -> str:
    proc = subprocess.run([sys.executable, str(EXAMPLES / script), *args], capture_output=True,
                          text=True, timeout=900, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def saved_share(out: str) -> int:
    match = re.search(r"saved (\d+), (\d+)%\)", out)
    assert match, out
    return int(match.group(2))


@pytest.mark.parametrize("script", ["langchain_rag.py", "llamaindex_rag.py"])
def test_rag_examples_save_tokens_and_keep_answers(script: str) -> None:
    out = run(script)
    assert saved_share(out) >= 30
    kept = re.findall(r"answer kept: (True|False) \(uncompressed: True\)", out)
    assert kept and all(k == "True" for k in kept), out
    assert "per million questions" in out


def test_agent_memory_example() -> None:
    out = run("agent_memory.py", "--questions", "4")
    assert saved_share(out) > 0
    assert "answers identical with and without compression: 4/4" in out
