"""The Matrix adapter against a real Synapse: presence set as each person, errors named."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from rooms.rest import Reply
from rooms.uc.matrix import RETRY_CEILING_S, MatrixPresence, _errcode, _retry_after_s
from rooms.uc.port import UcLaterError, UcPersonError, UcServerError
from rooms.uc.states import UcState
from tests.rooms.synapse_server import SynapseServer, synapse  # noqa: F401 (the fixture)


@pytest.fixture
def matrix(synapse: SynapseServer) -> Iterator[MatrixPresence]:  # noqa: F811
    token = synapse.admin_token_file.read_text().strip()
    with httpx.Client(timeout=10) as client:
        adapter = MatrixPresence(synapse.url, token, client, refresh_s=20)
        yield adapter
        adapter.close()


def _whoami(synapse: SynapseServer, token: str) -> int:  # noqa: F811
    return httpx.get(
        f"{synapse.url}/_matrix/client/v3/account/whoami",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    ).status_code


@pytest.mark.parametrize(
    ("state", "seen"),
    [
        (UcState.AVAILABLE, ("online", "in the building")),
        (UcState.MEETING, ("online", "in a meeting")),
        (UcState.PHONE, ("online", "on the phone")),
    ],
)
def test_each_state_reads_back_as_the_person_s_presence(
    synapse: SynapseServer,  # noqa: F811
    matrix: MatrixPresence,
    state: UcState,
    seen: tuple[str, str],
) -> None:
    user, _token = synapse.register()
    matrix.publish(user, state)
    assert synapse.presence(user) == seen
    matrix.publish(user, UcState.AWAY)
    assert synapse.presence(user) == ("offline", "")


def test_the_person_s_token_is_kept_while_in_and_logged_out_when_away(
    synapse: SynapseServer,  # noqa: F811
    matrix: MatrixPresence,
) -> None:
    user, _token = synapse.register()
    matrix.publish(user, UcState.AVAILABLE)
    held = matrix._tokens[user]
    matrix.publish(user, UcState.MEETING)
    assert matrix._tokens[user] == held  # one login while the person is in
    assert _whoami(synapse, held) == 200
    matrix.publish(user, UcState.AWAY)
    assert user not in matrix._tokens
    assert _whoami(synapse, held) == 401


def test_a_revoked_token_is_replaced_by_a_new_login(
    synapse: SynapseServer,  # noqa: F811
    matrix: MatrixPresence,
) -> None:
    user, _token = synapse.register()
    matrix.publish(user, UcState.AVAILABLE)
    stale = matrix._tokens[user]
    httpx.post(
        f"{synapse.url}/_matrix/client/v3/logout",
        headers={"Authorization": f"Bearer {stale}"},
        timeout=10,
    )
    matrix.publish(user, UcState.PHONE)
    assert synapse.presence(user) == ("online", "on the phone")
    assert matrix._tokens[user] != stale


def test_close_sets_every_held_person_offline_with_no_words(
    synapse: SynapseServer,  # noqa: F811
) -> None:
    token = synapse.admin_token_file.read_text().strip()
    user, _token = synapse.register()
    with httpx.Client(timeout=10) as client:
        adapter = MatrixPresence(synapse.url, token, client)
        adapter.publish(user, UcState.MEETING)
        assert synapse.presence(user) == ("online", "in a meeting")
        adapter.close()  # what the service does when it stops
    assert synapse.presence(user) == ("offline", "")


def test_a_rate_limited_change_is_not_waited_out_and_says_when_to_retry() -> None:
    """A fake transport: the test Synapse's rc_presence is raised so the suite's users can set
    presence freely; Synapse's 429 body is the documented M_LIMIT_EXCEEDED shape."""

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/login"):
            return httpx.Response(200, json={"access_token": "person-token"})
        if request.url.path.endswith("/status"):
            limit = {"errcode": "M_LIMIT_EXCEEDED", "error": "Too Many", "retry_after_ms": 2500}
            return httpx.Response(429, json=limit)
        return httpx.Response(200, json={})

    with httpx.Client(transport=httpx.MockTransport(answer)) as client:
        adapter = MatrixPresence("https://matrix.uc.test", "admin", client)
        began = time.monotonic()
        with pytest.raises(UcLaterError, match="rate-limited") as err:
            adapter.publish("@tanaka:uc.test", UcState.MEETING)
        assert time.monotonic() - began < 1.0
    assert err.value.retry_after_s == 2.5
    assert "tanaka" not in str(err.value)


def test_close_logs_every_person_out(synapse: SynapseServer) -> None:  # noqa: F811
    token = synapse.admin_token_file.read_text().strip()
    user, _token = synapse.register()
    with httpx.Client(timeout=10) as client:
        adapter = MatrixPresence(synapse.url, token, client)
        adapter.publish(user, UcState.AVAILABLE)
        held = adapter._tokens[user]
        adapter.close()
        adapter.close()  # idempotent
    assert _whoami(synapse, held) == 401


def test_an_unknown_user_is_refused_for_that_person_only(matrix: MatrixPresence) -> None:
    with pytest.raises(UcPersonError, match="no such local user; check the person's uc_id") as err:
        matrix.publish("@nobody-here:uc.test", UcState.AVAILABLE)
    assert "nobody-here" not in str(err.value)


def test_a_bad_admin_token_names_the_file_to_fix_and_not_the_token(
    synapse: SynapseServer,  # noqa: F811
) -> None:
    user, _token = synapse.register()
    with httpx.Client(timeout=10) as client:
        adapter = MatrixPresence(synapse.url, "syt_not_a_real_admin_token", client)
        with pytest.raises(UcServerError, match="check that admin_token_file") as err:
            adapter.publish(user, UcState.AVAILABLE)
    assert "syt_not_a_real" not in str(err.value)
    assert user not in str(err.value)


def test_an_unreachable_server_is_a_server_error_without_the_person() -> None:
    from simulator.broker import free_port  # noqa: PLC0415 (a port nobody listens on)

    with httpx.Client(timeout=2) as client:
        adapter = MatrixPresence(f"http://127.0.0.1:{free_port()}", "token", client)
        with pytest.raises(UcServerError, match="ConnectError") as err:
            adapter.publish("@someone:uc.test", UcState.AVAILABLE)
    assert "someone" not in str(err.value)


@pytest.mark.parametrize(
    ("body", "wait_s"),
    [
        (b'{"errcode": "M_LIMIT_EXCEEDED", "retry_after_ms": 2500}', 2.5),
        (b'{"errcode": "M_LIMIT_EXCEEDED", "retry_after_ms": 3600000}', RETRY_CEILING_S),
        (b'{"errcode": "M_LIMIT_EXCEEDED", "retry_after_ms": true}', RETRY_CEILING_S),
        (b"<html>busy</html>", RETRY_CEILING_S),
    ],
)
def test_a_rate_limited_change_asks_for_a_wait_within_a_ceiling(body: bytes, wait_s: float) -> None:
    # Synapse's own limits are raised for the test server, so its 429 is read here from bytes.
    assert _retry_after_s(Reply(429, httpx.Headers(), body)) == wait_s


def test_only_a_matrix_error_code_is_quoted_never_the_server_s_text() -> None:
    echo = b'{"errcode": "M_FORBIDDEN", "error": "@tanaka:city.example may not"}'
    assert _errcode(Reply(403, httpx.Headers(), echo)) == ", M_FORBIDDEN"
    assert _errcode(Reply(403, httpx.Headers(), b'{"errcode": "@tanaka:city"}')) == ""
