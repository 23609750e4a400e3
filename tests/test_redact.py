"""Secrets are masked in every line ctxcomp logs or raises."""

from __future__ import annotations

import pytest

from ctxcomp.redact import MASK, redact, safe_url


@pytest.mark.parametrize(("text", "secret"), [
    ("redis://user:hunter2@cache:6379/0", "hunter2"),
    ("rediss://:hunter2@cache:6380", "hunter2"),
    ("https://ghp_0123456789abcdefghijABCDEFGHIJ@github.com/x", "ghp_0123456789abcdefghijABCDEFGHIJ"),
    ("Authorization: Bearer eyJhbGciOi.J9.abc", "eyJhbGciOi"),
    ("headers={'Authorization': 'Basic dXNlcjpwYXNz'}", "dXNlcjpwYXNz"),
    ("X-Api-Key: 5f0c3b7d", "5f0c3b7d"),
    ("OPENAI_API_KEY=sk-proj-abcdefghijklmnopqrstuvwxyz012345", "abcdefghijklmnop"),
    ("failed with key sk-ant-api03-abcdefghijklmnopqrstuvwxyz", "abcdefghijklmnop"),
    ('{"password": "hunter2", "user": "bob"}', "hunter2"),
    ("db_password=hunter2&retry=1", "hunter2"),
    ("AKIAIOSFODNN7EXAMPLE in the logs", "AKIAIOSFODNN7EXAMPLE"),
])
def test_secrets_are_masked(text: str, secret: str) -> None:
    out = redact(text)
    assert secret not in out and MASK in out


@pytest.mark.parametrize("text", [
    "redis://127.0.0.1:6379/0", "tokens_in=500 tokens_out=20", "token_count: 5",
    "Error 111 connecting to 127.0.0.1:6399. Connection refused.", "compressed 20 chunks in 0.5 s",
])
def test_ordinary_text_is_untouched(text: str) -> None:
    assert redact(text) == text


def test_safe_url_keeps_host_and_user() -> None:
    assert safe_url("redis://app:pw@host:1/2") == "redis://app:***@host:1/2"
