"""The app-only Graph token: cached until shortly before expiry, errors without the secret."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from rooms.graph_auth import GraphAuthError, GraphToken
from tests.rooms.graph_standin import GraphStandin
from tests.rooms.standin_server import Reply

SECRET = "app~secret.value-1"


class Clock:
    """A fake monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def standin() -> Iterator[GraphStandin]:
    server = GraphStandin(tenant="city-tenant", client_id="app-1", secret=SECRET)
    yield server
    server.close()
    assert not server.server.problems, "\n".join(server.server.problems)


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5) as http:
        yield http


def test_the_token_is_kept_until_five_minutes_before_it_expires(
    standin: GraphStandin, client: httpx.Client
) -> None:
    clock = Clock()
    token = GraphToken("city-tenant", "app-1", SECRET, standin.token_url, client, clock=clock)

    first = token.value()
    clock.now += 3599 - 301
    assert token.value() == first
    assert standin.tokens_issued == 1

    clock.now += 2  # within five minutes of expiry (expires_in 3599)
    assert token.value() != first
    assert standin.tokens_issued == 2


def test_forget_fetches_a_new_one(standin: GraphStandin, client: httpx.Client) -> None:
    token = GraphToken("city-tenant", "app-1", SECRET, standin.token_url, client)
    first = token.value()
    token.forget()
    assert token.value() != first
    assert standin.tokens_issued == 2


def test_the_tenant_goes_into_the_token_url(standin: GraphStandin, client: httpx.Client) -> None:
    token = GraphToken("city-tenant", "app-1", SECRET, standin.token_url, client)
    assert token.url == f"{standin.server.url}/city-tenant/oauth2/v2.0/token"
    assert "city-tenant" in repr(token)
    assert SECRET not in repr(token)


@pytest.mark.parametrize(
    ("reply", "complaint"),
    [
        (Reply.of(200, {"token_type": "Bearer", "expires_in": 3599}), "no usable access_token"),
        (Reply.of(200, {"access_token": "x", "expires_in": -5}), "no positive expires_in"),
        (Reply.of(200, {"access_token": "x", "expires_in": True}), "no positive expires_in"),
        (Reply(200, b"<html>sign in</html>"), "not JSON"),
        (Reply(400, b"<html>proxy</html>"), "not an OAuth error; check token_url"),
        (Reply.of(400, {"error": "unauthorized_client",
                        "error_description": f"AADSTS700016: app not found; you sent {SECRET}"}),
         "unauthorized_client (AADSTS700016)"),
        (Reply(200, b"x" * 70_000), "over 64000"),
    ],
    ids=["no-token", "negative-expiry", "boolean-expiry", "html", "proxy", "unknown-app", "huge"],
)  # fmt: skip
def test_a_bad_token_reply_is_a_clear_error_without_the_secret(
    standin: GraphStandin, client: httpx.Client, reply: Reply, complaint: str
) -> None:
    standin.server.queue(reply)
    token = GraphToken("city-tenant", "app-1", SECRET, standin.token_url, client)

    with pytest.raises(GraphAuthError, match=r"app app-1 \(tenant city-tenant\)") as caught:
        token.value()
    assert complaint in str(caught.value)
    assert SECRET not in str(caught.value)


def test_an_unreachable_token_endpoint_is_a_clear_error(client: httpx.Client) -> None:
    server = GraphStandin(tenant="t", client_id="c", secret=SECRET)
    url = server.token_url
    server.close()  # nothing listens there any more
    token = GraphToken("t", "c", SECRET, url, client)

    with pytest.raises(GraphAuthError, match="ConnectError"):
        token.value()
