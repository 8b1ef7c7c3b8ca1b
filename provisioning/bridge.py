"""Sites bridged to a central broker: each site broker's `connection` block and the central
broker's bridge accounts and ACL.

Each site keeps its own mosquitto (its doors work alone through a WAN cut) and bridges to
the central broker over MQTT 5 with TLS, logging in with its own bridge account
`bridge-{site}`. What crosses, and why:

* up (site to centre), QoS 1: `{root}/{site}/+/status` (which devices are alive),
  `+/events/#` and `+/occupancy/#` (the security log, with the occupancy events that share
  the devices' gap-free sequence), `+/reply/#` (the answers to commands sent from the
  centre), and the bridge's own state `{root}/{site}/bridge/state` ("1", or "0" from its
  will: mosquitto's notification, published to the centre directly, so no topic line) and,
  at QoS 0 (a stale count is worth nothing), the site broker's `$SYS` stored-message count
  remapped to `{root}/{site}/bridge/stored`;
* down (centre to site), QoS 1: `+/cmd/#` (door commands from the security office) and
  `+/credentials/#` (the retained signed snapshot and the retained delta under it).

Nothing else crosses: a zone's `crossings/` and `positions/` are the gates' own
anti-passback traffic, which must keep flowing between the gates of a building through a
WAN cut and means nothing elsewhere; the rooms service's topics (`{root}/{site}/rooms/…`)
and Home Assistant's (`homeassistant/…`) serve the building's own screens and automations.
`+/status` also matches the rooms service's `rooms/status`: the central ACL denies it, so it
is refused at the centre (0x87) and stays at the site.

A site broker checks no ACL on its own bridge; the central broker does: a bridge account
may write only the up topics of its own site and read only its own site's down topics, so a
hostile site can neither speak for another site nor read another site's commands or
credentials. The central broker replaces each client id by the username, so no site can take
another's session either.

mosquitto 2.0.11 sends an MQTT 5 bridge's CONNECT without a session expiry (it has no
setting for one), so the central broker ends the bridge's session whenever the link drops:
a command published at the centre during a cut never reaches the site (it would have
expired, 15 s, anyway; the sender gets no reply), while the retained snapshot and delta come
down again when the bridge subscribes anew. The site's side keeps its session
(`local_cleansession false`), so nothing bound upward is lost.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from edge.errors import EdgeError
from edge.link import topics
from firmware_config.fields import check_slug
from provisioning.broker import (
    MAX_INFLIGHT_MESSAGES,
    MAX_QUEUED_BYTES,
    MAX_QUEUED_MESSAGES,
    role_topics,
)

ACCOUNT_PREFIX = "bridge-"
CENTRAL_ROLES = ("console", "operator")
STORE_COUNT = "$SYS/broker/store/messages/count"
KEEPALIVE_S = 30  # a silent WAN loss is noticed within 1.5 keepalives (45 s)
RESTART_S = (5, 60)  # reconnect backoff: mosquitto's jitter from 5 s up to a minute
# The queue's save interval: a site broker that dies (power cut) rather than stops loses
# the backlog received since its last save; mosquitto rewrites its whole file each time,
# so late in a day's outage (about 30 MB, below) that is 30 MB a minute, which an SD card
# bears for a day.
AUTOSAVE_S = 60
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOST = re.compile(rf"(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*")
# mosquitto's PBKDF2-SHA512 hash, as provisioning.broker.password_hash writes it.
_B64 = r"[A-Za-z0-9+/]+={0,2}"
_HASH = re.compile(rf"\$7\$[1-9][0-9]{{0,9}}\${_B64}\${_B64}")


class BridgeError(EdgeError, ValueError):
    """A bridge cannot be configured as asked; the message says what to change."""


def account(site: str) -> str:
    """Return the central broker account (and client id) of a site's bridge."""
    return f"{ACCOUNT_PREFIX}{check_slug(site)}"


def check_host(host: str) -> str:
    """Accept a host name or an IP address for the `address` line (nothing else fits there)."""
    try:
        version = ipaddress.ip_address(host).version
    except ValueError:
        version = None
    if version == 4:
        return host
    if version == 6:
        raise BridgeError(
            f"central host {host!r}: give an IPv6 central broker a host name (the `address` "
            "line's IPv6 form is not checked here)"
        )
    if _HOST.fullmatch(host) is None:
        raise BridgeError(
            f"central host {host!r} is neither an IP address nor a host name; use e.g. "
            "central.example.lan or 192.0.2.10 (the name its TLS certificate carries)"
        )
    return host


def check_path(path: str, what: str) -> str:
    """Accept a path that a mosquitto configuration line can hold (no spaces, no newlines)."""
    if not path or any(c.isspace() for c in path) or '"' in path:
        raise BridgeError(
            f"{what} {path!r}: mosquitto cannot read a path with spaces or quotes from its "
            "configuration; use --out in a directory whose path has none"
        )
    return path


def up_topics(root: str, site: str) -> list[str]:
    """Return the topic filters the site sends to the centre (the bridge state aside)."""
    return [
        topics.status_filter(root, site),
        topics.events_filter(root, site),
        topics.occupancy_filter(root, site),
        topics.replies_filter(root, site),
    ]


def down_topics(root: str, site: str) -> list[str]:
    """Return the topic filters the centre sends to the site."""
    return [
        topics.command_branch_filter(root, site),
        topics.credentials_branch_filter(root, site),
    ]


def site_bridge(
    root: str,
    site: str,
    host: str,
    port: int,
    ca_file: str,
    password: str,
    restart_s: tuple[int, int] = RESTART_S,
) -> str:
    """Return the site broker's bridge configuration (it holds the bridge's password)."""
    check_host(host)
    check_path(ca_file, "CA file")
    if not 1 <= port <= 65535:
        raise BridgeError(f"central port {port}: use 1-65535 (8883 is MQTT over TLS)")
    base, cap = restart_s
    if not 1 <= base <= cap:
        raise BridgeError(f"reconnect {base} s to {cap} s: use 1 <= first <= most")
    name = account(site)
    return "\n".join(
        [
            "# Generated by edge-provision bridge site: do not edit by hand. It holds the",
            "# bridge's password: 0640, group mosquitto.",
            "#",
            "# The bridge's queue is one client's queue: mosquitto 2.0's global limits apply",
            "# to it, restated here so that they hold whatever else the broker runs. A WAN",
            "# outage of a day at a city hall (1,500 staff) is about 15,000 access events,",
            "# 30,000 door events and 10,000 occupancy changes: some 60,000 messages of",
            "# about 0.5 KB (30 MB). The limits below hold 16 such days; a site sending",
            f"# up to {MAX_QUEUED_MESSAGES:,} messages ({MAX_QUEUED_BYTES // 2**20:,} MiB) a day",
            "# loses nothing in a day's cut. Past them mosquitto drops silently.",
            "# `persistence true` keeps the queue across a restart of this broker (saved",
            f"# at a stop and every {AUTOSAVE_S} s: a power cut loses what came since).",
            f"max_queued_messages {MAX_QUEUED_MESSAGES}",
            f"max_queued_bytes {MAX_QUEUED_BYTES}",
            f"max_inflight_messages {MAX_INFLIGHT_MESSAGES}",
            "persistence true",
            f"autosave_interval {AUTOSAVE_S}",
            "",
            f"connection {name}",
            f"address {host}:{port}",
            "bridge_protocol_version mqttv50",
            f"remote_clientid {name}",
            f"remote_username {name}",
            f"remote_password {password}",
            f"bridge_cafile {ca_file}",
            "bridge_insecure false",
            "cleansession false",
            "local_cleansession false",
            "try_private true",
            "start_type automatic",
            f"keepalive_interval {KEEPALIVE_S}",
            f"restart_timeout {base} {cap}",
            "notifications true",
            f"notification_topic {topics.bridge_state(root, site)}",
            *(f"topic {pattern} out 1" for pattern in up_topics(root, site)),
            *(f"topic {pattern} in 1" for pattern in down_topics(root, site)),
            f'topic "" out 0 {STORE_COUNT} {topics.bridge_stored(root, site)}',
            "",
        ]
    )


def bridge_acl(root: str, site: str) -> list[str]:
    """Return the central ACL `topic` lines of one site's bridge account."""
    prefix = topics.site_prefix(root, site)
    branch = f"{prefix}/{topics.BRIDGE}"
    return [
        # Deny lines come first in mosquitto whatever their order; they close what `+`
        # would open: the rooms service's branch, and a device-shaped `bridge` branch.
        f"topic deny {topics.rooms_prefix(root, site)}/#",
        f"topic deny {branch}/status",
        f"topic deny {branch}/events/#",
        f"topic deny {branch}/occupancy/#",
        f"topic deny {branch}/reply/#",
        *(f"topic write {pattern}" for pattern in up_topics(root, site)),
        f"topic write {topics.bridge_state(root, site)}",
        f"topic write {topics.bridge_stored(root, site)}",
        *(f"topic read {pattern}" for pattern in down_topics(root, site)),
    ]


def central_account_topics(root: str, sites: Iterable[str], name: str, role: str) -> list[str]:
    """Return the central ACL lines of a console or operator account, across `sites`."""
    if role not in CENTRAL_ROLES:
        raise BridgeError(f"account {name}: role {role!r} at the centre; use {CENTRAL_ROLES}")
    lines = []
    for site in sorted(sites):
        lines += role_topics(root, site, name, role)
        if role == "console":
            lines += [
                f"topic read {topics.bridge_state(root, site)}",
                f"topic read {topics.bridge_stored(root, site)}",
            ]
    return lines


def central_passwd_line(site: str, text: str, path: Path) -> str:
    """Return the one passwd line `bridge-{site}:$7$…` that `text` (from `path`) may hold.

    The line goes into the central password file as is, and mosquitto keeps the last line
    of a user named twice: a site's file naming any other account would take that account.
    """
    user = account(site)
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) == 1:
        name, _, hashed = lines[0].partition(":")
        if name == user and _HASH.fullmatch(hashed):
            return f"{user}:{hashed}\n"
    raise BridgeError(
        f"{path} must hold exactly one line {user}:$7$… (its bridge's password hash) and "
        f"nothing else; delete it and the site's bridge/password and run edge-provision "
        f"bridge site for site {site} again"
    )


def central_passwd(lines: Iterable[str]) -> str:
    """Return the central password file of `lines`, refusing any user named twice."""
    lines = sorted(lines)
    users = [line.partition(":")[0] for line in lines]
    if twice := sorted({user for user in users if users.count(user) > 1}):
        # mosquitto keeps the last line of a user named twice: never leave it to the order.
        raise BridgeError(
            f"account {', '.join(twice)} would be in the central passwd twice (mosquitto "
            "keeps the last line); give each account one name and each site one bridge"
        )
    return "".join(lines)


def check_central_name(name: str) -> str:
    """Accept a central console or operator account name that no bridge can have."""
    if name.startswith(ACCOUNT_PREFIX) or name == topics.BRIDGE:
        raise BridgeError(
            f"account {name!r}: names starting with {ACCOUNT_PREFIX!r} belong to the sites' "
            "bridges (the broker uses the name as the client id); pick another, e.g. console-hq"
        )
    return name


def central_acl(root: str, sites: Iterable[str], accounts: Mapping[str, str]) -> str:
    """Return the central ACL: one block per site's bridge, then {name: role} accounts."""
    sites = sorted(set(sites))
    lines = [
        "# Generated by edge-provision bridge central: do not edit by hand.",
        "# One block per account; no `pattern` lines (mosquitto applies them to every user).",
        "",
    ]
    for site in sites:
        lines += [f"# bridge of site {site}", f"user {account(site)}", *bridge_acl(root, site), ""]
    for name, role in sorted(accounts.items()):
        check_central_name(name)
        granted = central_account_topics(root, sites, name, role)
        lines += [f"# {role}", f"user {name}", *granted, ""]
    return "\n".join(lines)
