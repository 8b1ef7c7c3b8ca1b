"""Build the UC presence tracker from the service's configuration."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

from rooms.config import GraphPresence as GraphSettings
from rooms.config import MatrixPresence as MatrixSettings
from rooms.config import ServiceConfig
from rooms.graph_auth import GraphToken
from rooms.rest import HttpClient, http_client
from rooms.uc.courier import Courier
from rooms.uc.directory import UcDirectory
from rooms.uc.graph_presence import GraphPresence
from rooms.uc.matrix import MatrixPresence
from rooms.uc.port import PresenceAdapter, UcError
from rooms.uc.tracker import PresenceTracker

TIMEOUT_S = 10.0


def build_tracker(config: ServiceConfig) -> PresenceTracker | None:
    """Return the started tracker for the `[[presence]]` servers, or None when there are none.

    Raises UcError (or DirectoryError) naming the setting to fix.
    """
    if not config.presence:
        return None
    if config.registry is None:
        raise UcError(
            "[[presence]] servers are set but `registry` is not: set registry to the site's "
            "registry.db (it says who opted in), or remove [[presence]]"
        )
    directory = UcDirectory(config.registry)
    for index, settings in enumerate(config.presence):  # every secret readable before any client
        _secret(_secret_file(settings), _secret_key(settings, index))
    adapters = [_adapter(settings, index) for index, settings in enumerate(config.presence)]
    room_kinds = {room.zone: room.kind for room in config.rooms}
    tracker = PresenceTracker(
        directory,
        [Courier(a) for a in adapters],
        room_kinds,
        ZoneInfo(config.timezone),
        held_file=held_file(config),
    )
    tracker.start()
    return tracker


def held_file(config: ServiceConfig) -> Path:
    """Return where the tracker keeps the UC ids it may hold a status for: by the state."""
    return Path(f"{config.state_path}.uc.json")


def _adapter(settings: MatrixSettings | GraphSettings, index: int) -> PresenceAdapter:
    if isinstance(settings, MatrixSettings):
        token = _secret(settings.admin_token_file, _secret_key(settings, index))
        return MatrixPresence(settings.base_url, token, _client(), settings.refresh_s)
    secret = _secret(settings.client_secret_file, _secret_key(settings, index))
    client = _client()
    token_source = GraphToken(
        settings.tenant, settings.client_id, secret, settings.token_url, client
    )
    return GraphPresence(settings.base_url, token_source, client, settings.expiration_min)


def _client() -> HttpClient:
    return http_client(TIMEOUT_S)


def _secret_file(settings: MatrixSettings | GraphSettings) -> Path:
    if isinstance(settings, MatrixSettings):
        return settings.admin_token_file
    return settings.client_secret_file


def _secret_key(settings: MatrixSettings | GraphSettings, index: int) -> str:
    name = "admin_token_file" if isinstance(settings, MatrixSettings) else "client_secret_file"
    return f"presence[{index}].{name}"


def _secret(path: Path, key: str) -> str:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as error:
        raise UcError(
            f"{key} {path}: cannot read it ({type(error).__name__}); check the path"
        ) from None
    if not text or "\n" in text:
        raise UcError(f"{key} {path}: it must hold the one secret on one line")
    return text
