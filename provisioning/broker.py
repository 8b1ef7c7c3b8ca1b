"""Broker accounts for mosquitto: a password file in its own hash format, a least-privilege
ACL and the settings every broker of ours runs with.

Accounts and their rights:

* a device (its username is its id) writes its own status, events, occupancy and replies,
  and reads its own commands and credentials; for each zone its doors lead into or out of
  (from its configuration in the site directory) it writes its own `crossings/{zone}` and
  `positions/{zone}` (its retained digest) and reads every device's, and no other zone's;
* a console reads every device's status, events, occupancy and replies, and sends commands;
* an operator publishes credentials and reads every device's status;
* the rooms service reads every device's status, occupancy, access and door events (never
  alarms, commands, credentials, crossings or positions) and writes only its own status,
  building view and Home Assistant state topics under `{root}/{site}/rooms/`, plus its
  discovery configs `{prefix}/{component}/+/config` for the components it announces
  (`HA_COMPONENTS`), and reads Home Assistant's birth message `{prefix}/status`; it cannot
  write another integration's discovery nor fake Home Assistant's status. The console reads
  the building view too;
* Home Assistant reads discovery under `{prefix}/#`, every device's status (availability)
  and the rooms service's status and state topics, and writes only its birth and last will
  on `{prefix}/status`: no events, occupancy, commands, credentials, crossings or view.

`{prefix}` is Home Assistant's discovery prefix (`homeassistant` unless the rooms config's
`[homeassistant] prefix` says otherwise; `edge-provision broker config --ha-prefix`). It is
one topic level and never the first level of the MQTT root: Home Assistant reads all of it.

The ACL has no `pattern` lines: mosquitto applies a pattern to every user, so a console or
operator account would also get a device's rights under a branch named like itself. Each
device gets its own `user` block instead, generated from the registry. The broker replaces
every client id by the username (`use_username_as_clientid`), so no account can take another
account's client id: it can neither kick that client off nor touch its persistent session.
Anonymous clients are refused.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Iterable, Mapping
from pathlib import Path

from edge.errors import EdgeError
from edge.link import topics
from edge.link.crossings import served_zones
from firmware_config.errors import ConfigError
from firmware_config.fields import check_slug
from firmware_config.loader import parse_config

# mosquitto 2 "$7$" hashes are PBKDF2-HMAC-SHA512; it reads the iteration count from the
# hash, so we use far more than mosquitto_passwd's 101.
ITERATIONS = 20_000

ROLES = ("device", "console", "operator", "rooms", "homeassistant")
HA_PREFIX = "homeassistant"  # Home Assistant's default discovery prefix
# The components rooms.homeassistant announces (a test holds the two together): the rooms
# account may write discovery for these and no other.
HA_COMPONENTS = ("binary_sensor", "sensor")

# The largest message we send is a device's full credential snapshot: 5.8 MB for 100,000
# cards (1-3 groups each), 11.9 MB for 100,000 cards of 10 groups each plus 100,000 denied
# (measured with edge.snapshot.build). mosquitto 2.0's limit is global, not per listener, so
# it bounds a device's messages as well; a client that sends a larger packet is disconnected.
MAX_PACKET_SIZE = 16 * 1024 * 1024
# The default of 1000 silently drops QoS 1 messages for a slow subscriber. A million events
# (about 0.5 KB each) fit under the byte limit, which stops large messages from filling the
# broker's memory through one slow or absent client's queue.
MAX_QUEUED_MESSAGES = 1_000_000
MAX_QUEUED_BYTES = 1024 * 1024 * 1024
MAX_INFLIGHT_MESSAGES = 1000


class BrokerConfigError(EdgeError, ValueError):
    """An account cannot be expressed in the broker's configuration."""


def password_hash(password: str, iterations: int = ITERATIONS) -> str:
    """Return a mosquitto password-file hash: $7$iterations$salt$digest."""
    salt = secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def password_file(accounts: Mapping[str, str]) -> str:
    """Return the password file for {username: hash}."""
    return "".join(f"{user}:{hashed}\n" for user, hashed in sorted(accounts.items()))


def device_zones(
    site_dir: Path, devices: Iterable[str]
) -> tuple[dict[str, frozenset[str]], list[str]]:
    """Return the zones each device serves, from `devices/{id}.toml`, and why any has none."""
    zones: dict[str, frozenset[str]] = {}
    problems = []
    for device in devices:
        path = site_dir / "devices" / f"{device}.toml"
        try:
            config = parse_config(path.read_text(encoding="utf-8"), str(path))
        except FileNotFoundError:
            continue  # an account with no device configuration serves no zone
        except (OSError, ConfigError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            problems.append(f"{device}: no crossings rights until {path} is valid ({first})")
            continue
        zones[device] = served_zones(config)
    return zones, problems


def role_topics(
    root: str,
    site: str,
    username: str,
    role: str,
    zones: Iterable[str] = (),
    ha_prefix: str = HA_PREFIX,
) -> list[str]:
    """Return the ACL `topic` lines of one account (`zones`: a device's served zones)."""
    if role == "device":
        crossings = [
            line
            for zone in sorted(zones)
            for line in (
                f"topic write {topics.crossings(root, site, username, zone)}",
                f"topic read {topics.crossings_filter(root, site, zone)}",
                f"topic write {topics.positions(root, site, username, zone)}",
                f"topic read {topics.positions_filter(root, site, zone)}",
            )
        ]
        return [
            f"topic write {topics.status(root, site, username)}",
            f"topic write {topics.events_filter(root, site, username)}",
            f"topic write {topics.occupancy_filter(root, site, username)}",
            f"topic write {topics.replies_filter(root, site, username)}",
            f"topic read {topics.command_branch_filter(root, site, username)}",
            f"topic read {topics.credentials(root, site, username)}",
            f"topic read {topics.credentials_delta(root, site, username)}",
            *crossings,
        ]
    if role == "console":
        return [
            f"topic read {topics.status_filter(root, site)}",
            f"topic read {topics.events_filter(root, site)}",
            f"topic read {topics.occupancy_filter(root, site)}",
            f"topic read {topics.replies_filter(root, site)}",
            f"topic read {topics.rooms_view(root, site)}",
            f"topic write {topics.command_branch_filter(root, site)}",
        ]
    if role == "operator":
        return [
            f"topic write {topics.credentials_filter(root, site)}",
            f"topic write {topics.credentials_delta_filter(root, site)}",
            f"topic read {topics.status_filter(root, site)}",
        ]
    if role == "rooms":
        # Not `{root}/{site}/rooms/#`: that branch has the shape of a device's, and devices
        # read `+/crossings/{zone}`; only the service's own three kinds of topic are granted.
        return [
            f"topic read {topics.status_filter(root, site)}",
            f"topic read {topics.occupancy_filter(root, site)}",
            f"topic read {topics.event_filter(root, site, 'access')}",
            f"topic read {topics.event_filter(root, site, 'door')}",
            f"topic write {topics.rooms_status(root, site)}",
            f"topic write {topics.rooms_view(root, site)}",
            f"topic write {topics.rooms_states_filter(root, site)}",
            *(f"topic write {ha_prefix}/{c}/+/config" for c in HA_COMPONENTS),
            f"topic read {ha_prefix}/status",
        ]
    if role == "homeassistant":
        # Availability reads each sensor device's status; states come from the rooms service's
        # own topics, never from raw occupancy or events.
        return [
            f"topic read {ha_prefix}/#",
            f"topic read {topics.status_filter(root, site)}",
            f"topic read {topics.rooms_states_filter(root, site)}",
            f"topic write {ha_prefix}/status",
        ]
    raise BrokerConfigError(f"account {username}: unknown role {role!r}; use one of {ROLES}")


def check_ha_prefix(prefix: str, root: str) -> str:
    """Accept Home Assistant's discovery prefix: one topic level, apart from the MQTT root."""
    try:
        check_slug(prefix)
    except ValueError as error:
        raise BrokerConfigError(f"Home Assistant prefix: {error}") from None
    if prefix == root.split("/", maxsplit=1)[0]:
        raise BrokerConfigError(
            f"Home Assistant prefix {prefix!r} is the first level of the MQTT root {root!r}: "
            "Home Assistant reads all of its prefix, so it would read every device's topics; "
            'use its own level, e.g. "homeassistant", in the rooms config and here'
        )
    return prefix


def acl(
    root: str,
    site: str,
    accounts: Mapping[str, str],
    zones: Mapping[str, Iterable[str]] | None = None,
    ha_prefix: str = HA_PREFIX,
) -> str:
    """Return the ACL for {username: role}: one `user` block per account, no patterns.

    `zones` gives each device the zones whose crossings and digests it shares (none if absent);
    `ha_prefix` is Home Assistant's discovery prefix (the rooms config's `[homeassistant]`).
    """
    zones = zones or {}
    check_ha_prefix(ha_prefix, root)
    lines = [
        "# Generated by edge-provision broker config: do not edit by hand.",
        "# One block per account; no `pattern` lines (mosquitto applies them to every user).",
        "",
    ]
    for username, role in sorted(accounts.items(), key=lambda a: (ROLES.index(a[1]), a[0])):
        if role not in ROLES:
            raise BrokerConfigError(
                f"account {username}: unknown role {role!r}; use one of {ROLES}"
            )
        granted = role_topics(root, site, username, role, zones.get(username, ()), ha_prefix)
        lines += [f"# {role}", f"user {username}", *granted, ""]
    return "\n".join(lines)


def limits() -> list[str]:
    """Return the global settings: bounds on packets, queues and in-flight messages, and
    each packet sent at once (no Nagle delay behind a client's delayed ACK, ~40 ms a hop)."""
    return [
        "set_tcp_nodelay true",
        f"max_packet_size {MAX_PACKET_SIZE}",
        f"max_queued_messages {MAX_QUEUED_MESSAGES}",
        f"max_queued_bytes {MAX_QUEUED_BYTES}",
        f"max_inflight_messages {MAX_INFLIGHT_MESSAGES}",
    ]


def account_settings(password_path: str, acl_path: str) -> list[str]:
    """Return the listener's account settings: passwords, the ACL, client id = username."""
    return [
        "allow_anonymous false",
        f"password_file {password_path}",
        f"acl_file {acl_path}",
        # A listener option: it must follow its `listener` line.
        "use_username_as_clientid true",
    ]


def broker_settings(
    port: int,
    password_path: str,
    acl_path: str,
    tls: tuple[str, str, str] | None = None,
    address: str | None = None,
) -> str:
    """Return the mosquitto settings every broker of ours needs; `tls` = (ca, cert, key)."""
    listener = [f"listener {port}" + (f" {address}" if address else "")]
    if tls is not None:
        ca, cert, key = tls
        listener += [f"cafile {ca}", f"certfile {cert}", f"keyfile {key}"]
    return "\n".join(
        [
            *listener,
            *account_settings(password_path, acl_path),
            "persistence true",
            *limits(),
            "",
        ]
    )
