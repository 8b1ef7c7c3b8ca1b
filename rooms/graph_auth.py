"""An application's access token for Microsoft Graph (OAuth 2.0 client credentials), cached.

The app signs in as itself, with no user: POST the token endpoint with `client_id`,
`client_secret`, `scope=https://graph.microsoft.com/.default` and
`grant_type=client_credentials`; the reply holds `access_token` and `expires_in`
(https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow).
The token is reused until shortly before it expires, and dropped at once when Graph answers 401.
Neither the secret nor the token ever appears in an error, a log line or a `repr`.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable

from edge.errors import EdgeError
from rooms.rest import HttpClient, Reply, RestError, exchange

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
# Renew this long before expiry, so a token never runs out between reading and use.
RENEW_MARGIN_S = 300.0
_ERROR_CODE = re.compile(r"[a-z_]{1,40}")
_AADSTS = re.compile(r"AADSTS\d{5,8}\b")

# Entra ID's error codes, and what the operator does about each.
_FIXES = {
    "invalid_client": "check that client_secret_file holds the secret's value (not its id) and "
    "that the secret has not expired; create a new one under Certificates & secrets",
    "unauthorized_client": "check client_id: the app registration must exist in this tenant",
    "invalid_request": "check tenant and client_id (the directory and application ids)",
    "invalid_scope": "the app must have Microsoft Graph application permissions granted",
}


class GraphAuthError(EdgeError):
    """No access token could be had; the message names the app and the fix."""


class GraphToken:
    """An app-only Graph access token for one app registration, renewed when due."""

    def __init__(
        self,
        tenant: str,
        client_id: str,
        secret: str,
        token_url: str,
        http_client: HttpClient,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.tenant = tenant
        self.client_id = client_id
        self.url = token_url.replace("{tenant}", tenant)
        self._secret = secret
        self._http = http_client
        self._clock = clock
        self._lock = threading.Lock()
        self._token = ""
        self._renew_at = 0.0

    def __repr__(self) -> str:
        return f"<GraphToken app {self.client_id} tenant {self.tenant}>"

    def value(self) -> str:
        """Return a token that is valid now, fetching a new one when due."""
        with self._lock:
            if not self._token or self._clock() >= self._renew_at:
                self._fetch()
            return self._token

    def forget(self) -> None:
        """Drop the cached token (Graph refused it); the next `value()` fetches a new one."""
        with self._lock:
            self._token = ""

    def _fetch(self) -> None:
        what = f"Graph sign-in for app {self.client_id} (tenant {self.tenant})"
        form = {
            "client_id": self.client_id,
            "client_secret": self._secret,
            "scope": GRAPH_SCOPE,
            "grant_type": "client_credentials",
        }
        try:
            reply = exchange(self._http, "POST", self.url, what=what, form=form, cap_bytes=64_000)
            if reply.status != 200:
                raise GraphAuthError(f"{what} refused (HTTP {reply.status}): {self._why(reply)}")
            data = reply.json_object(what)
        except RestError as error:
            raise GraphAuthError(self._scrub(str(error))) from None
        token = data.get("access_token")
        expires_in = data.get("expires_in")
        if isinstance(expires_in, str) and expires_in.isdigit():
            expires_in = int(expires_in)  # Entra ID v1 endpoints send it as a string
        if not isinstance(token, str) or not token or len(token) > 16_000:
            raise GraphAuthError(f"{what}: the reply has no usable access_token")
        if not isinstance(expires_in, int) or isinstance(expires_in, bool) or expires_in <= 0:
            raise GraphAuthError(f"{what}: the reply has no positive expires_in")
        now = self._clock()
        self._token = token
        self._renew_at = now + max(expires_in - RENEW_MARGIN_S, expires_in / 2)

    def _why(self, reply: Reply) -> str:
        """Name Entra ID's error code and its fix, never its free text (it may echo input)."""
        try:
            data = reply.json_object("token error")
        except RestError:
            return "the reply is not an OAuth error; check token_url"
        code = data.get("error")
        if not isinstance(code, str) or not _ERROR_CODE.fullmatch(code):
            return "the reply is not an OAuth error; check token_url"
        description = data.get("error_description")
        aadsts = _AADSTS.search(description) if isinstance(description, str) else None
        fix = _FIXES.get(code, "check tenant, client_id and client_secret_file")
        return f"{code}{f' ({aadsts.group()})' if aadsts else ''}; {fix}"

    def _scrub(self, text: str) -> str:
        return text.replace(self._secret, "***") if self._secret else text
