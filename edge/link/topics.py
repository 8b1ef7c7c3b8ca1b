"""Topic builders: pure functions, so every part of the system spells topics the same way.

{root}/{site}/{device}/status                 retained, last will "offline"
{root}/{site}/{device}/events/{kind}
{root}/{site}/{device}/occupancy/{zone}       retained
{root}/{site}/{device}/cmd/{name}             inbound, signed
{root}/{site}/{device}/credentials            inbound, retained, signed: the full snapshot
{root}/{site}/{device}/credentials/delta      inbound, retained, signed: changes since it
{root}/{site}/{device}/reply/{account}        command replies, to the MQTT 5 response topic
{root}/{site}/{device}/crossings/{zone}       anti-passback crossings shared by a zone's devices
{root}/{site}/{device}/positions/{zone}       retained: the positions a device set itself there
{root}/{site}/rooms/status                    the rooms service: retained, last will "offline"
{root}/{site}/rooms/view                      retained: the building view (no personal data)
{root}/{site}/rooms/ha/...                    retained: Home Assistant state topics
{root}/{site}/bridge/state                    on the central broker: the site's bridge, "1"/"0"
{root}/{site}/bridge/stored                   on the central broker: the site broker's stored count

`rooms` and `bridge` are reserved: no device may take those ids (provisioning refuses them).

The filters (`…_filter`) take `device=ANY` for every device of a site: the console's
subscriptions, the operators' status watch and the broker's ACL are built from them too.
"""

from __future__ import annotations

import re

from edge.errors import EdgeError

_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
EVENT_KINDS = ("access", "door", "alarm", "presence", "system", "command")
DEFAULT_ROOT = "edge"
ANY = "+"


class TopicError(EdgeError, ValueError):
    """A topic part that would break the topic tree (a wildcard, a slash, an empty level)."""


def _slug(value: str, what: str) -> str:
    if not _SLUG.match(value):
        raise TopicError(
            f"{what} {value!r} cannot be a topic level: use lower-case letters, digits and "
            "hyphens (no '/', '+' or '#')"
        )
    return value


def site_prefix(root: str, site: str) -> str:
    """Return `{root}/{site}`."""
    for level in root.split("/"):
        _slug(level, "topic root level")
    return f"{root}/{_slug(site, 'site')}"


def device_prefix(root: str, site: str, device: str) -> str:
    """Return `{root}/{site}/{device}`."""
    return f"{site_prefix(root, site)}/{_slug(device, 'device')}"


def _devices(root: str, site: str, device: str) -> str:
    # `{root}/{site}/+` for every device of the site, else one device's prefix.
    return (
        f"{site_prefix(root, site)}/{ANY}" if device == ANY else device_prefix(root, site, device)
    )


def status(root: str, site: str, device: str) -> str:
    """Return the retained status topic."""
    return f"{device_prefix(root, site, device)}/status"


def event(root: str, site: str, device: str, kind: str) -> str:
    """Return the topic for one event kind."""
    if kind not in EVENT_KINDS:
        raise TopicError(f"event kind {kind!r}: use one of {', '.join(EVENT_KINDS)}")
    return f"{device_prefix(root, site, device)}/events/{kind}"


def occupancy(root: str, site: str, device: str, zone: str) -> str:
    """Return the retained occupancy topic of a zone."""
    return f"{device_prefix(root, site, device)}/occupancy/{_slug(zone, 'zone')}"


def command(root: str, site: str, device: str, name: str) -> str:
    """Return the inbound topic of one command."""
    return f"{device_prefix(root, site, device)}/cmd/{_slug(name, 'command')}"


def commands_filter(root: str, site: str, device: str) -> str:
    """Return the subscription filter for every command of a device."""
    return f"{device_prefix(root, site, device)}/cmd/+"


def credentials(root: str, site: str, device: str) -> str:
    """Return the retained credentials topic of a device."""
    return f"{device_prefix(root, site, device)}/credentials"


def credentials_delta(root: str, site: str, device: str) -> str:
    """Return the retained topic of a device's delta on top of its retained snapshot."""
    return f"{credentials(root, site, device)}/delta"


def reply(root: str, site: str, device: str, account: str) -> str:
    """Return the topic where `device` answers the commands `account` sends it."""
    return f"{device_prefix(root, site, device)}/reply/{_slug(account, 'account')}"


def reply_prefix(root: str, site: str, device: str) -> str:
    """Return `{root}/{site}/{device}/reply/`, the branch a device may answer commands under."""
    return f"{device_prefix(root, site, device)}/reply/"


def status_filter(root: str, site: str, device: str = ANY) -> str:
    """Return the filter for the status of one device or, by default, every device."""
    return f"{_devices(root, site, device)}/status"


def events_filter(root: str, site: str, device: str = ANY) -> str:
    """Return the filter for every event kind of one device or, by default, every device."""
    return f"{_devices(root, site, device)}/events/#"


def occupancy_filter(root: str, site: str, device: str = ANY) -> str:
    """Return the filter for every zone's occupancy of one device or every device."""
    return f"{_devices(root, site, device)}/occupancy/#"


def replies_filter(root: str, site: str, device: str = ANY, account: str | None = None) -> str:
    """Return the filter for command replies: to `account` only, or to every account."""
    level = "#" if account is None else _slug(account, "account")
    return f"{_devices(root, site, device)}/reply/{level}"


def command_branch_filter(root: str, site: str, device: str = ANY) -> str:
    """Return the filter for every command topic, at any depth (the broker's ACL)."""
    return f"{_devices(root, site, device)}/cmd/#"


def credentials_filter(root: str, site: str, device: str = ANY) -> str:
    """Return the filter for the credentials of one device or every device."""
    return f"{_devices(root, site, device)}/credentials"


def credentials_branch_filter(root: str, site: str, device: str = ANY) -> str:
    """Return the filter for the credentials topic and everything under it (deltas too)."""
    return f"{_devices(root, site, device)}/credentials/#"


def credentials_delta_filter(root: str, site: str, device: str = ANY) -> str:
    """Return the filter for the credential deltas of one device or every device."""
    return f"{credentials_filter(root, site, device)}/delta"


def crossings(root: str, site: str, device: str, zone: str) -> str:
    """Return the topic where `device` shares its crossings into or out of `zone`."""
    return f"{device_prefix(root, site, device)}/crossings/{_slug(zone, 'zone')}"


def crossings_filter(root: str, site: str, zone: str, device: str = ANY) -> str:
    """Return the filter for the crossings of `zone` by every device (or one)."""
    return f"{_devices(root, site, device)}/crossings/{_slug(zone, 'zone')}"


def event_filter(root: str, site: str, kind: str, device: str = ANY) -> str:
    """Return the filter for one event kind of one device or, by default, every device."""
    if kind not in EVENT_KINDS:
        raise TopicError(f"event kind {kind!r}: use one of {', '.join(EVENT_KINDS)}")
    return f"{_devices(root, site, device)}/events/{kind}"


ROOMS = "rooms"  # the rooms service's branch of a site; never a device id


BRIDGE = "bridge"  # the site bridge's branch on the central broker; never a device id


def bridge_state(root: str, site: str) -> str:
    """Return the retained topic where a site's bridge says "1" (linked) or "0" (its will)."""
    return f"{site_prefix(root, site)}/{BRIDGE}/state"


def bridge_stored(root: str, site: str) -> str:
    """Return the topic of the site broker's stored-message count, bridged from its `$SYS`."""
    return f"{site_prefix(root, site)}/{BRIDGE}/stored"


def rooms_prefix(root: str, site: str) -> str:
    """Return `{root}/{site}/rooms`, the rooms service's branch."""
    return f"{site_prefix(root, site)}/{ROOMS}"


def rooms_status(root: str, site: str) -> str:
    """Return the rooms service's retained status topic (last will `offline`)."""
    return f"{rooms_prefix(root, site)}/status"


def rooms_view(root: str, site: str) -> str:
    """Return the retained topic of the building view the rooms service publishes."""
    return f"{rooms_prefix(root, site)}/view"


def rooms_states_filter(root: str, site: str) -> str:
    """Return the filter for the rooms service's Home Assistant state topics."""
    return f"{rooms_prefix(root, site)}/ha/#"


def crossing_levels(topic: str, root: str, site: str) -> tuple[str, str] | None:
    """Return (device, zone) if `topic` is `{root}/{site}/{device}/crossings/{zone}`, else None.

    The levels are returned as they arrived; the caller judges them.
    """
    return _zone_levels(topic, root, site, "crossings")


def _zone_levels(topic: str, root: str, site: str, branch: str) -> tuple[str, str] | None:
    levels = device_levels(topic, root, site)
    if levels is None or len(levels) != 3 or levels[1] != branch:
        return None
    return levels[0], levels[2]


def positions(root: str, site: str, device: str, zone: str) -> str:
    """Return the retained topic of `device`'s positions digest for `zone`."""
    return f"{device_prefix(root, site, device)}/positions/{_slug(zone, 'zone')}"


def positions_filter(root: str, site: str, zone: str, device: str = ANY) -> str:
    """Return the filter for the positions digests of `zone` by every device (or one)."""
    return f"{_devices(root, site, device)}/positions/{_slug(zone, 'zone')}"


def positions_levels(topic: str, root: str, site: str) -> tuple[str, str] | None:
    """Return (device, zone) if `topic` is `{root}/{site}/{device}/positions/{zone}`, else None.

    The levels are returned as they arrived; the caller judges them.
    """
    return _zone_levels(topic, root, site, "positions")


PEER_BRANCHES = ("crossings", "positions")


def peer_levels(topic: str) -> tuple[str, str, str] | None:
    """Return (device, branch, zone) if `topic` ends in `{device}/crossings|positions/{zone}`.

    For sorting what arrives into lanes before anything is judged: only the last three
    levels are looked at (no command or credentials topic ends that way).
    """
    levels = topic.rsplit("/", 3)
    if len(levels) != 4 or levels[2] not in PEER_BRANCHES:
        return None
    return levels[1], levels[2], levels[3]


def command_prefix(root: str, site: str, device: str) -> str:
    """Return `{root}/{site}/{device}/cmd/`, the start of every command topic of a device."""
    return f"{device_prefix(root, site, device)}/cmd/"


def device_levels(topic: str, root: str, site: str) -> list[str] | None:
    """Return the levels after `{root}/{site}/` (the device first), or None if not under it.

    The root may have several levels (`kamakura/edge`). Nothing is checked beyond the prefix:
    the caller judges the device and what follows it.
    """
    prefix = f"{root}/{site}/"
    if not topic.startswith(prefix):
        return None
    return topic[len(prefix) :].split("/")


def command_name(topic: str, root: str, site: str, device: str) -> str | None:
    """Return the level after `cmd/` if `topic` is one of this device's command topics.

    The level is returned as it arrived (any case, any script, even empty): the verifier
    accepts a command only where it is exactly the signed command name.
    """
    prefix = command_prefix(root, site, device)
    if not topic.startswith(prefix):
        return None
    return topic[len(prefix) :]
