"""The web page's answer while the log's database cannot be reached: 503, never a traceback.

An outage (console.log's `outage`: PostgreSQL down or unreachable, SQLite locked) may strike
anywhere, in the session lookup before a page runs or in the page's own queries. This
middleware answers it before the response starts with a short page in the reader's language
(JSON if the request asked for it) and a `Retry-After`; any other failure goes on to the
server's own error handling. A page already streaming (the live alarm list) just ends.
"""

from __future__ import annotations

import json
import logging
from http.cookies import SimpleCookie
from typing import Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from console.i18n import LANGUAGES, labels
from console.log import CentralLog

_logger = logging.getLogger(__name__)
RETRY_AFTER_S: Final = 5


class LogOutage:
    """ASGI middleware: answer 503 when the log's database fails as a whole."""

    def __init__(self, app: ASGIApp, log: CentralLog) -> None:
        self.app = app
        self.log = log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the app; answer an outage raised before the response started."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception as error:
            if not self.log.outage(error):
                raise
            _logger.warning("log unavailable for %s: %s", scope.get("path"), type(error).__name__)
            if not started:
                await _unavailable(scope, send)


def message(language: str) -> str:
    """Return the outage message in `language` (Japanese if unknown)."""
    return labels(language)["log_unreachable"]


async def _unavailable(scope: Scope, send: Send) -> None:
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
    cookies = SimpleCookie(headers.get("cookie", ""))
    language = cookies["lang"].value if "lang" in cookies else "ja"
    language = language if language in LANGUAGES else "ja"
    text = message(language)
    if "application/json" in headers.get("accept", ""):
        body, kind = json.dumps({"error": "log_unavailable", "detail": text}), "application/json"
    else:
        body, kind = text + "\n", "text/plain; charset=utf-8"
    encoded = body.encode()
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", kind.encode()),
                (b"content-length", str(len(encoded)).encode()),
                (b"retry-after", str(RETRY_AFTER_S).encode()),
                (b"cache-control", b"no-store"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": encoded})
