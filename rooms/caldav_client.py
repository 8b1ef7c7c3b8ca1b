"""The CalDAV connection: the one place that builds the client and turns its failures into ours.

Every error becomes a BookingError naming the [[calendars]] id, the room and the fix; never the
password, never a traceback. The service account's password is read from `password_file`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit

from caldav.davclient import DAVClient
from caldav.lib import error as dav_error
from caldav.lib.http_sync import requests as http

from rooms.bookings import BookingError
from rooms.caldav_events import EventProblem
from rooms.config import CaldavCalendar

TIMEOUT_S = 10


def read_password(settings: CaldavCalendar) -> str:
    """Return the service account's password from its file."""
    try:
        password = settings.password_file.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as error:
        raise BookingError(
            f"calendar {settings.id}: cannot read password_file {settings.password_file} "
            f"({type(error).__name__}); put the service account's password in it, "
            "readable by the service"
        ) from None
    if not password:
        raise BookingError(
            f"calendar {settings.id}: password_file {settings.password_file} is empty; "
            "put the service account's password in it"
        )
    return password


def connect(settings: CaldavCalendar) -> DAVClient:
    """Return a client for the server, logged in as the service account (basic auth)."""
    return DAVClient(
        url=settings.url,
        username=settings.username,
        password=read_password(settings),
        # Without auth_type every first request waits for a 401 challenge.
        auth_type="basic",
        timeout=TIMEOUT_S,
        # The URL is configured: no DNS discovery that a hostile resolver could steer.
        enable_rfc6764=False,
    )


def resource_url(settings: CaldavCalendar, resource: str) -> str:
    """Return a room calendar's absolute URL (ending in `/`), on the configured server only.

    The service account's password goes with every request: a `resource` naming another host
    would hand it to that host, so it is refused.
    """
    base = settings.url if settings.url.endswith("/") else settings.url + "/"
    url = urljoin(base, resource)
    if not url.endswith("/"):
        url += "/"
    here, there = urlsplit(base), urlsplit(url)
    if (here.scheme, here.netloc) != (there.scheme, there.netloc):
        raise BookingError(
            f"calendar {settings.id}: resource {shown(resource)!r} is on another server than "
            f"{shown(settings.url)}; give the calendar's path on that server "
            "(e.g. /rooms/meeting-2f-1/)"
        )
    return url


def shown(url: str) -> str:
    """Return the URL without any user:password in it, for messages and logs."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def same_path(href: str, url: str) -> bool:
    """Return whether a server's href names the collection at `url`."""
    return unquote(urlsplit(href).path).rstrip("/") == unquote(urlsplit(url).path).rstrip("/")


@contextmanager
def calendar_errors(settings: CaldavCalendar, room: str, url: str, doing: str) -> Iterator[None]:
    """Turn what the CalDAV client raises while `doing` into a BookingError with the fix."""
    where = f"calendar {settings.id}, room {room}"
    path = urlsplit(url).path or "/"
    try:
        yield
    except dav_error.AuthorizationError as error:
        raise BookingError(
            f"{where}: the server refused the service account {settings.username!r} "
            f"(HTTP {error.status or '401/403'}) while {doing}; check the password in "
            f"{settings.password_file} and that the account may read and write {path}"
        ) from None
    except dav_error.NotFoundError:
        raise BookingError(
            f"{where}: no calendar at {path} ({doing}); create it "
            "(ensure_calendars, or in the server's admin) or fix the room's `resource`"
        ) from None
    except dav_error.DAVError as error:
        raise BookingError(
            f"{where}: the server failed {doing} ({type(error).__name__}, HTTP "
            f"{error.status or 'unknown'}); see the CalDAV server's log"
        ) from None
    except http.exceptions.Timeout:
        raise BookingError(
            f"{where}: {shown(settings.url)} did not answer within {TIMEOUT_S} s while {doing}; "
            "check the server's load and the network"
        ) from None
    except http.exceptions.ConnectionError:
        raise BookingError(
            f"{where}: cannot reach {shown(settings.url)} while {doing} (connection refused or no "
            "route); check the server runs and the calendar's `url`"
        ) from None
    except http.exceptions.RequestException as error:
        raise BookingError(
            f"{where}: the request to {shown(settings.url)} failed while {doing} "
            f"({type(error).__name__}); check the calendar's `url`"
        ) from None
    except EventProblem as problem:
        raise BookingError(f"{where}: {doing} failed: {problem}") from None
    except (SyntaxError, ValueError) as error:  # lxml's XMLSyntaxError is a SyntaxError
        raise BookingError(
            f"{where}: the server's answer could not be read while {doing} "
            f"({type(error).__name__}); check what the server at {shown(settings.url)} holds"
        ) from None
