"""What the MQTT link hands the agent's loop: inbound messages, checked before use."""

from __future__ import annotations

from dataclasses import dataclass

MAX_CORRELATION = 64
MAX_RESPONSE_TOPIC = 200


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """A command or credential message as received; `response_topic` already validated."""

    topic: str
    payload: bytes
    retained: bool
    response_topic: str | None = None
    correlation: bytes | None = None


@dataclass(frozen=True, slots=True)
class SnapshotResult:
    """A credential snapshot the background worker applied (version) or refused (error)."""

    version: int | None
    error: str | None = None


def safe_response_topic(topic: object, allowed_prefix: str) -> str | None:
    """Return the response topic if the device may publish there, else None.

    The properties of an inbound message are chosen by whoever sent it: a reply goes only to
    a plain topic under this device's own `reply/` branch (the broker lets a device publish
    nowhere else anyway), never to a wildcard, a `$` topic or another device.
    """
    if not isinstance(topic, str) or len(topic) > MAX_RESPONSE_TOPIC:
        return None
    if any(c in topic for c in "+#\0") or not topic.startswith(allowed_prefix):
        return None
    return topic if len(topic) > len(allowed_prefix) else None


def safe_correlation(data: object) -> bytes | None:
    """Return correlation data if it is bytes of a sane length, else None."""
    if isinstance(data, bytes | bytearray) and 0 < len(data) <= MAX_CORRELATION:
        return bytes(data)
    return None
