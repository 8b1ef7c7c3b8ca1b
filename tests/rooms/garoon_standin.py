"""A stand-in for Cybozu Garoon's REST API (schedule events of facilities).

A stand-in, not Garoon: Garoon on cybozu.com is a hosted service, and the package edition is
licensed software for Windows or RHEL-family servers with no edition a test could install and
start here, so no real server can run in a test. This one holds events in memory and checks
every request against the documented shapes, recording a problem (the test fails) otherwise:

- every request: `X-Cybozu-Authorization` = base64(`login:password`), else 401 with
  cybozu.com's `CB_WA01` (https://cybozu.dev/ja/garoon/docs/rest-api/overview/authentication/).
  Errors are `{"error": {"errorCode", "message", "cause", "counterMeasure"}}`.
- GET `/g/api/v1/schedule/events`: `rangeStart`, `rangeEnd` (RFC 3339 with offset), `target`
  with `targetType` in user / organization / facility, `limit` 1..1000, `offset`, `fields`,
  `orderBy`; answers `{"events": [...], "hasNext": bool}`
  (https://cybozu.dev/ja/garoon/docs/rest-api/schedule/get-schedule-events/).
- GET `/g/api/v1/schedule/events/{id}`: the event
  (https://cybozu.dev/ja/garoon/docs/rest-api/schedule/get-schedule-event/).
- PATCH `/g/api/v1/schedule/events/{id}`: JSON, `start` required (Garoon 4.10), `end`,
  `notes`, `facilities` as `[{"id"}]`; a temporary event is refused
  (https://cybozu.dev/ja/garoon/docs/rest-api/schedule/update-schedule-event/).
- POST `/g/api/v1/schedule/events`: `eventType` REGULAR or ALL_DAY, `start`, `end` required
  with `facilities`, `attendees` as `[{"type", "id" | "code"}]`
  (https://cybozu.dev/ja/garoon/docs/rest-api/schedule/add-schedule-event).
The event object follows https://cybozu.dev/ja/garoon/docs/overview/schedule-object/.
"""

from __future__ import annotations

import base64
import itertools
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from tests.rooms.standin_server import Problem, Reply, Request, StandinServer

API = "/g/api/v1/schedule/events"
EVENT_FIELDS = frozenset(
    {"id", "creator", "createdAt", "updater", "updatedAt", "eventType", "eventMenu", "subject",
     "notes", "visibilityType", "useAttendanceCheck", "companyInfo", "attachments", "start",
     "end", "isAllDay", "isStartOnly", "originalStartTimeZone", "originalEndTimeZone",
     "attendees", "watchers", "facilities", "facilityUsingPurpose", "facilityReservationInfo",
     "facilityUsageRequests", "repeatInfo", "temporaryEventCandidates", "additionalItems",
     "repeatId"}
)  # fmt: skip
UPDATABLE = frozenset(
    {"eventMenu", "subject", "notes", "start", "end", "isAllDay", "isStartOnly", "attendees",
     "facilities", "facilityUsingPurpose", "companyInfo", "visibilityType",
     "useAttendanceCheck", "watchers", "additionalItems"}
)  # fmt: skip
CREATABLE = UPDATABLE | {"eventType", "attachments"}
TOKYO = ZoneInfo("Asia/Tokyo")


def garoon_error(status: int, code: str, message: str) -> Reply:
    return Reply.of(
        status,
        {"error": {"errorCode": code, "message": message, "cause": "", "counterMeasure": ""}},
    )


class GaroonStandin:
    """Facilities with their events, served as Garoon's REST API serves them."""

    def __init__(self, *, login: str, password: str, page_limit: int = 1000) -> None:
        self.login = login
        self.password = password
        self.page_limit = page_limit  # the most events one page holds, whatever `limit` asks
        self.events: dict[str, dict[str, Any]] = {}
        self.facilities: dict[str, dict[str, str]] = {}
        self._ids = itertools.count(101)
        self.server = StandinServer(
            "garoon-standin", self._answer, lambda m: garoon_error(400, "GRN_CMMN_00001", m)
        )

    @property
    def base_url(self) -> str:
        return f"{self.server.url}/"

    def add_facility(self, facility_id: str, name: str) -> None:
        self.facilities[facility_id] = {"id": facility_id, "code": name.lower(), "name": name}

    def add_event(
        self,
        facility_ids: tuple[str, ...],
        start: datetime,
        end: datetime,
        *,
        subject: str = "打ち合わせ",
        creator: str = "sato-noboru",
        attendees: tuple[str, ...] = ("sato-noboru",),
        notes: str = "",
        event_type: str = "REGULAR",
        rejected: tuple[str, ...] = (),
    ) -> str:
        uid = str(next(self._ids))
        self.events[uid] = {
            "id": uid,
            "creator": {"id": "1", "code": creator, "name": creator},
            "createdAt": "2031-01-01T00:00:00Z",
            "eventType": event_type,
            "eventMenu": "",
            "subject": subject,
            "notes": notes,
            "visibilityType": "PUBLIC",
            "useAttendanceCheck": False,
            "start": _garoon_time(start),
            "end": _garoon_time(end),
            "isAllDay": False,
            "isStartOnly": False,
            "attendees": [
                {
                    "id": str(n),
                    "code": code,
                    "name": code,
                    "type": "USER",
                    "attendanceResponse": {"status": "PENDING", "comment": ""},
                }
                for n, code in enumerate(attendees, start=1)
            ],
            "facilities": [self.facilities[f] for f in facility_ids],
            "facilityUsingPurpose": "",
            "facilityUsageRequests": [
                {"facility": self.facilities[f], "status": "REJECTED"} for f in rejected
            ],
            "watchers": [],
            "additionalItems": {"item": {"value": ""}},
            "_start": start,  # not Garoon's: the window filter's times, never served
            "_end": end,
        }
        return uid

    def event(self, uid: str) -> dict[str, Any]:
        return self.events[uid]

    def move(self, uid: str, start: datetime, end: datetime) -> None:
        """Move an event, as its organiser would."""
        event = self.events[uid]
        event.update(start=_garoon_time(start), end=_garoon_time(end), _start=start, _end=end)

    def calls(self, method: str, path_part: str = API) -> list[Request]:
        return [
            r for r in self.server.requests if r.method == method and r.path.startswith(path_part)
        ]

    def close(self) -> None:
        self.server.close()

    # -- serving

    def _answer(self, request: Request) -> Reply:
        expected = base64.b64encode(f"{self.login}:{self.password}".encode()).decode()
        if request.headers.get("x-cybozu-authorization") != expected:
            return Reply.of(
                401, {"code": "CB_WA01", "id": "1505999166-897850006",
                      "message": "パスワード認証に失敗しました。"},
            )  # fmt: skip
        if "authorization" in request.headers:
            raise Problem("an Authorization header beside X-Cybozu-Authorization")
        if request.path == API:
            if request.method == "GET":
                return self._list(request)
            if request.method == "POST":
                return self._create(request)
        elif request.path.startswith(API + "/"):
            uid = request.path[len(API) + 1 :]
            event = self.events.get(uid)
            if event is None:
                return garoon_error(404, "GRN_SCHD_13001", "予定が見つかりません。")
            if request.method == "GET":
                if request.body or request.query:
                    raise Problem("GET of one event takes no query or body")
                return Reply.of(200, _served(event))
            if request.method == "PATCH":
                return self._update(request, event)
        raise Problem(f"no such endpoint {request.method} {request.path}")

    def _list(self, request: Request) -> Reply:
        if request.body:
            raise Problem("GET takes its parameters in the query")
        query = {k: v[0] for k, v in request.query.items()}
        allowed = {"rangeStart", "rangeEnd", "target", "targetType", "limit", "offset",
                   "fields", "orderBy", "keyword", "excludeFromSearch", "showPrivate"}  # fmt: skip
        if not set(query) <= allowed:
            raise Problem(f"unknown query parameters {sorted(set(query) - allowed)}")
        start = _rfc3339(query.get("rangeStart", ""), "rangeStart")
        end = _rfc3339(query.get("rangeEnd", ""), "rangeEnd")
        if ("target" in query) != ("targetType" in query):
            raise Problem("target and targetType go together")
        if query.get("targetType") != "facility":
            raise Problem(f"targetType {query.get('targetType')!r}; a room is a facility")
        facility = query["target"]
        if facility not in self.facilities:
            return garoon_error(400, "GRN_SCHD_13026", "施設が見つかりません。")
        limit, offset = int(query.get("limit", "100")), int(query.get("offset", "0"))
        if not 1 <= limit <= 1000 or offset < 0:
            raise Problem(f"limit {limit} outside 1..1000 or offset {offset} below 0")
        fields = set(query.get("fields", "").split(",")) - {""}
        if not fields <= EVENT_FIELDS:
            raise Problem(f"fields names unknown properties {sorted(fields - EVENT_FIELDS)}")
        order = query.get("orderBy", "start asc").split(" ")
        if (
            len(order) != 2
            or order[0] not in {"createdAt", "updatedAt", "start"}
            or order[1] not in {"asc", "desc"}
        ):
            raise Problem(f"orderBy {query.get('orderBy')!r}")
        matching = sorted(
            (
                e for e in self.events.values()
                if any(f["id"] == facility for f in e["facilities"])
                and e["_start"] < end and e["_end"] > start
            ),
            key=lambda e: e["_start"],
        )  # fmt: skip
        size = min(limit, self.page_limit)
        page = matching[offset : offset + size]
        page = [
            {k: v for k, v in e.items() if (not fields or k in fields or k == "id")
             and not k.startswith("_")}
            for e in page
        ]  # fmt: skip
        return Reply.of(200, {"events": page, "hasNext": offset + size < len(matching)})

    def _update(self, request: Request, event: dict[str, Any]) -> Reply:
        data = self._json(request, UPDATABLE)
        if "start" not in data:
            raise Problem("PATCH needs `start` (Garoon 4.10)")
        if event["eventType"] == "TEMPORARY":
            return garoon_error(400, "GRN_SCHD_13101", "仮予定は変更できません。")
        self._times(data, needs_end=bool(data.get("facilities", event["facilities"])))
        if "facilities" in data:
            event["facilities"] = self._facility_list(data["facilities"])
        for key in ("notes", "subject", "start", "end"):
            if key in data:
                event[key] = data[key]
        event["_start"], event["_end"] = _from_garoon(event["start"]), _from_garoon(event["end"])
        return Reply.of(200, _served(event))

    def _create(self, request: Request) -> Reply:
        data = self._json(request, CREATABLE)
        if data.get("eventType") not in {"REGULAR", "ALL_DAY"}:
            raise Problem(f"eventType {data.get('eventType')!r}; REGULAR or ALL_DAY")
        if "start" not in data:
            raise Problem("POST needs `start`")
        self._times(data, needs_end=bool(data.get("facilities")))
        facilities = self._facility_list(data.get("facilities", []))
        attendees = data.get("attendees", [])
        if not isinstance(attendees, list) or not all(
            isinstance(a, dict) and a.get("type") in {"USER", "ORGANIZATION"}
            and ({"id", "code"} & set(a)) and set(a) <= {"type", "id", "code"}
            for a in attendees
        ):  # fmt: skip
            raise Problem(f"attendees {attendees!r}: each {{type, id | code}}")
        uid = self.add_event(
            tuple(f["id"] for f in facilities),
            _from_garoon(data["start"]),
            _from_garoon(data["end"]),
            subject=data.get("subject", ""),
            creator=self.login,
            attendees=tuple(a.get("code", "") for a in attendees),
            notes=data.get("notes", ""),
        )
        return Reply.of(200, _served(self.events[uid]))

    def _json(self, request: Request, allowed: frozenset[str]) -> dict[str, Any]:
        if request.headers.get("content-type") != "application/json":
            raise Problem("Content-Type must be application/json")
        try:
            data = request.json()
        except ValueError:
            raise Problem("body is not JSON") from None
        if not isinstance(data, dict):
            raise Problem("body is not a JSON object")
        if not set(data) <= allowed:
            raise Problem(f"unknown properties {sorted(set(data) - allowed)}")
        for key in ("notes", "subject"):
            if key in data and not isinstance(data[key], str):
                raise Problem(f"{key} is not a string")
        return data

    def _times(self, data: dict[str, Any], *, needs_end: bool) -> None:
        for key in ("start", "end"):
            if key not in data:
                if key == "end" and needs_end:
                    raise Problem("`end` is required when the event has facilities")
                continue
            value = data[key]
            if not isinstance(value, dict) or set(value) != {"dateTime", "timeZone"}:
                raise Problem(f"{key} {value!r} needs exactly dateTime and timeZone")
            _rfc3339(value["dateTime"], f"{key}.dateTime")
            try:
                ZoneInfo(value["timeZone"])
            except (ValueError, KeyError):
                raise Problem(f"{key}.timeZone {value['timeZone']!r} is not a zone") from None

    def _facility_list(self, value: Any) -> list[dict[str, str]]:
        if not isinstance(value, list) or not all(
            isinstance(f, dict) and set(f) in ({"id"}, {"code"}) for f in value
        ):
            raise Problem(f"facilities {value!r}: each {{id}} or {{code}}")
        found = []
        for item in value:
            facility = self.facilities.get(str(item.get("id")))
            if facility is None:
                raise Problem(f"no facility {item!r}")
            found.append(facility)
        return found


def _served(event: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in event.items() if not k.startswith("_")}


def _garoon_time(moment: datetime) -> dict[str, str]:
    return {"dateTime": moment.astimezone(TOKYO).isoformat(timespec="seconds"),
            "timeZone": "Asia/Tokyo"}  # fmt: skip


def _from_garoon(value: dict[str, str]) -> datetime:
    return datetime.fromisoformat(value["dateTime"])


def _rfc3339(text: str, name: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise Problem(f"{name} {text!r} is not RFC 3339") from None
    if moment.tzinfo is None:
        raise Problem(f"{name} {text!r} has no offset")
    return moment
