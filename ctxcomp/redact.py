"""Secrets out of logs and errors: passwords in URLs, API keys, auth headers.

Every message ctxcomp logs or raises that may hold a caller-supplied URL or a backend's
error text goes through :func:`redact` (and URLs are shown with :func:`safe_url`). The
patterns are deliberately broad: a false positive costs a few masked characters, a false
negative a leaked credential.

Example:
    >>> redact("cannot reach redis://app:s3cret@cache:6379/0")
    'cannot reach redis://app:***@cache:6379/0'
    >>> redact("Authorization: Bearer abc.def.ghi")
    'Authorization: Bearer ***'
"""

from __future__ import annotations

import re

MASK = "***"

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # scheme://user:password@host  and  scheme://token@host
    (re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://[^\s:/@]*):[^\s@/]*@"), rf"\1:{MASK}@"),
    (re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)[^\s:/@]+@"), rf"\1{MASK}@"),
    # Authorization / Proxy-Authorization / X-Api-Key style headers
    (re.compile(r"(?i)\b((?:proxy-)?authorization[\"']?\s*[:=]\s*[\"']?(?:bearer|basic|token|apikey)?\s*)"
                r"[^\s\"',;]+"),
     rf"\1{MASK}"),
    (re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/\-]+=*"), rf"\1{MASK}"),
    # key=value / "key": "value" for names that hold secrets
    (re.compile(r"(?i)([\"']?\b(?:[\w\-]*[_\-])?(?:password|passwd|pwd|secret|token|api[_\-]?key|access[_\-]?key"
                r"|auth|credentials?)[\"']?\s*[:=]\s*[\"']?)([^\s\"'&,;]+)"), rf"\1{MASK}"),
    # well-known key shapes: OpenAI/Anthropic sk-..., GitHub, AWS, Slack, Google
    (re.compile(r"\b(?:sk|pk|rk)-[A-Za-z0-9_\-]{16,}"), MASK),
    (re.compile(r"\bgh[pousr]_[A-Za-z0-9]{20,}"), MASK),
    (re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"), MASK),
    (re.compile(r"\bxox[abposr]-[A-Za-z0-9\-]{10,}"), MASK),
    (re.compile(r"\bAIza[0-9A-Za-z_\-]{30,}"), MASK),
)


def redact(text: object) -> str:
    """``str(text)`` with credentials masked (see the module docstring)."""
    out = str(text)
    for pattern, replacement in _PATTERNS:
        out = pattern.sub(replacement, out)
    return out


def safe_url(url: str) -> str:
    """``url`` for display: any password or token in it masked."""
    return redact(url)
