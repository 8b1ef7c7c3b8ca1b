"""A small HTTP server on 127.0.0.1 in a thread, for the stand-ins of hosted REST services.

A stand-in gives it one function that answers a request. The server records every request,
lets a test queue canned replies (throttling, expiry, hostile bodies) ahead of the real
answers, and collects the problems a stand-in finds in a request's shape: a test's fixture
fails the test when any were found.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # percent-decoded
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    unsized: bool = False  # no Content-Length: the body runs until the connection closes

    @classmethod
    def of(cls, status: int, data: Any, headers: dict[str, str] | None = None) -> Reply:
        content = {"Content-Type": "application/json", **(headers or {})}
        return cls(status, json.dumps(data).encode(), content)


class Problem(Exception):
    """A request that does not match the documented shape."""


class StandinServer:
    """Serve `answer` on a free loopback port until close()."""

    def __init__(
        self,
        name: str,
        answer: Callable[[Request], Reply],
        problem_reply: Callable[[str], Reply],
    ) -> None:
        self.name = name
        self._problem_reply = problem_reply
        self.requests: list[Request] = []
        self.problems: list[str] = []
        self._answer = answer
        self._canned: list[tuple[Callable[[Request], bool], Reply]] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                request = Request(
                    self.command,
                    unquote(parts.path),
                    parse_qs(parts.query, keep_blank_values=True),
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                )
                reply = server.handle(request)
                self.send_response(reply.status)
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                if reply.unsized:
                    self.send_header("Connection", "close")
                    self.close_connection = True
                else:
                    self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                # A client may stop reading a capped reply: that is its right.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(reply.body)

            do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _serve

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the test reads `requests` instead

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._http.daemon_threads = True
        # A short poll interval: shutdown() waits up to one interval.
        self._thread = threading.Thread(
            target=self._http.serve_forever, args=(0.02,), name=name, daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._http.server_address[:2]
        return f"http://{host!s}:{port}"

    def queue(self, reply: Reply, when: Callable[[Request], bool] = lambda r: True) -> None:
        """Answer the next request that `when` accepts with `reply`, before the real answer."""
        with self._lock:
            self._canned.append((when, reply))

    def handle(self, request: Request) -> Reply:
        with self._lock:
            self.requests.append(request)
            for index, (when, reply) in enumerate(self._canned):
                if when(request):
                    del self._canned[index]
                    return reply
        try:
            return self._answer(request)
        except Problem as problem:
            with self._lock:
                self.problems.append(f"{request.method} {request.path}: {problem}")
            return self._problem_reply(str(problem))

    def close(self) -> None:
        self._http.shutdown()
        self._http.server_close()
        self._thread.join(timeout=5)
