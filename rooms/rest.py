"""One bounded HTTP exchange with an outside REST service (Microsoft Graph, Entra ID, Garoon).

Any server may be hostile or broken: a reply is read up to a size cap and no further, its JSON
must be an object, and every failure becomes `RestError` with a message that names what was
wrong and carries no header (so never a token or a password).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from edge.errors import EdgeError

# A page of fifty events with their attendees is tens of kilobytes; a megabyte is generous.
REPLY_CAP_BYTES = 1_000_000


HttpClient = httpx.Client
"""The HTTP client every REST adapter is given; httpx is imported here only."""


def http_client(timeout_s: float) -> HttpClient:
    """Return a client for one outside service: bounded waits, redirects never followed."""
    # A redirect would carry the Authorization header to wherever the server points.
    return httpx.Client(timeout=timeout_s, follow_redirects=False)


class RestError(EdgeError):
    """A REST exchange failed before a usable reply came back."""


@dataclass(frozen=True, slots=True)
class Reply:
    """A whole, size-capped reply: its status, headers and body."""

    status: int
    headers: httpx.Headers
    body: bytes

    def json_object(self, what: str) -> dict[str, Any]:
        """Return the body as a JSON object; raise RestError naming `what` otherwise."""
        try:
            data = json.loads(self.body) if self.body else None
        except (ValueError, RecursionError) as error:
            raise RestError(f"{what}: the reply is not JSON ({type(error).__name__})") from None
        if not isinstance(data, dict):
            raise RestError(f"{what}: the reply is not a JSON object")
        return data

    def retry_after_s(self, default_s: float, ceiling_s: float) -> float:
        """Return the wait the server asked for (`Retry-After` in seconds), within a ceiling."""
        raw = self.headers.get("retry-after", "").strip()
        # The HTTP-date form is rare from these services; a wait we cannot read is the default.
        seconds = float(raw) if raw.isdigit() and len(raw) < 7 else default_s
        return min(max(seconds, 0.0), ceiling_s)


def exchange(
    client: httpx.Client,
    method: str,
    url: str,
    *,
    what: str,
    cap_bytes: int = REPLY_CAP_BYTES,
    headers: Mapping[str, str] | None = None,
    params: Mapping[str, str] | None = None,
    json_body: Any = None,
    form: Mapping[str, str] | None = None,
) -> Reply:
    """Send one request and read its reply up to `cap_bytes`; raise RestError naming `what`."""
    try:
        with client.stream(
            method, url, headers=headers, params=params, json=json_body, data=form
        ) as response:
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > cap_bytes:
                raise RestError(f"{what}: the reply is {declared} bytes, over {cap_bytes}")
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > cap_bytes:
                    raise RestError(f"{what}: the reply is over {cap_bytes} bytes")
            return Reply(response.status_code, response.headers, bytes(body))
    except (httpx.InvalidURL, UnicodeError) as error:
        # A hostile link (a NUL, 70k characters, a lone surrogate) is refused before it is
        # sent; its text is not repeated, it may hold anything.
        raise RestError(
            f"{what}: the URL is not valid ({type(error).__name__}); nothing was sent"
        ) from None
    except (httpx.HTTPError, httpx.StreamError) as error:
        # httpx messages name the URL, never a header: no token or password leaks here.
        raise RestError(f"{what}: {type(error).__name__}: {error}") from None


# Answers that mean "too busy now, ask again later" (throttled, or briefly unavailable).
BUSY = frozenset({429, 503})

READ_WAIT_S = 5.0
"""The most a read waits in all for a busy server: the service's one thread waits with it."""

WRITE_WAIT_S = 0.0
"""A write never waits: it acts on evidence that ages, so the next poll decides it again."""


def with_backoff(
    send: Callable[[], Reply],
    *,
    sleep: Callable[[float], None],
    what: str,
    budget_s: float,
    default_wait_s: float = 1.0,
) -> Reply:
    """Send until the reply is not BUSY, waiting what each asks while `budget_s` lasts in all.

    A wait that would take the total past `budget_s` is not begun: RestError at once.
    """
    left = budget_s
    while True:
        reply = send()
        if reply.status not in BUSY:
            return reply
        wait = reply.retry_after_s(default_wait_s, ceiling_s=3600.0)
        if wait > left:
            raise RestError(
                f"{what}: still throttled (HTTP {reply.status}), asked to wait {wait:.0f} s "
                f"({budget_s:.0f} s allowed); the next poll tries again"
            )
        left -= wait
        sleep(wait)
