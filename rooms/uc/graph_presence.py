"""Microsoft Graph: each opted-in person's presence, set in this app's own presence session.

`POST /users/{id}/presence/setPresence` with `sessionId` = the app's client id
(https://learn.microsoft.com/graph/api/presence-setpresence), application permission
`Presence.ReadWrite.All`:

| state     | availability | activity          | kept alive by                                  |
| --------- | ------------ | ----------------- | ---------------------------------------------- |
| AVAILABLE | Available    | Available         | setting it again within 5 min (it fades after) |
| MEETING   | Busy         | InAConferenceCall | setting it again before `expiration_min` ends  |
| PHONE     | Busy         | InACall           | the same                                       |

AWAY is `POST /users/{id}/presence/clearPresence`: the app's session ends, and nothing else of
the person's presence changes.

Graph takes only the documented pairs, and "InAMeeting" is not among them for an app's
session: a meeting is shown as a conference call (Busy). The person's own setting in Teams
always wins over an app's session. Graph allows an app 1,500 presence requests per 30 s; a
token bucket keeps under that, and a 429 or 503 is retried after its Retry-After, a few times,
before the courier is told the server fails. Neither the app's token nor a person's id appears
in an error.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from urllib.parse import quote

from rooms.graph_auth import GraphAuthError, GraphToken
from rooms.rest import HttpClient, Reply, RestError, exchange
from rooms.uc.port import UcPersonError, UcServerError
from rooms.uc.states import UcState

_CODE = re.compile(r"[A-Za-z_.]{1,60}")
PAIRS = {
    UcState.AVAILABLE: ("Available", "Available"),
    UcState.MEETING: ("Busy", "InAConferenceCall"),
    UcState.PHONE: ("Busy", "InACall"),
}
AVAILABLE_FADES_S = 300.0
"""Graph fades an app's Available to AvailableInactive after 5 minutes without a new set."""
MARGIN_S = 60.0
LIMIT_REQUESTS = 1500
LIMIT_WINDOW_S = 30.0
RETRIES = 3
RETRY_DEFAULT_S = 5.0
RETRY_CEILING_S = 60.0
CAP_BYTES = 64_000


class TokenBucket:
    """At most `limit` takes in any `window_s`: a burst of `burst`, then a steady rate."""

    def __init__(
        self,
        limit: int,
        window_s: float,
        burst: int,
        clock: Callable[[], float],
        sleep: Callable[[float], None],
    ) -> None:
        self.burst = float(burst)
        self.rate = (limit - burst) / window_s  # burst + rate * window never exceeds limit
        self._clock = clock
        self._sleep = sleep
        self._tokens = float(burst)
        self._at = clock()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<TokenBucket {self.rate:.1f}/s burst {self.burst:.0f}>"

    def take(self) -> None:
        """Take one token, sleeping until there is one."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
            self._at = now
            if self._tokens < 1.0:
                self._sleep((1.0 - self._tokens) / self.rate)
                now = self._clock()
                self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
                self._at = now
            self._tokens -= 1.0


class GraphPresence:
    """Set opted-in people's presence in this app's Graph presence session."""

    def __init__(
        self,
        base_url: str,
        token: GraphToken,
        http_client: HttpClient,
        expiration_min: int = 60,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.name = f"graph {self.base_url} app {token.client_id}"
        self.client_id = token.client_id
        self.expiration_min = expiration_min
        self._token = token
        self._http = http_client
        self._sleep = sleep
        self.bucket = TokenBucket(LIMIT_REQUESTS, LIMIT_WINDOW_S, 50, clock, sleep)

    def __repr__(self) -> str:
        return f"<GraphPresence {self.name} expiration {self.expiration_min} min>"

    def refresh_s(self, state: UcState) -> float | None:
        """Return how soon a state is set again before Graph fades or expires it."""
        if state is UcState.AWAY:
            return None
        lasts = self.expiration_min * 60.0
        if state is UcState.AVAILABLE:
            lasts = min(lasts, AVAILABLE_FADES_S)
        return max(lasts - MARGIN_S, lasts / 2)

    def publish(self, uc_id: str, state: UcState) -> None:
        """Set or clear the app's presence session for the person; raise UcServerError or
        UcPersonError."""
        user = f"{self.base_url}/users/{quote(uc_id, safe='')}/presence"
        if state is UcState.AWAY:
            url, body, doing = f"{user}/clearPresence", {"sessionId": self.client_id}, "clearing"
        else:
            availability, activity = PAIRS[state]
            url, doing = f"{user}/setPresence", "setting"
            body = {
                "sessionId": self.client_id,
                "availability": availability,
                "activity": activity,
                "expirationDuration": f"PT{self.expiration_min}M",
            }
        self._post(url, body, f"{self.name}: {doing} presence", uc_id)

    def close(self) -> None:
        """Close the HTTP client (the sessions set expire on their own); idempotent."""
        self._http.close()

    def _post(self, url: str, body: dict[str, str], what: str, uc_id: str) -> None:
        renewed = False
        retries = 0
        while True:
            self.bucket.take()
            reply = self._exchange(url, body, what, uc_id)
            if reply.status == 200:
                return
            if reply.status == 401 and not renewed:
                renewed = True
                self._token.forget()  # expired or revoked: one new token, one more try
                continue
            if reply.status in (429, 503) and retries < RETRIES:
                retries += 1
                self._sleep(reply.retry_after_s(RETRY_DEFAULT_S, RETRY_CEILING_S))
                continue
            raise _refusal(reply, what)

    def _exchange(self, url: str, body: dict[str, str], what: str, uc_id: str) -> Reply:
        try:
            bearer = self._token.value()
        except GraphAuthError as error:
            raise UcServerError(str(error)) from None
        try:
            return exchange(
                self._http,
                "POST",
                url,
                what=what,
                cap_bytes=CAP_BYTES,
                headers={"Authorization": f"Bearer {bearer}"},
                json_body=body,
            )
        except RestError as error:
            text = str(error).replace(quote(uc_id, safe=""), "<person>").replace(uc_id, "<person>")
            raise UcServerError(text) from None


def _refusal(reply: Reply, what: str) -> Exception:
    said = f"{what} refused (HTTP {reply.status}{_code(reply)})"
    if reply.status == 404:
        return UcPersonError(
            f"{said}: Graph has no such user; check the person's uc_id (their Entra object id "
            "or user principal name, edge-provision people uc-presence)"
        )
    if reply.status == 400:
        return UcPersonError(f"{said}: check the person's uc_id")
    if reply.status == 403:
        return UcServerError(
            f"{said}: the app needs the application permission Presence.ReadWrite.All with "
            "admin consent"
        )
    if reply.status in (429, 503):
        return UcServerError(f"{said}: throttled after {RETRIES} retries; it is tried again later")
    return UcServerError(f"{said}: check base_url and Graph's service health")


def _code(reply: Reply) -> str:
    """Return ', Code' from a Graph error reply, never its message (it may echo input)."""
    try:
        error = reply.json_object("graph error").get("error")
    except RestError:
        return ""
    code = error.get("code") if isinstance(error, dict) else None
    return f", {code}" if isinstance(code, str) and _CODE.fullmatch(code) else ""
