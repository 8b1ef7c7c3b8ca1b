"""A stand-in for Microsoft Graph's presence API and the identity platform's token endpoint.

A stand-in, not Microsoft Graph: Graph is a hosted service with no local or installable
edition, so no real server can run in a test. It keeps each user's app presence session in
memory and checks every request against the documented shapes, recording a problem (the test
fails) for anything else:

- token: POST `/{tenant}/oauth2/v2.0/token`, form-encoded `client_id`, `client_secret`,
  `scope=https://graph.microsoft.com/.default`, `grant_type=client_credentials`
  (https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow).
- every Graph call: `Authorization: Bearer <issued token>`, else 401
  `InvalidAuthenticationToken` (https://learn.microsoft.com/graph/errors).
- POST `/users/{id}/presence/setPresence`: JSON with exactly `sessionId` (the application's
  id), `availability`, `activity` and optionally `expirationDuration` (ISO 8601, PT5M to PT4H);
  the pair must be one of the documented combinations; 200
  (https://learn.microsoft.com/graph/api/presence-setpresence).
- POST `/users/{id}/presence/clearPresence`: JSON with exactly `sessionId`; 200
  (https://learn.microsoft.com/graph/api/presence-clearpresence).
- Throttling: more than `limit` presence requests in `window_s` get 429 with `Retry-After`
  (https://learn.microsoft.com/graph/throttling-limits: 1,500 per 30 s per app).
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from urllib.parse import parse_qs

from tests.rooms.standin_server import Problem, Reply, Request, StandinServer

SCOPE = "https://graph.microsoft.com/.default"
# The documented availability/activity pairs an app's session may take.
PAIRS = frozenset(
    {
        ("Available", "Available"),
        ("Busy", "InACall"),
        ("Busy", "InAConferenceCall"),
        ("Away", "Away"),
        ("DoNotDisturb", "Presenting"),
    }
)
_DURATION = re.compile(r"PT(?:(\d+)H)?(?:(\d+)M)?")


def graph_error(status: int, code: str, message: str, **headers: str) -> Reply:
    return Reply.of(status, {"error": {"code": code, "message": message}}, headers)


class GraphPresenceStandin:
    """Users' app presence sessions, served as Graph's presence API serves them."""

    def __init__(
        self,
        *,
        tenant: str,
        client_id: str,
        secret: str,
        limit: int = 1500,
        window_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.tenant = tenant
        self.client_id = client_id
        self.secret = secret
        self.limit = limit
        self.window_s = window_s
        self.clock = clock
        self.users: set[str] = set()
        self.sessions: dict[str, tuple[str, str, str]] = {}  # id -> availability, activity, expiry
        self.tokens: set[str] = set()
        self.throttled = 0
        self._recent: deque[float] = deque()
        self._lock = threading.Lock()
        self.server = StandinServer(
            "graph-presence-standin", self._answer, lambda m: graph_error(400, "BadRequest", m)
        )

    @property
    def base_url(self) -> str:
        return f"{self.server.url}/v1.0"

    @property
    def token_url(self) -> str:
        return f"{self.server.url}/{{tenant}}/oauth2/v2.0/token"

    def presence_calls(self) -> list[Request]:
        return [r for r in self.server.requests if "/presence/" in r.path]

    def close(self) -> None:
        self.server.close()

    def _answer(self, request: Request) -> Reply:
        if request.path == f"/{self.tenant}/oauth2/v2.0/token":
            return self._token(request)
        match = re.fullmatch(
            r"/v1\.0/users/([^/]+)/presence/(setPresence|clearPresence)", request.path
        )
        if match is None or request.method != "POST":
            raise Problem(f"no such endpoint {request.method} {request.path}")
        auth = request.headers.get("authorization", "")
        if not auth.startswith("Bearer ") or auth[7:] not in self.tokens:
            return graph_error(401, "InvalidAuthenticationToken", "Access token has expired.")
        if not request.headers.get("content-type", "").startswith("application/json"):
            raise Problem("the body must be JSON (Content-Type: application/json)")
        if self._over_limit():
            self.throttled += 1
            return graph_error(429, "TooManyRequests", "Too many requests.", **{"Retry-After": "2"})
        user, action = match.groups()
        body = request.json()
        if not isinstance(body, dict):
            raise Problem("the body must be a JSON object")
        if body.get("sessionId") != self.client_id:
            raise Problem(f"sessionId {body.get('sessionId')!r} is not the application's id")
        if user not in self.users:
            return graph_error(404, "NotFound", f"User {user} not found.")
        if action == "clearPresence":
            if set(body) != {"sessionId"}:
                raise Problem(f"clearPresence takes only sessionId, got {sorted(body)}")
            self.sessions.pop(user, None)
            return Reply(200)
        return self._set(user, body)

    def _set(self, user: str, body: dict[str, object]) -> Reply:
        keys = set(body)
        if not {"sessionId", "availability", "activity"} <= keys or keys - {
            "sessionId", "availability", "activity", "expirationDuration"
        }:  # fmt: skip
            raise Problem(f"setPresence keys {sorted(keys)}")
        pair = (body["availability"], body["activity"])
        if pair not in PAIRS:
            raise Problem(f"availability/activity {pair} is not a documented combination")
        expiry = body.get("expirationDuration", "PT5M")
        found = _DURATION.fullmatch(expiry) if isinstance(expiry, str) else None
        minutes = (int(found[1] or 0) * 60 + int(found[2] or 0)) if found else 0
        if not 5 <= minutes <= 240:
            raise Problem(f"expirationDuration {expiry!r} is not PT5M to PT4H")
        self.sessions[user] = (str(pair[0]), str(pair[1]), str(expiry))
        return Reply(200)

    def _over_limit(self) -> bool:
        with self._lock:
            now = self.clock()
            while self._recent and self._recent[0] <= now - self.window_s:
                self._recent.popleft()
            if len(self._recent) >= self.limit:
                return True
            self._recent.append(now)
            return False

    def _token(self, request: Request) -> Reply:
        form = {k: v[0] for k, v in parse_qs(request.body.decode(), keep_blank_values=True).items()}
        if request.method != "POST" or set(form) != {
            "client_id", "client_secret", "scope", "grant_type"
        }:  # fmt: skip
            raise Problem(f"token request {request.method} with {sorted(form)}")
        if form["grant_type"] != "client_credentials" or form["scope"] != SCOPE:
            raise Problem(f"grant_type/scope {form['grant_type']!r} {form['scope']!r}")
        if form["client_id"] != self.client_id or form["client_secret"] != self.secret:
            return Reply.of(401, {"error": "invalid_client", "error_description": "AADSTS7000215"})
        token = "eyJ0eXAi." + secrets.token_urlsafe(24)
        self.tokens.add(token)
        return Reply.of(200, {"token_type": "Bearer", "expires_in": 3599, "access_token": token})
