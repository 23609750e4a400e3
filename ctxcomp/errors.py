"""One exception hierarchy for ctxcomp.

Every error ctxcomp raises derives from :class:`CtxcompError`. Errors carry data and
do nothing else; ``is_retryable`` says whether trying the same call again can help.
This module imports nothing from ctxcomp.
"""

from __future__ import annotations

from collections.abc import Iterable


class CtxcompError(Exception):
    """Root of all ctxcomp errors."""

    is_retryable: bool = False


class ConfigError(CtxcompError, ValueError):
    """A pipeline spec, budget or compressor setting is invalid."""


class InputError(CtxcompError, ValueError):
    """The query, chunks or an input file cannot be used as given.

    Attributes:
        line: 1-based line number in an input file, when the error points at one.
    """

    def __init__(self, message: str, *, line: int | None = None) -> None:
        self.line = line
        super().__init__(f"line {line}: {message}" if line is not None else message)


class BudgetError(ConfigError):
    """A budget is invalid (zero, negative, or not a number)."""


class InfeasibleBudgetError(CtxcompError):
    """A valid budget that this compressor cannot meet for this input.

    Raised instead of returning an empty context when there is text to keep but not even
    its first character fits in the limit.

    Attributes:
        limit: the token limit that could not be met (None: not known).
        needed: the fewest tokens any output would have needed (None: not known).
    """

    def __init__(self, message: str, *, limit: int | None = None, needed: int | None = None) -> None:
        self.limit = limit
        self.needed = needed
        super().__init__(message)


class UnknownNameError(ConfigError, KeyError):
    """A name (stage, model, tokenizer, ...) is not known.

    Attributes:
        kind: what was looked up ("stage", "model", ...).
        name: the unknown name.
        known: the names that would have worked.
    """

    def __init__(self, kind: str, name: str, known: Iterable[str], hint: str = "") -> None:
        self.kind = kind
        self.name = name
        self.known = sorted(known)
        listed = ", ".join(self.known) if self.known else "(none)"
        msg = f"unknown {kind} {name!r}; known: {listed}"
        if hint:
            msg += f". {hint}"
        super().__init__(msg)

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


class UnknownModelError(UnknownNameError):
    """A model has no known tokenizer or price."""

    def __init__(self, name: str, known: Iterable[str], hint: str = "") -> None:
        super().__init__("model", name, known, hint)


class MissingDependencyError(CtxcompError, ImportError):
    """An optional dependency is not installed.

    Attributes:
        package: the import that failed.
        extra: the ctxcomp extra that installs it.
    """

    def __init__(self, package: str, extra: str, purpose: str = "") -> None:
        self.package = package
        self.extra = extra
        what = f" for {purpose}" if purpose else ""
        super().__init__(
            f"{package!r} is needed{what} but is not installed; "
            f'run: pip install "ctxcomp[{extra}]"'
        )


class BackendError(CtxcompError):
    """A backend (model, cache, service) failed."""

    is_retryable = True


class ModelLoadError(BackendError):
    """A model could not be found or loaded."""

    is_retryable = False


class CacheError(BackendError):
    """The cache backend failed; compression itself does not depend on it."""


class LLMError(BackendError):
    """A generative-model call failed (:mod:`ctxcomp.llm`); not retried unless a subclass says so.

    Attributes:
        status: the HTTP status of the failed call, when there was one.
    """

    is_retryable = False

    def __init__(self, message: str, *, status: int | None = None) -> None:
        self.status = status
        super().__init__(message)


class LLMRetryableError(LLMError):
    """A call that may succeed when tried again: a rate limit (429), a server error (5xx),
    a dropped connection."""

    is_retryable = True


class LLMTimeoutError(LLMRetryableError):
    """A call ran past its timeout."""
