"""What the HTTP adapters share: a pooled ``httpx.AsyncClient`` and one mapping of failures.

httpx's own exception tree (``httpx/_exceptions.py``) is mapped here, once, to
the delivery results: a failure *before* the request left (connect error,
connect or pool timeout, write error) is a plain ``TransientError``; one
*after* it may have reached the server (read timeout, connection dropped while
waiting for the answer) is ``in_doubt`` — the provider may have accepted it.
"""

from __future__ import annotations

import functools
import ssl
from collections.abc import Mapping
from datetime import datetime
from email.utils import parsedate_to_datetime
from importlib.metadata import version

import httpx

from narrowcast.channels.errors import TransientError

USER_AGENT = f"narrowcast/{version('narrowcast')}"
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.WriteError)


def new_client(
    *,
    timeout: float,
    concurrency: int,
    base_url: str = "",
    headers: Mapping[str, str] | None = None,
) -> httpx.AsyncClient:
    """One keep-alive pool per provider, sized to the requests we keep in flight."""
    return httpx.AsyncClient(
        base_url=base_url,
        timeout=httpx.Timeout(timeout),
        limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
        headers={"User-Agent": USER_AGENT, **(headers or {})},
        follow_redirects=False,
        verify=_ssl_context(),
    )


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    # Loading the CA bundle takes ~0.1 s; every client of the process can share one context.
    return httpx.create_ssl_context()


def transport_failure(exc: httpx.HTTPError, *, outbox_id: int, provider: str) -> TransientError:
    """The ``TransientError`` for an httpx exception raised while talking to ``provider``."""
    detail = str(exc) or type(exc).__name__
    if isinstance(exc, _NOT_SENT):
        return TransientError(
            f"{provider}: request not sent — {type(exc).__name__}: {detail}", outbox_id=outbox_id
        )
    return TransientError(
        f"{provider}: no answer — {type(exc).__name__}: {detail} (the provider may have "
        "accepted the message)",
        outbox_id=outbox_id,
        in_doubt=True,
    )


def retry_after(headers: Mapping[str, str], now: datetime) -> float | None:
    """Seconds from ``Retry-After`` (delta-seconds or an HTTP date, RFC 9110 §10.2.3)."""
    value = headers.get("retry-after")
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - now).total_seconds())


def short(text: str, limit: int = 300) -> str:
    """A provider's answer, cut to fit one log line."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
