"""Devices: a configuration from the role's example, and the bundle an installer copies."""

from __future__ import annotations

import io
import re
import tarfile
from pathlib import Path

from edge.errors import EdgeError
from edge.link.topics import BRIDGE, ROOMS
from firmware_config.errors import ConfigError
from firmware_config.fields import check_slug
from firmware_config.loader import parse_config
from provisioning.files import private_dir, write_file
from provisioning.keys import SiteKeys

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = {
    "gate": ROOT / "firmware_config" / "examples" / "security-gate.toml",
    "door": ROOT / "firmware_config" / "examples" / "stairway-door.toml",
    "sensor-node": ROOT / "firmware_config" / "examples" / "sensor-node.toml",
}
DEPLOY = ROOT / "firmware_config" / "deploy"


# Topic branches of a site that are not devices: a device with such an id would publish
# where the rooms service (or, at the centre, the site's bridge) does, and read what is
# meant for it.
RESERVED_IDS = frozenset({ROOMS, BRIDGE})


class BundleError(EdgeError, ValueError):
    """A bundle cannot be made; the message says what is missing and how to fix it."""


class ReservedIdError(EdgeError, ValueError):
    """A device id names a site's topic branch that belongs to a service."""


def check_device_id(device_id: str) -> str:
    """Accept a device id: a slug that is not a reserved branch of the site's topics."""
    check_slug(device_id)
    if device_id in RESERVED_IDS:
        raise ReservedIdError(
            f"device id {device_id!r} is reserved: {{root}}/{{site}}/{device_id}/ is the "
            f"{device_id} service's topic branch; pick another id, e.g. {device_id}-sensors-2f"
        )
    return device_id


def config_from_example(role: str, site: str, device: str) -> str:
    """Return the role's example configuration with this site, device and broker account."""
    text = EXAMPLES[role].read_text(encoding="utf-8")
    text = re.sub(
        r'^(\[site\]\n(?:#.*\n)*)id = "[^"]*"',
        rf'\1id = "{site}"',
        text,
        count=1,
        flags=re.MULTILINE,
    )
    text = re.sub(
        r'^(\[device\]\n(?:#.*\n)*)id = "[^"]*"',
        rf'\1id = "{device}"',
        text,
        count=1,
        flags=re.MULTILINE,
    )
    text = re.sub(
        r'^username = "[^"]*"', f'username = "{device}"', text, count=1, flags=re.MULTILINE
    )
    header = (
        f"# {device}: made by edge-provision device add from {EXAMPLES[role].name};\n"
        "# edit its doors, pins and zones, then check it: edge-agent check --config FILE\n"
    )
    return header + text


def bundle(site_dir: Path, device: str, out: Path) -> list[str]:
    """Write the device bundle (tar.gz, 0600: it holds secrets); return its member names.

    The site card key goes only to a device with readers.
    """
    config_path = site_dir / "devices" / f"{device}.toml"
    password = site_dir / "accounts" / f"{device}.password"
    keys = SiteKeys(site_dir / "keys")
    if not config_path.exists():
        raise BundleError(f"no {config_path}; run edge-provision device add {device} --role …")
    if not password.exists():
        raise BundleError(
            f"no broker account for {device}; run edge-provision account add {device} --role device"
        )
    text = config_path.read_text(encoding="utf-8")
    try:
        config = parse_config(text, str(config_path))
    except ConfigError as error:
        raise BundleError(f"{config_path} is not valid yet:\n{error}") from None
    if config.device.id != device:
        raise BundleError(f"{config_path} says device {config.device.id!r}, not {device!r}")
    members = {
        "etc/edge/agent.toml": (text.encode(), 0o640),
        "etc/edge/mqtt-password": (password.read_bytes(), 0o600),
        "etc/edge/commands.pub": (keys.public("commands").read_bytes(), 0o644),
        "etc/edge/credentials.pub": (keys.public("credentials").read_bytes(), 0o644),
        "edge-agent.service": ((DEPLOY / "edge-agent.service").read_bytes(), 0o644),
        "install.sh": ((DEPLOY / "install.sh").read_bytes(), 0o755),
    }
    if config.readers:  # a device without readers never holds the site card key
        members["etc/edge/card-key"] = (keys.card_key.read_bytes(), 0o600)
    members["INSTALL.txt"] = (_instructions(device, bool(config.readers)).encode(), 0o644)
    ca = keys.directory / "ca.crt"
    if ca.exists():  # the broker's TLS is signed by the site's own CA
        members["etc/edge/ca.crt"] = (ca.read_bytes(), 0o644)
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        for name, (data, mode) in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = mode
            tar.addfile(info, io.BytesIO(data))
    if not out.parent.exists():
        private_dir(out.parent)
    write_file(out, archive.getvalue())
    return list(members)


def _instructions(device: str, card_key: bool) -> str:
    secrets = "the site card key and the broker password" if card_key else "the broker password"
    owned = "/etc/edge/card-key /etc/edge/mqtt-password" if card_key else "/etc/edge/mqtt-password"
    return f"""Device bundle for {device}. It holds {secrets}:
keep it private and delete it once installed.

On the Raspberry Pi, as root, with this project's checkout (or release) in /opt/edge/src:
  sudo /opt/edge/src/firmware_config/deploy/install.sh --no-start
  sudo tar -C / -xzf {device}.tar.gz etc/edge
  sudo chown -R root:edge /etc/edge && sudo chmod 640 /etc/edge/agent.toml
  sudo chown edge {owned}
  sudo /opt/edge/venv/bin/edge-agent check --config /etc/edge/agent.toml --probe
  sudo systemctl start edge-agent
"""
