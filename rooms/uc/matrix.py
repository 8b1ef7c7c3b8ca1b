"""Matrix (e.g. Synapse): each opted-in person's presence, set as that person.

Matrix lets only the user set their own presence, so the service logs in as each person with
the homeserver's admin API (`POST /_synapse/admin/v1/users/{user_id}/login`, which makes no
device the person sees) and keeps that token while the person is in the building; it logs the
token out once the person is away, and all of them at close. Then
`PUT /_matrix/client/v3/presence/{user_id}/status` with:

| state     | presence  | status_msg      |
| --------- | --------- | --------------- |
| AVAILABLE | online    | in the building |
| MEETING   | online    | in a meeting    |
| PHONE     | online    | on the phone    |
| AWAY      | offline   | (empty)         |

AWAY is "offline" rather than "unavailable": it is what the person shows when nothing sets their
presence, so the service's absence and an empty building read the same. Synapse lets "online"
lapse to offline within about a minute unless it is set again, so an online state is refreshed
every `refresh_s` (20 s by default). Setting AWAY sends an empty status_msg, which clears the
words set before. At close, every person whose token is still held is set AWAY first (within
CLOSE_BUDGET_S in all), so no "in a meeting" outlives the service. A 429 (Synapse's
rc_presence) is never waited out here: UcLaterError tells the courier when to try this person
again, and the others go on. Neither the admin token, a person's token nor their user id
appears in an error or a log line.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable
from urllib.parse import quote

from rooms.rest import HttpClient, Reply, RestError, exchange
from rooms.uc.port import UcError, UcLaterError, UcPersonError, UcServerError
from rooms.uc.states import UcState

_ERRCODE = re.compile(r"M_[A-Z_]{1,40}")
# A person's token is asked to expire on its own after this long, should a logout be missed.
TOKEN_LIFETIME_S = 12 * 3600
CAP_BYTES = 64_000
RETRY_CEILING_S = 10.0
"""The longest a rate-limited person is asked to wait before their next try."""
CLOSE_BUDGET_S = 5.0
"""How long close() spends in all setting held people AWAY before it only logs them out."""


class MatrixPresence:
    """Set opted-in people's presence on one Matrix homeserver."""

    def __init__(
        self,
        base_url: str,
        admin_token: str,
        http_client: HttpClient,
        refresh_s: float = 20.0,
        *,
        wall_clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.name = f"matrix {self.base_url}"
        self._admin = admin_token
        self._http = http_client
        self._refresh_s = refresh_s
        self._wall = wall_clock
        self._monotonic = monotonic
        self._tokens: dict[str, str] = {}
        self._closed = False

    def __repr__(self) -> str:
        return f"<MatrixPresence {self.base_url} sessions={len(self._tokens)}>"

    def refresh_s(self, state: UcState) -> float | None:
        """Return how soon an online state is set again (offline never lapses)."""
        return None if state is UcState.AWAY else self._refresh_s

    def publish(self, uc_id: str, state: UcState) -> None:
        """Set the person's presence as the person; raise UcServerError or UcPersonError."""
        body = {
            "presence": "offline" if state is UcState.AWAY else "online",
            "status_msg": state.words,
        }
        url = f"{self.base_url}/_matrix/client/v3/presence/{quote(uc_id, safe='')}/status"
        relogged = False
        while True:
            token = self._token(uc_id)
            reply = self._call("PUT", url, "setting presence", token, body, uc_id)
            if reply.status == 200:
                break
            if reply.status == 401 and not relogged:
                relogged = True
                self._tokens.pop(uc_id, None)  # revoked or expired: log in again once
                continue
            if reply.status == 429:  # Synapse limits each user's presence changes (rc_presence)
                raise UcLaterError(
                    f"{self.name}: setting presence rate-limited (HTTP 429{_errcode(reply)}); "
                    "this person is tried again later",
                    _retry_after_s(reply),
                )
            raise self._refusal(reply, "setting presence")
        if state is UcState.AWAY:
            self._logout(self._tokens.pop(uc_id, None), uc_id)

    def close(self) -> None:
        """Set every held person AWAY, log their tokens out, close the client; idempotent."""
        if self._closed:
            return
        self._closed = True
        deadline = self._monotonic() + CLOSE_BUDGET_S
        for uc_id in list(self._tokens):
            if self._monotonic() < deadline:
                with contextlib.suppress(UcError):  # Synapse lets "online" lapse on its own
                    self.publish(uc_id, UcState.AWAY)  # logs the token out too
        for uc_id, token in list(self._tokens.items()):
            self._logout(token, uc_id)
        self._tokens.clear()
        self._http.close()

    def _token(self, uc_id: str) -> str:
        token = self._tokens.get(uc_id)
        if token is not None:
            return token
        url = f"{self.base_url}/_synapse/admin/v1/users/{quote(uc_id, safe='')}/login"
        body = {"valid_until_ms": int((self._wall() + TOKEN_LIFETIME_S) * 1000)}
        reply = self._call("POST", url, "logging in as the person", self._admin, body, uc_id)
        if reply.status != 200:
            raise self._refusal(reply, "logging in as the person", admin=True)
        try:
            token = reply.json_object(f"{self.name}: login").get("access_token")
        except RestError as error:
            raise UcServerError(str(error)) from None
        if not isinstance(token, str) or not token or len(token) > 4096:
            raise UcServerError(f"{self.name}: the admin login reply has no access_token")
        self._tokens[uc_id] = token
        return token

    def _logout(self, token: str | None, uc_id: str) -> None:
        if token is None:
            return
        url = f"{self.base_url}/_matrix/client/v3/logout"
        with contextlib.suppress(UcServerError):  # it expires on its own (valid_until_ms)
            self._call("POST", url, "logging out", token, {}, uc_id)

    def _call(
        self, method: str, url: str, doing: str, token: str, body: object, uc_id: str
    ) -> Reply:
        try:
            return exchange(
                self._http,
                method,
                url,
                what=f"{self.name}: {doing}",
                cap_bytes=CAP_BYTES,
                headers={"Authorization": f"Bearer {token}"},
                json_body=body,
            )
        except RestError as error:
            text = str(error).replace(quote(uc_id, safe=""), "<person>").replace(uc_id, "<person>")
            raise UcServerError(text) from None

    def _refusal(self, reply: Reply, doing: str, *, admin: bool = False) -> Exception:
        code = _errcode(reply)
        what = f"{self.name}: {doing} refused (HTTP {reply.status}{code})"
        if reply.status == 404 or (reply.status == 400 and admin):
            return UcPersonError(
                f"{what}: the server has no such local user; check the person's uc_id "
                "(edge-provision people uc-presence)"
            )
        if admin and reply.status in (401, 403):
            return UcServerError(
                f"{what}: check that admin_token_file holds a server admin's access token"
            )
        if reply.status == 403:
            return UcPersonError(f"{what}: the server does not let this person set presence")
        if reply.status == 429:
            return UcServerError(
                f"{what}: rate-limited; raise the homeserver's rc_presence.per_user"
            )
        return UcServerError(f"{what}: check the homeserver and base_url")


def _retry_after_s(reply: Reply) -> float:
    """Return the wait a 429 asks for (`retry_after_ms`), at most RETRY_CEILING_S."""
    try:
        wait_ms = reply.json_object("matrix limit").get("retry_after_ms")
    except RestError:
        wait_ms = None
    if not isinstance(wait_ms, int) or isinstance(wait_ms, bool) or wait_ms < 0:
        return RETRY_CEILING_S
    return min(wait_ms / 1000, RETRY_CEILING_S)


def _errcode(reply: Reply) -> str:
    """Return ', M_CODE' from a Matrix error reply, never its free text (it may echo input)."""
    try:
        code = reply.json_object("matrix error").get("errcode")
    except RestError:
        return ""
    return f", {code}" if isinstance(code, str) and _ERRCODE.fullmatch(code) else ""
