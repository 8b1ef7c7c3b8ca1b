"""The Graph presence adapter against a stand-in that checks the documented request shapes."""

from __future__ import annotations

import bisect
from collections.abc import Iterator

import httpx
import pytest

from rooms.graph_auth import GraphToken
from rooms.uc.graph_presence import LIMIT_REQUESTS, LIMIT_WINDOW_S, GraphPresence, TokenBucket
from rooms.uc.port import UcPersonError, UcServerError
from rooms.uc.states import UcState
from tests.rooms.graph_presence_standin import GraphPresenceStandin
from tests.rooms.standin_server import Reply

TENANT, CLIENT, SECRET = "city-tenant", "5f0c1a2b-app", "s3cret-value"
USER = "0f8fad5b-d9cb-469f-a165-70867728950e"


class FakeTime:
    """A fake clock the adapter waits on: waiting moves it at once, nothing really waits."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def time_() -> FakeTime:
    return FakeTime()


@pytest.fixture
def standin(time_: FakeTime) -> Iterator[GraphPresenceStandin]:
    standin = GraphPresenceStandin(
        tenant=TENANT, client_id=CLIENT, secret=SECRET, clock=time_.clock
    )
    standin.users.add(USER)
    yield standin
    standin.close()
    assert standin.server.problems == []


@pytest.fixture
def graph(standin: GraphPresenceStandin, time_: FakeTime) -> Iterator[GraphPresence]:
    with httpx.Client(timeout=5) as client:
        token = GraphToken(TENANT, CLIENT, SECRET, standin.token_url, client)
        yield GraphPresence(
            standin.base_url,
            token,
            client,
            expiration_min=60,
            clock=time_.clock,
            sleep=time_.advance,
        )


@pytest.mark.parametrize(
    ("state", "session"),
    [
        (UcState.AVAILABLE, ("Available", "Available", "PT60M")),
        (UcState.MEETING, ("Busy", "InAConferenceCall", "PT60M")),
        (UcState.PHONE, ("Busy", "InACall", "PT60M")),
    ],
)
def test_each_state_sets_a_documented_session_and_away_clears_it(
    standin: GraphPresenceStandin,
    graph: GraphPresence,
    state: UcState,
    session: tuple[str, str, str],
) -> None:
    graph.publish(USER, state)
    assert standin.sessions[USER] == session
    graph.publish(USER, UcState.AWAY)
    assert USER not in standin.sessions
    assert [r.path.rsplit("/", 1)[1] for r in standin.presence_calls()] == [
        "setPresence",
        "clearPresence",
    ]


def test_refresh_keeps_available_from_fading_and_busy_from_expiring(graph: GraphPresence) -> None:
    assert graph.refresh_s(UcState.AVAILABLE) == 240  # Available fades after 5 min
    assert graph.refresh_s(UcState.MEETING) == 3540  # Busy lasts expirationDuration
    assert graph.refresh_s(UcState.AWAY) is None


def test_an_unknown_user_is_refused_for_that_person_without_naming_them(
    graph: GraphPresence,
) -> None:
    stranger = "1f8fad5b-d9cb-469f-a165-70867728950e"
    with pytest.raises(
        UcPersonError, match="Graph has no such user; check the person's uc_id"
    ) as e:
        graph.publish(stranger, UcState.AVAILABLE)
    assert stranger not in str(e.value)
    assert "NotFound" in str(e.value)


def test_a_429_waits_for_its_retry_after_then_succeeds(
    standin: GraphPresenceStandin, graph: GraphPresence, time_: FakeTime
) -> None:
    standin.server.queue(
        Reply.of(429, {"error": {"code": "TooManyRequests"}}, {"Retry-After": "7"}),
        lambda r: "/presence/" in r.path,
    )
    graph.publish(USER, UcState.PHONE)
    assert 7.0 in time_.slept
    assert standin.sessions[USER][:2] == ("Busy", "InACall")


def test_throttling_that_lasts_is_a_server_failure_after_a_few_tries(
    standin: GraphPresenceStandin, graph: GraphPresence, time_: FakeTime
) -> None:
    for _ in range(4):
        standin.server.queue(
            Reply.of(429, {"error": {"code": "TooManyRequests"}}, {"Retry-After": "3"}),
            lambda r: "/presence/" in r.path,
        )
    with pytest.raises(UcServerError, match="throttled after 3 retries"):
        graph.publish(USER, UcState.AVAILABLE)
    assert time_.slept.count(3.0) == 3
    assert USER not in standin.sessions


def test_an_expired_token_is_renewed_once(
    standin: GraphPresenceStandin, graph: GraphPresence
) -> None:
    graph.publish(USER, UcState.AVAILABLE)
    standin.tokens.clear()  # every token issued so far is refused now
    graph.publish(USER, UcState.MEETING)
    assert standin.sessions[USER][1] == "InAConferenceCall"
    assert len([r for r in standin.server.requests if "oauth2" in r.path]) == 2


def test_a_missing_permission_names_it(standin: GraphPresenceStandin, graph: GraphPresence) -> None:
    standin.server.queue(
        Reply.of(403, {"error": {"code": "Forbidden", "message": USER}}),
        lambda r: "/presence/" in r.path,
    )
    with pytest.raises(UcServerError, match=r"Presence\.ReadWrite\.All") as e:
        graph.publish(USER, UcState.AVAILABLE)
    assert USER not in str(e.value)  # Graph's message may echo the user: never shown


def test_a_wrong_secret_is_a_server_failure_without_the_secret(
    standin: GraphPresenceStandin,
) -> None:
    with httpx.Client(timeout=5) as client:
        token = GraphToken(TENANT, CLIENT, "wrong-secret", standin.token_url, client)
        graph = GraphPresence(standin.base_url, token, client)
        with pytest.raises(UcServerError, match="invalid_client") as e:
            graph.publish(USER, UcState.AVAILABLE)
    assert "wrong-secret" not in str(e.value)


def test_the_bucket_keeps_every_30_s_window_within_graph_s_limit() -> None:
    time_ = FakeTime()
    bucket = TokenBucket(LIMIT_REQUESTS, LIMIT_WINDOW_S, 50, time_.clock, time_.advance)
    taken = []
    for _ in range(4000):
        bucket.take()
        taken.append(time_.now)
    worst = max(
        bisect.bisect_left(taken, start + LIMIT_WINDOW_S) - i for i, start in enumerate(taken)
    )
    assert worst <= LIMIT_REQUESTS
    assert taken[-1] - taken[0] < (4000 - 50) / bucket.rate + 0.1  # and no slower than that


def test_a_morning_burst_never_meets_the_stand_in_s_throttling(
    standin: GraphPresenceStandin, graph: GraphPresence, time_: FakeTime
) -> None:
    standin.users.update(f"user-{n}@city.example" for n in range(1600))
    for n in range(1600):
        graph.publish(f"user-{n}@city.example", UcState.AVAILABLE)
    assert standin.throttled == 0
    assert len(standin.sessions) == 1600
