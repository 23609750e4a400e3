"""``ctxcomp batch`` end to end, and its usage errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ctxcomp.cli import main

from .conftest import read_jsonl, write_jsonl


def test_batch_command_writes_output_errors_and_summary(
    tmp_path: Path, records: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", [*records[:5], {"query": "no chunks"}])
    out = tmp_path / "out.jsonl"
    args = ["batch", "-i", str(src), "-o", str(out), "--stages", "truncate", "--ratio", "4",
            "--summary-json", str(tmp_path / "s.json")]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "5 compressed" in err and "1 errors" in err and "saved" in err and "$" in err
    assert len(read_jsonl(out)) == 5 and read_jsonl(Path(f"{out}.errors.jsonl"))[0]["line"] == 6
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["compressed"] == 5 and summary["tokens_saved"] > 0
    assert main([*args, "--no-progress"]) == 0
    assert "5 skipped" in capsys.readouterr().err and len(read_jsonl(out)) == 5


@pytest.mark.parametrize(("extra", "message"), [
    (["--engine", "spark"], "invalid choice: 'spark'"),
    (["--ratio", "0.5"], "ratio must be"),
])
def test_usage_errors(tmp_path: Path, extra: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", [{"query": "q", "chunks": ["a"]}])
    with pytest.raises(SystemExit) as exc:
        main(["batch", "-i", str(src), "-o", str(tmp_path / "o.jsonl"), "--stages", "truncate", *extra])
    assert exc.value.code == 2 and message in capsys.readouterr().err


def test_missing_input_and_unwritable_output_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", [{"query": "q", "chunks": ["a"]}])
    assert main(["batch", "-i", str(tmp_path / "nope.jsonl"), "-o", str(tmp_path / "o.jsonl"),
                 "--stages", "truncate", "-b", "10"]) == 2
    assert "cannot read" in capsys.readouterr().err
    assert main(["batch", "-i", str(src), "-o", "/proc/no/out.jsonl", "--stages", "truncate", "-b", "10"]) == 2
    assert "cannot write" in capsys.readouterr().err
    assert main(["batch", "-i", str(src), "-o", str(tmp_path / "o.jsonl"), "--stages", "truncate"]) == 2
    assert "give --budget or --ratio" in capsys.readouterr().err
