"""Device configurations on simulated hardware, with a private store and card key."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge.cardref import card_references
from edge.core.credentials import Credential, DenyReason
from edge.core.policy import AccessPolicy, Rule
from edge.signing import public_key_hex
from edge.store import Store
from edge.store.credentials import SqliteCredentials
from simulator.readers import SimCardReader

EXAMPLES = Path(__file__).resolve().parents[2] / "firmware_config" / "examples"
KEY = bytes(range(1, 33))
# Fixed test keys (never used anywhere else): provisioning generates real ones.
CREDENTIALS_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32, 64)))
COMMANDS_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(64, 96)))


@dataclass(frozen=True)
class SimDevice:
    """A device configuration file for the simulator, and where its store and key live."""

    config: Path
    store: Path
    key: bytes = KEY


def sim_config(tmp: Path, example: str = "security-gate.toml", broker_port: int = 9) -> SimDevice:
    """Copy an example with simulated readers, a private store, keys and a local broker.

    Without a broker the port is 9 (discard): nothing answers, and the agent runs offline.
    """
    text = (EXAMPLES / example).read_text(encoding="utf-8")
    text = re.sub(r"^\[mqtt(\.tls)?\]\n(?:(?!\[).*\n)*", "", text, flags=re.MULTILINE)
    text += f'\n[mqtt]\nhost = "127.0.0.1"\nport = {broker_port}\nkeepalive_s = 5\n'
    assert "broker.cityhall.lan" not in text
    text = re.sub(r'kind = "(pcsc|nfc)"', 'kind = "sim"', text)
    text = re.sub(r'^(match = .*|path = "(usb|udp|tty).*)$', "", text, flags=re.MULTILINE)
    # The example's gate takes proven cards only; these tests tap cards known by their id.
    text = re.sub(r'^security = "authenticated".*$', 'security = "uid"', text, flags=re.MULTILINE)
    store = tmp / "agent.db"
    key_file = tmp / "card-key"
    key_file.write_text(KEY.hex())
    os.chmod(key_file, 0o600)
    if "[store]" in text:
        text = re.sub(r"^path = .*agent.db.*$", f'path = "{store}"', text, flags=re.MULTILINE)
    else:
        text += f'\n[store]\npath = "{store}"\n'
    assert f'path = "{store}"' in text
    (tmp / "credentials.pub").write_text(public_key_hex(CREDENTIALS_KEY))
    (tmp / "commands.pub").write_text(public_key_hex(COMMANDS_KEY))
    text = re.sub(r"^card_key_file = .*\n", "", text, flags=re.MULTILINE)
    text = text.replace(
        "[site]\n",
        f'[site]\ncard_key_file = "{key_file}"\n'
        f'credentials_key_file = "{tmp / "credentials.pub"}"\n'
        f'commands_key_file = "{tmp / "commands.pub"}"\n',
        1,
    )
    config = tmp / "agent.toml"
    config.write_text(text, encoding="utf-8")
    return SimDevice(config, store)


def felica(n: int) -> str:
    """Return the raw IDm of test card number `n`."""
    return f"0114{n:012X}"


def enrol(store_path: Path, cards: range, doors: list[str], lost: range = range(0)) -> None:
    """Load a policy (group staff on `doors`, always) and FeliCa cards into a store."""
    policy = AccessPolicy(version=1, rules=(Rule("staff", frozenset(doors)),))
    refs = card_references(KEY, [("felica", felica(n)) for n in [*cards, *lost]])
    credentials = [Credential(ref, frozenset({"staff"})) for ref in refs[: len(cards)]]
    deny = dict.fromkeys(refs[len(cards) :], DenyReason.LOST)
    with Store(store_path) as store, store.transaction():
        SqliteCredentials(store.db).replace(policy, credentials, deny)


def with_keypad(
    device: SimDevice, rows: tuple[int, ...], cols: tuple[int, ...], pin: str = "always"
) -> None:
    """Give the gate's entry reader a matrix keypad (and no tap debounce) in its config."""
    text = device.config.read_text(encoding="utf-8")
    matrix = f'{{kind = "matrix", rows = {list(rows)}, cols = {list(cols)}}}'
    keypad = f'debounce_s = 0.0\npin = "{pin}"\nkeypad = {matrix}\n'
    text = text.replace('id = "gate-east-in"\n', f'id = "gate-east-in"\n{keypad}', 1)
    device.config.write_text(text, encoding="utf-8")


def keep_readers(readers: dict[str, SimCardReader]) -> Callable[[Any, Any, Any], SimCardReader]:
    """Return a reader factory for `build_agent` that keeps each simulated reader it makes."""

    def make(cfg: Any, referencer: Any, card_keys: Any) -> SimCardReader:
        reader = SimCardReader(cfg.id, referencer, cfg.debounce_s)
        readers[cfg.id] = reader
        return reader

    return make
