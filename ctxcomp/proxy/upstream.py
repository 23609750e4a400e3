"""The one upstream: an ``httpx.AsyncClient`` on the configured base URL, and which
headers cross the proxy.

The URL comes from the config only; a request supplies a path under ``/v1`` and nothing
else (no SSRF). Hop-by-hop headers and the proxy's own ``x-ctxcomp-*`` request headers are
not forwarded; everything else (the API key included) is, and is never logged.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ctxcomp._deps import require
from ctxcomp.errors import BackendError

#: Headers that belong to one connection (RFC 9110 7.6.1), and ones httpx sets itself.
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
                        "trailer", "transfer-encoding", "upgrade", "host", "content-length"})


#: Response headers the proxy's own server sets (one of each, not two).
_OWN = frozenset({"date", "server"})


class UpstreamError(BackendError):
    """The upstream could not be reached or did not answer in time.

    Attributes:
        status: the HTTP status to answer with (502, or 504 on a timeout).
    """

    def __init__(self, message: str, status: int = 502) -> None:
        self.status = status
        super().__init__(message)


def request_headers(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """The client's headers to forward (hop-by-hop and ``x-ctxcomp-*`` removed)."""
    return [(k, v) for k, v in headers
            if k.lower() not in HOP_BY_HOP and not k.lower().startswith("x-ctxcomp-")]


def response_headers(headers: Iterable[tuple[str, str]], *, decoded: bool) -> list[tuple[str, str]]:
    """The upstream's headers to return (``decoded``: the body was decompressed, so its
    content-encoding no longer applies)."""
    drop = HOP_BY_HOP | _OWN | ({"content-encoding"} if decoded else set())
    return [(k, v) for k, v in headers if k.lower() not in drop]


class Upstream:
    """Sends requests to ``{base_url}{path}``.

    Args:
        base_url: the configured OpenAI base URL (``https://api.openai.com/v1``).
        connect_timeout, read_timeout: seconds.
        max_connections: the connection pool's size.
    """

    def __init__(self, base_url: str, *, connect_timeout: float = 10.0, read_timeout: float = 600.0,
                 max_connections: int = 200) -> None:
        httpx = require("httpx", "server", "the proxy")
        self.base_url = base_url.rstrip("/")
        self._httpx = httpx
        self.client = httpx.AsyncClient(
            timeout=httpx.Timeout(read_timeout, connect=connect_timeout),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            follow_redirects=False,
        )

    async def send(self, method: str, path: str, headers: list[tuple[str, str]], content: bytes,
                   query: str = "") -> Any:
        """The upstream's response with its body not yet read (read it, or stream it and
        ``aclose()`` it).

        Raises:
            UpstreamError: the upstream is unreachable (502) or timed out (504).
        """
        url = self.base_url + path + (f"?{query}" if query else "")
        request = self.client.build_request(method, url, headers=headers, content=content)
        try:
            return await self.client.send(request, stream=True)
        except self._httpx.TimeoutException as exc:
            raise UpstreamError(f"the upstream did not answer in time ({type(exc).__name__})", 504) from None
        except self._httpx.HTTPError as exc:
            raise UpstreamError(f"the upstream cannot be reached: {type(exc).__name__}: {exc}") from None

    async def aclose(self) -> None:
        await self.client.aclose()
