"""build_tracker: none without [[presence]], errors naming what to fix, a courier per server."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from rooms.config import ServiceConfig
from rooms.uc.build import build_tracker
from rooms.uc.directory import DirectoryError
from rooms.uc.port import UcError
from tests.rooms.uc_site import make_site


def config(tmp_path: Path, **changes: Any) -> ServiceConfig:
    data: dict[str, Any] = {
        "site": "kamakura-city-hall",
        "name": "Kamakura City Hall",
        "state_path": str(tmp_path / "rooms.db"),
        "mqtt": {"password_file": str(tmp_path / "mqtt-password")},
        "rooms": [
            {"zone": "booth-1", "name": "Booth 1", "kind": "phone-booth", "floor": 2,
             "device": "node-2f"},
        ],
    }  # fmt: skip
    data.update(changes)
    return ServiceConfig.model_validate(data)


def matrix(token_file: Path) -> dict[str, str]:
    return {"kind": "matrix", "base_url": "http://127.0.0.1:9", "admin_token_file": str(token_file)}


def test_no_presence_servers_means_no_tracker(tmp_path: Path) -> None:
    assert build_tracker(config(tmp_path)) is None


def test_servers_without_a_registry_say_what_to_set(tmp_path: Path) -> None:
    with pytest.raises(UcError, match=r"set registry to the site's registry\.db"):
        build_tracker(config(tmp_path, presence=[matrix(tmp_path / "token")]))


def test_a_missing_registry_is_named(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("syt_admin\n")
    with pytest.raises(DirectoryError, match="no provisioning registry at"):
        build_tracker(
            config(tmp_path, registry=str(tmp_path / "nope.db"), presence=[matrix(token)])
        )


@pytest.mark.parametrize(
    ("content", "says"), [(None, "cannot read it"), ("", "one secret on one line")]
)
def test_an_unusable_secret_file_names_its_key_never_its_content(
    tmp_path: Path, content: str | None, says: str
) -> None:
    site = make_site(tmp_path)
    token = tmp_path / "token"
    if content is not None:
        token.write_text(content)
    with pytest.raises(UcError, match=rf"presence\[0\]\.admin_token_file .*{says}"):
        build_tracker(config(tmp_path, registry=str(site.registry), presence=[matrix(token)]))


def test_one_courier_per_server_with_the_rooms_kinds(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    token, secret = tmp_path / "token", tmp_path / "secret"
    token.write_text("syt_admin\n")
    secret.write_text("graph-secret\n")
    graph = {"kind": "graph", "tenant": "t", "client_id": "app", "client_secret_file": str(secret)}
    tracker = build_tracker(
        config(tmp_path, registry=str(site.registry), presence=[matrix(token), graph])
    )
    assert tracker is not None
    try:
        names = [c.adapter.name for c in tracker.couriers]
        assert names == [
            "matrix http://127.0.0.1:9",
            "graph https://graph.microsoft.com/v1.0 app app",
        ]
        assert tracker.room_kinds == {"booth-1": "phone-booth"}
        assert "syt_admin" not in repr(tracker.couriers[0].adapter)
        assert tracker.held_file == tmp_path / "rooms.db.uc.json"  # beside the service's state
        running = [t.name for t in threading.enumerate() if t.name.startswith("uc-courier")]
        assert sorted(running) == sorted(f"uc-courier {name}" for name in names)  # started
    finally:
        tracker.close()
