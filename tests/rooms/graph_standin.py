"""A stand-in for Microsoft Graph and the Microsoft identity platform's token endpoint.

A stand-in, not Microsoft Graph: Graph and Entra ID are hosted services with no local or
installable edition, so no real server can run in a test. This one holds room mailboxes'
events in memory and checks every request against the documented shapes, recording a problem
(the test fails) for anything else:

- token: POST `/{tenant}/oauth2/v2.0/token`, form-encoded `client_id`, `client_secret`,
  `scope=https://graph.microsoft.com/.default`, `grant_type=client_credentials`; answers
  `token_type`, `expires_in`, `access_token`, or `invalid_client` with an AADSTS code
  (https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow).
- every Graph call: `Authorization: Bearer <issued token>`, else 401
  `InvalidAuthenticationToken` (https://learn.microsoft.com/graph/errors).
- GET `/users/{room}/calendarView`: `startDateTime`, `endDateTime` (ISO 8601), `$select`,
  `$expand=extensions($filter=id eq '...')`, `$top`; `Prefer: outlook.timezone="UTC"`;
  pages with `@odata.nextLink` (https://learn.microsoft.com/graph/api/user-list-calendarview,
  https://learn.microsoft.com/graph/paging). Times come back as `dateTime` without offset
  plus `timeZone: "UTC"`, seven fractional digits, as Graph sends them.
- POST `/users/{room}/events/{id}/extensions`: `@odata.type`
  `microsoft.graph.openTypeExtension`, `extensionName`; 409 when it exists; PATCH
  `.../extensions/{name}` replaces it
  (https://learn.microsoft.com/graph/api/opentypeextension-post-opentypeextension,
  https://learn.microsoft.com/graph/api/opentypeextension-update).
- POST `/users/{room}/events/{id}/decline`: `comment` (string), `sendResponse` (boolean);
  202 (https://learn.microsoft.com/graph/api/event-decline).
- POST `/users/{room}/events`: `subject`, `start`/`end` dateTimeTimeZone, `showAs`,
  `extensions`; 201 with the event (https://learn.microsoft.com/graph/api/user-post-events).
- GET `/users/{room}/events/{id}`: `$select` of event properties,
  `Prefer: outlook.timezone="UTC"` (https://learn.microsoft.com/graph/api/event-get).
- DELETE `/users/{room}/events/{id}`: 204 (https://learn.microsoft.com/graph/api/event-delete).
"""

from __future__ import annotations

import itertools
import secrets
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlencode

from tests.rooms.standin_server import Problem, Reply, Request, StandinServer

SCOPE = "https://graph.microsoft.com/.default"
EXTENSION_TYPE = "microsoft.graph.openTypeExtension"
EXTENSION_PREFIX = "Microsoft.OutlookServices.OpenTypeExtension."
SELECTABLE = frozenset(
    {"id", "start", "end", "organizer", "attendees", "subject", "isCancelled", "responseStatus",
     "showAs", "body", "location", "iCalUId", "type"}
)  # fmt: skip
SHOW_AS = frozenset({"free", "tentative", "busy", "oof", "workingElsewhere", "unknown"})


def graph_error(status: int, code: str, message: str) -> Reply:
    return Reply.of(status, {"error": {"code": code, "message": message}})


class GraphStandin:
    """Room mailboxes with their events, served as Graph serves them."""

    def __init__(self, *, tenant: str, client_id: str, secret: str, page_size: int = 50) -> None:
        self.tenant = tenant
        self.client_id = client_id
        self.secret = secret
        self.page_size = page_size
        self.mailboxes: dict[str, dict[str, dict[str, Any]]] = {}
        self.denied: set[str] = set()  # mailboxes outside the application access policy
        self.declined_leave_view = False  # the room's declined copy leaves its calendar
        self.tokens: set[str] = set()  # valid now
        self.issued: list[str] = []  # every token ever issued
        self._ids = itertools.count(1)
        self.server = StandinServer(
            "graph-standin", self._answer, lambda m: graph_error(400, "BadRequest", m)
        )

    # -- what tests use

    @property
    def base_url(self) -> str:
        return f"{self.server.url}/v1.0"

    @property
    def token_url(self) -> str:
        return f"{self.server.url}/{{tenant}}/oauth2/v2.0/token"

    def add_room(self, mailbox: str) -> None:
        self.mailboxes.setdefault(mailbox, {})

    def add_event(
        self,
        mailbox: str,
        start: datetime,
        end: datetime,
        *,
        subject: str = "Meeting",
        organizer: str = "organiser@city.example",
        attendees: tuple[str, ...] = (),
        cancelled: bool = False,
    ) -> str:
        uid = f"AAMkAD{next(self._ids):04d}=="
        self.mailboxes[mailbox][uid] = {
            "id": uid,
            "subject": subject,
            "start": _graph_time(start),
            "end": _graph_time(end),
            "organizer": {"emailAddress": {"name": "Organiser", "address": organizer}},
            "attendees": [
                {
                    "type": "required",
                    "status": {"response": "none", "time": "0001-01-01T00:00:00Z"},
                    "emailAddress": {"name": a, "address": a},
                }
                for a in attendees
            ]
            + [
                {
                    "type": "resource",
                    "status": {"response": "accepted", "time": "2026-01-01T00:00:00Z"},
                    "emailAddress": {"name": "Room", "address": mailbox},
                }
            ],
            "isCancelled": cancelled,
            "responseStatus": {"response": "accepted", "time": "2026-01-01T00:00:00Z"},
            "showAs": "busy",
            "extensions": [],
            # Not Graph fields, never served: the window filter's times, what the organiser heard.
            "_start": start,
            "_end": end,
            "_told": None,
        }
        return uid

    def event(self, mailbox: str, uid: str) -> dict[str, Any]:
        return self.mailboxes[mailbox][uid]

    def move(self, mailbox: str, uid: str, start: datetime, end: datetime) -> None:
        """Move an event, as its organiser would."""
        event = self.mailboxes[mailbox][uid]
        event.update(start=_graph_time(start), end=_graph_time(end), _start=start, _end=end)

    @property
    def tokens_issued(self) -> int:
        return len(self.issued)

    def revoke_tokens(self) -> None:
        """Make every token issued so far expire (Graph answers 401 to them)."""
        self.tokens.clear()

    def calls(self, method: str, path_part: str) -> list[Request]:
        return [r for r in self.server.requests if r.method == method and path_part in r.path]

    def close(self) -> None:
        self.server.close()

    # -- serving

    def _answer(self, request: Request) -> Reply:
        if request.path == f"/{self.tenant}/oauth2/v2.0/token":
            return self._token(request)
        if not request.path.startswith("/v1.0/users/"):
            raise Problem(f"no such endpoint {request.path}")
        auth = request.headers.get("authorization", "")
        if not auth.startswith("Bearer ") or auth[7:] not in self.tokens:
            return graph_error(
                401, "InvalidAuthenticationToken", "Access token has expired or is not yet valid."
            )
        parts = request.path[len("/v1.0/users/") :].split("/")
        mailbox = parts[0]
        if mailbox not in self.mailboxes:
            return graph_error(404, "ErrorInvalidUser", "The requested user is invalid.")
        if mailbox in self.denied:
            return graph_error(403, "ErrorAccessDenied", "Access to OData is disabled.")
        rest = parts[1:]
        route = (request.method, len(rest))
        if route == ("GET", 1) and rest[0] == "calendarView":
            return self._calendar_view(request, mailbox)
        if route == ("POST", 1) and rest[0] == "events":
            return self._create(request, mailbox)
        if len(rest) >= 2 and rest[0] == "events":
            event = self.mailboxes[mailbox].get(rest[1])
            if event is None:
                return graph_error(404, "ErrorItemNotFound", "The specified object was not found.")
            if route == ("GET", 2):
                return self._get_event(request, event)
            if route == ("DELETE", 2):
                self._no_body(request)
                del self.mailboxes[mailbox][rest[1]]
                return Reply(204)
            if route == ("POST", 3) and rest[2] == "decline":
                return self._decline(request, mailbox, event)
            if route == ("POST", 3) and rest[2] == "extensions":
                return self._add_extension(request, event)
            if route == ("PATCH", 4) and rest[2] == "extensions":
                return self._update_extension(request, event, rest[3])
        raise Problem(f"no such endpoint {request.method} {request.path}")

    def _token(self, request: Request) -> Reply:
        if request.method != "POST":
            raise Problem("the token endpoint takes POST")
        if request.headers.get("content-type") != "application/x-www-form-urlencoded":
            raise Problem("the token request must be form-encoded")
        form = {k: v[0] for k, v in parse_qs(request.body.decode(), keep_blank_values=True).items()}
        expected = {"client_id", "client_secret", "scope", "grant_type"}
        if set(form) != expected:
            raise Problem(f"token form keys {sorted(form)}, expected {sorted(expected)}")
        if form["grant_type"] != "client_credentials" or form["scope"] != SCOPE:
            raise Problem(f"grant_type/scope {form['grant_type']!r} {form['scope']!r}")
        if form["client_id"] != self.client_id or form["client_secret"] != self.secret:
            return Reply.of(
                401,
                {
                    "error": "invalid_client",
                    "error_description": "AADSTS7000215: Invalid client secret provided. "
                    f"Ensure the secret being sent is the value ({form['client_secret']}).",
                    "error_codes": [7000215],
                    "trace_id": "0000",
                    "correlation_id": "0000",
                },
            )
        token = "eyJ0eXAi." + secrets.token_urlsafe(24)
        self.tokens.add(token)
        self.issued.append(token)
        return Reply.of(
            200,
            {"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599,
             "access_token": token},
        )  # fmt: skip

    def _calendar_view(self, request: Request, mailbox: str) -> Reply:
        self._no_body(request)
        query = {k: v[0] for k, v in request.query.items()}
        allowed = {"startDateTime", "endDateTime", "$select", "$expand", "$top", "$skip"}
        if not {"startDateTime", "endDateTime"} <= set(query) <= allowed:
            raise Problem(f"calendarView query {sorted(query)}; it needs the window, at most "
                          f"{sorted(allowed)}")  # fmt: skip
        if request.headers.get("prefer") != 'outlook.timezone="UTC"':
            raise Problem(f"Prefer header {request.headers.get('prefer')!r}")
        start, end = _iso(query["startDateTime"]), _iso(query["endDateTime"])
        select = set(query.get("$select", "").split(",")) - {""}
        if not select or not select <= SELECTABLE:
            raise Problem(f"$select {sorted(select)} names no or unknown event properties")
        expand = query.get("$expand", "")
        wanted: str | None = None
        if expand:
            prefix, suffix = "extensions($filter=id eq '", "')"
            if not (expand.startswith(prefix) and expand.endswith(suffix)):
                raise Problem(f"$expand {expand!r} is not extensions($filter=id eq '...')")
            wanted = expand[len(prefix) : -len(suffix)]
        top = int(query.get("$top", "10"))
        if not 1 <= top <= 1000:
            raise Problem(f"$top {top} outside 1..1000")
        skip = int(query.get("$skip", "0"))
        events = [
            e
            for e in self.mailboxes[mailbox].values()
            if e["_start"] < end and e["_end"] > start
            and not (self.declined_leave_view and e["responseStatus"]["response"] == "declined")
        ]  # fmt: skip
        size = min(top, self.page_size)
        page = events[skip : skip + size]
        value = []
        for event in page:
            shown = {k: v for k, v in event.items() if k in select or k == "id"}
            shown["@odata.etag"] = 'W/"abc"'
            if wanted is not None:
                shown["extensions"] = [x for x in event["extensions"] if x["id"] == wanted]
            value.append(shown)
        body: dict[str, Any] = {"@odata.context": f"{self.base_url}/$metadata#events",
                                "value": value}  # fmt: skip
        if skip + size < len(events):
            more = {**query, "$skip": str(skip + size)}
            body["@odata.nextLink"] = (
                f"{self.base_url}/users/{mailbox}/calendarView?{urlencode(more)}"
            )
        return Reply.of(200, body)

    def _get_event(self, request: Request, event: dict[str, Any]) -> Reply:
        self._no_body(request)
        query = {k: v[0] for k, v in request.query.items()}
        if not set(query) <= {"$select"}:
            raise Problem(f"event query {sorted(query)}; at most $select")
        if request.headers.get("prefer") != 'outlook.timezone="UTC"':
            raise Problem(f"Prefer header {request.headers.get('prefer')!r}")
        select = set(query.get("$select", "").split(",")) - {""}
        if not select <= SELECTABLE:
            raise Problem(f"$select {sorted(select)} names unknown event properties")
        shown = {
            k: v
            for k, v in event.items()
            if (not select or k in select or k == "id") and k != "extensions"
            if not k.startswith("_")
        }
        return Reply.of(200, shown)

    def _create(self, request: Request, mailbox: str) -> Reply:
        data = self._json(request)
        keys = {"subject", "start", "end", "showAs", "extensions"}
        if not {"start", "end"} <= set(data) <= keys:
            raise Problem(f"event keys {sorted(data)}, expected start, end within {sorted(keys)}")
        if not isinstance(data.get("subject", ""), str):
            raise Problem("subject is not a string")
        if data.get("showAs", "busy") not in SHOW_AS:
            raise Problem(f"showAs {data.get('showAs')!r}")
        start, end = _time_zone_time(data["start"]), _time_zone_time(data["end"])
        uid = self.add_event(mailbox, start, end, subject=data.get("subject", ""),
                             organizer=mailbox)  # fmt: skip
        event = self.mailboxes[mailbox][uid]
        event["responseStatus"] = {"response": "organizer", "time": "0001-01-01T00:00:00Z"}
        for extension in data.get("extensions", []):
            event["extensions"].append(self._extension(extension))
        shown = {k: v for k, v in event.items() if k != "extensions" and not k.startswith("_")}
        return Reply.of(201, shown)

    def _decline(self, request: Request, mailbox: str, event: dict[str, Any]) -> Reply:
        data = self._json(request)
        if not set(data) <= {"comment", "sendResponse", "proposedNewTime"}:
            raise Problem(f"decline keys {sorted(data)}")
        if not isinstance(data.get("comment", ""), str):
            raise Problem("comment is not a string")
        if not isinstance(data.get("sendResponse", True), bool):
            raise Problem("sendResponse is not a boolean")
        if event["responseStatus"]["response"] == "organizer":
            return graph_error(400, "ErrorInvalidRequest", "The organizer cannot decline.")
        event["responseStatus"] = {"response": "declined", "time": _now()}
        event["_told"] = data.get("comment") if data.get("sendResponse") else None
        return Reply(202)

    def _add_extension(self, request: Request, event: dict[str, Any]) -> Reply:
        extension = self._extension(self._json(request))
        if any(x["id"] == extension["id"] for x in event["extensions"]):
            return graph_error(409, "NameAlreadyExists", "An item with this name already exists.")
        event["extensions"].append(extension)
        return Reply.of(201, extension)

    def _update_extension(self, request: Request, event: dict[str, Any], name: str) -> Reply:
        data = self._json(request)
        if data.get("@odata.type") != EXTENSION_TYPE:
            raise Problem(f"@odata.type {data.get('@odata.type')!r}")
        for index, existing in enumerate(event["extensions"]):
            if existing["id"] in {name, EXTENSION_PREFIX + name}:
                event["extensions"][index] = {
                    **{k: v for k, v in data.items() if k != "@odata.type"},
                    "@odata.type": "#" + EXTENSION_TYPE,
                    "id": existing["id"],
                    "extensionName": existing["extensionName"],
                }
                return Reply(204)
        return graph_error(404, "ErrorItemNotFound", "The extension was not found.")

    def _extension(self, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict) or data.get("@odata.type") != EXTENSION_TYPE:
            raise Problem(f"an open extension needs @odata.type {EXTENSION_TYPE}")
        name = data.get("extensionName")
        if not isinstance(name, str) or not name:
            raise Problem("an open extension needs extensionName")
        return {
            **{k: v for k, v in data.items() if k != "@odata.type"},
            "@odata.type": "#" + EXTENSION_TYPE,
            "id": EXTENSION_PREFIX + name,
        }

    def _json(self, request: Request) -> Any:
        if request.headers.get("content-type") != "application/json":
            raise Problem(f"content-type {request.headers.get('content-type')!r}, not JSON")
        try:
            data = request.json()
        except ValueError as error:
            raise Problem(f"body is not JSON: {error}") from None
        if not isinstance(data, dict):
            raise Problem("body is not a JSON object")
        return data

    def _no_body(self, request: Request) -> None:
        if request.body:
            raise Problem("this request takes no body")


def _graph_time(moment: datetime) -> dict[str, str]:
    text = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.0000000")
    return {"dateTime": text, "timeZone": "UTC"}


def _time_zone_time(value: Any) -> datetime:
    if not isinstance(value, dict) or set(value) != {"dateTime", "timeZone"}:
        raise Problem(f"dateTimeTimeZone {value!r} needs exactly dateTime and timeZone")
    if value["timeZone"] != "UTC":
        raise Problem(f"timeZone {value['timeZone']!r} (this stand-in knows UTC)")
    moment = datetime.fromisoformat(value["dateTime"])
    if moment.tzinfo is not None:
        raise Problem("dateTime carries an offset; Graph takes it without one plus timeZone")
    return moment.replace(tzinfo=UTC)


def _iso(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise Problem(f"{text!r} is not an ISO 8601 date-time") from None
    if moment.tzinfo is None:
        raise Problem(f"{text!r} has no offset")
    return moment


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.0000000Z")
