"""Bad input to the web page gets a clear 400 or a redirect home, never a 5xx; what the page
exports cannot be turned against whoever opens it.

Real parts: uvicorn on loopback, the central log and a provisioning registry holding hostile
names and device fields (web_fixtures.hostile_site). Hypothesis generates query strings,
paths and Referers for every GET route.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from urllib.parse import quote, quote_from_bytes

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from console import web, web_account
from console.search import FIELDS
from console.web import Settings, create_app

from .web_fixtures import (
    HOSTILE_DEPARTMENT,
    HOSTILE_DEVICE,
    HOSTILE_REASON,
    Client,
    hostile_site,
    serve,
)


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> FastAPI:
    tmp = tmp_path_factory.mktemp("input")
    log, registry = hostile_site(tmp)
    settings = Settings(log, registry, tmp / "session.key", secure_cookies=False, poll_s=0.05)
    return create_app(settings)


@pytest.fixture(scope="module")
def url(app: FastAPI) -> Iterator[str]:
    with serve(app) as served:
        yield served


@pytest.fixture(scope="module")
def manager(url: str) -> Client:
    client = Client(url)
    assert client.login("boss").status == 303
    return client


MALFORMED = [
    ("since", "0001-01-01", "year from 1900"),
    ("until", "9999-12-31T23:59:59-12:00", "year from 1900"),
    ("since", "2026-13-45", "2026-12-01T08:30"),
    ("until", "yesterday", "2026-12-01T08:30"),
    ("before", "²", "row number"),
    ("before", "9223372036854775808", "row number"),
    ("before", "-1", "row number"),
    ("person", "x" * 101, "at most 100"),
    ("result", "everything", "granted, denied"),
]


@pytest.mark.parametrize("path", ["/log", "/log/export.csv"])
@pytest.mark.parametrize(("name", "value", "accepted"), MALFORMED)
def test_a_malformed_search_value_is_answered_400_naming_the_field(
    manager: Client, path: str, name: str, value: str, accepted: str
) -> None:
    reply = manager.get(f"{path}?{name}={quote(value)}")
    assert reply.status == 400, reply.text[:300]
    assert f"{name}: " in reply.text
    assert accepted in reply.text


def test_a_well_formed_search_still_answers(manager: Client) -> None:
    reply = manager.get("/log?since=2026-12-01T08:00&until=2026-12-01&before=9223372036854775807")
    assert reply.status == 200
    assert manager.get("/log?since=2026-12-01T08:00%2B09:00").status == 200


def test_a_device_time_no_zone_can_show_does_not_break_the_log_page(manager: Client) -> None:
    reply = manager.get("/log?door=gate-2")
    assert reply.status == 200
    assert "0001-01-01T00:00:00+14:00" in reply.text  # shown as the device sent it


@pytest.mark.parametrize(
    "referer",
    [
        "http://evil.example/alarms",
        "https://evil.example/",
        "//evil.example/x",
        "{site}//evil.example/x",
        "{site}/\\evil.example",
        "javascript:alert(1)",
        "http://127.0.0.1:1@evil.example/",
        "not a url at all",
        "http://[::1",
    ],
)
def test_the_language_switch_never_redirects_off_the_site(
    url: str, manager: Client, referer: str
) -> None:
    reply = manager.get("/lang/en", headers={"Referer": referer.format(site=url)})
    assert reply.status == 303
    assert reply.headers["location"] == "/"


def test_the_language_switch_goes_back_to_the_page_it_was_chosen_on(
    url: str, manager: Client
) -> None:
    reply = manager.get("/lang/en", headers={"Referer": f"{url}/log?door=gate-2"})
    assert reply.status == 303
    assert reply.headers["location"] == "/log?door=gate-2"
    assert manager.get("/lang/xx").status == 400


def test_formulas_in_names_and_device_fields_are_exported_neutralised(manager: Client) -> None:
    reply = manager.get("/log/export.csv?door=" + quote(HOSTILE_DEVICE))
    assert reply.status == 200
    rows = list(csv.DictReader(io.StringIO(reply.text.removeprefix("\ufeff"))))
    assert len(rows) == 2
    for row in rows:
        assert row["name"].startswith("'=HYPERLINK(")
        assert row["department"] == "'" + HOSTILE_DEPARTMENT
        assert row["device"] == "'" + HOSTILE_DEVICE
        assert row["door"] == "'" + HOSTILE_DEVICE
    assert {r["reason"] for r in rows} == {"'" + HOSTILE_REASON, ""}
    for row in rows:
        for cell in row.values():
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r"))


def _get_paths() -> list[str]:
    """Every GET route of the console's routers (the app includes exactly these)."""
    routes = [*web.router.routes, *web_account.router.routes]
    paths = sorted(r.path for r in routes if isinstance(r, APIRoute) and "GET" in r.methods)
    assert len(paths) >= 12, paths
    return paths


NASTY = st.sampled_from(
    [
        "0001-01-01",
        "9999-12-31T23:59:59-12:00",
        "²",
        "9223372036854775808",
        "-0",
        "1e400",
        "NaN",
        "\x00",
        "\x1b[2J",
        "\ud800",
        "２０２６-１２-０１",
        "2026-12-01T25:61",
        "x" * 5000,
        "%",
        "%%%",
        "&&==",
    ]
)
VALUES = st.one_of(
    NASTY,
    st.text(max_size=300),
    st.integers().map(str),
    st.datetimes().map(lambda d: d.isoformat()),
)
KEYS = st.one_of(st.sampled_from([*FIELDS, "before", "lang"]), st.text(max_size=20))


def _encode(text: str) -> str:
    return quote_from_bytes(text.encode("utf-8", "surrogatepass"), safe="")


PRINTABLE = st.characters(min_codepoint=0x20, max_codepoint=0x7E)  # what a header may hold
QUERIES = st.one_of(
    st.lists(st.tuples(KEYS, VALUES), max_size=6).map(
        lambda pairs: "&".join(f"{_encode(k)}={_encode(v)}" for k, v in pairs)
    ),
    st.binary(max_size=200).map(lambda raw: quote_from_bytes(raw, safe="=&")),
)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(query=QUERIES, segment=st.text(max_size=30), referer=st.text(PRINTABLE, max_size=60))
def test_no_generated_query_makes_a_get_route_fail(
    url: str, manager: Client, query: str, segment: str, referer: str
) -> None:
    anonymous = Client(url)
    for path in _get_paths():
        target = path.replace("{language}", _encode(segment) or "x") + "?" + query
        for client in (manager, anonymous):
            if path == "/alarms/stream":
                response = client.open_stream(target)
                status = response.status
                response.close()
            else:
                status = client.get(target, headers={"Referer": referer}).status
            assert status < 500, (target, status)
