"""The Synapse the UC tests start: a start that fails says why, with the server's own log."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.rooms import synapse_server
from tests.rooms.synapse_server import SynapseFailed, running_synapse


def test_a_missing_install_names_the_bootstrap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(synapse_server, "PYTHON", tmp_path / "no-python")
    with (
        pytest.raises(SynapseFailed, match=r"not installed .* run scripts/bootstrap\.sh"),
        running_synapse(tmp_path),
    ):
        pass


@pytest.mark.services
def test_a_server_that_cannot_listen_fails_with_its_log_tail(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        monkeypatch.setattr(synapse_server, "free_port", lambda: taken.getsockname()[1])
        with (
            pytest.raises(SynapseFailed, match="Synapse exited with") as failed,
            running_synapse(tmp_path),
        ):
            pass
    assert "Address already in use" in str(failed.value)
    assert not list(Path(synapse_server.ROOT).glob("homeserver*"))  # nothing left in the tree
