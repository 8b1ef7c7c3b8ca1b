"""The feed: whom it trusts for each zone, when a reading is unknown, and hostile messages."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.link import topics
from rooms.config import ServiceConfig
from rooms.feed import MAX_PAYLOAD_BYTES, Feed
from rooms.inbox import Inbound
from tests.rooms.service_site import (
    BOOTH,
    CARD,
    GATE,
    GATE_DOOR,
    ISLANDS,
    MEETING,
    NODE,
    OTHER,
    ROOT,
    SITE,
    event,
    gate_toml,
    occupancy,
    service_config,
    status,
    will,
)

T0 = datetime(2031, 4, 1, 1, 0, tzinfo=UTC)
S = timedelta(seconds=1)


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> ServiceConfig:
    return service_config(tmp_path_factory.mktemp("feed"))


def live_feed(config: ServiceConfig, occupied: bool = False) -> Feed:
    feed = Feed(config)
    feed.link(True, T0)
    feed.message(status(), T0)
    feed.message(occupancy(MEETING, occupied), T0)
    feed.refresh(T0)
    return feed


def test_the_trusted_device_s_reading_is_taken(config: ServiceConfig) -> None:
    feed = live_feed(config, occupied=True)
    reading = feed.sensing(MEETING)
    assert (reading.occupied, reading.healthy_since, reading.device) == (True, T0, NODE)
    assert reading.spans == ((T0, None),)
    feed.message(occupancy(MEETING, False), T0 + 60 * S)
    feed.refresh(T0 + 60 * S)
    assert feed.sensing(MEETING).spans == ((T0, T0 + 60 * S),)
    assert feed.sensing(MEETING).vacant_since() == T0 + 60 * S


def test_another_device_cannot_speak_for_a_room(config: ServiceConfig) -> None:
    feed = live_feed(config)
    feed.message(status(OTHER), T0)
    feed.message(occupancy(MEETING, True, device=OTHER), T0 + S)
    assert feed.sensing(MEETING).occupied is False
    assert feed.rejected["untrusted-device"] == 1


@pytest.mark.parametrize(
    ("inbound", "reason"),
    [
        # The payload names another device or zone than its topic.
        (
            Inbound(topics.occupancy(ROOT, SITE, OTHER, MEETING), occupancy(MEETING, True).payload),
            "device-mismatch",
        ),
        (
            Inbound(topics.occupancy(ROOT, SITE, NODE, BOOTH), occupancy(MEETING, True).payload),
            "device-mismatch",
        ),
        (Inbound(topics.occupancy(ROOT, SITE, NODE, MEETING), b"{not json"), "malformed-occupancy"),
        (
            Inbound(topics.occupancy(ROOT, SITE, NODE, MEETING), b'{"v":1,"occupied":"yes"}'),
            "malformed-occupancy",
        ),
        (
            Inbound(topics.occupancy(ROOT, SITE, NODE, MEETING), b" " * (MAX_PAYLOAD_BYTES + 1)),
            "oversized",
        ),
        (Inbound(topics.occupancy(ROOT, SITE, NODE, MEETING), b"", oversized=True), "oversized"),
        (
            Inbound(topics.occupancy(ROOT, "another-site", NODE, MEETING), b"{}"),
            "other-site",
        ),
        (status(NODE, site="another-site"), "other-site"),
        (Inbound(topics.status(ROOT, SITE, NODE), b"online"), "malformed-status"),
        (Inbound(f"{ROOT}/{SITE}/NODE-X/status", b"{}"), "bad-device-id"),
        (Inbound(topics.event(ROOT, SITE, NODE, "access"), b"[]"), "malformed-event"),
    ],
)
def test_hostile_messages_are_dropped_and_counted(
    config: ServiceConfig, inbound: Inbound, reason: str
) -> None:
    feed = live_feed(config, occupied=False)
    assert feed.message(inbound, T0 + S) is None
    feed.refresh(T0 + S)
    assert feed.rejected[reason] == 1, dict(feed.rejected)
    assert feed.sensing(MEETING).occupied is False  # what was known still stands


def test_bad_messages_are_logged_once_a_minute(
    config: ServiceConfig, caplog: pytest.LogCaptureFixture
) -> None:
    feed = live_feed(config)
    bad = Inbound(topics.occupancy(ROOT, SITE, NODE, MEETING), b"{")
    with caplog.at_level(logging.WARNING, logger="rooms.feed"):
        for i in range(100):
            feed.message(bad, T0 + i * S / 10)
        feed.message(bad, T0 + 61 * S)
    lines = [r for r in caplog.records if "malformed-occupancy" in r.getMessage()]
    assert len(lines) == 2
    assert feed.rejected["malformed-occupancy"] == 101


@settings(max_examples=200, deadline=None)
@given(
    branch=st.sampled_from(["status", "occupancy/meeting-2f-1", "events/access", "events/door"]),
    payload=st.binary(max_size=300)
    | st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=20),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
        max_leaves=10,
    ).map(lambda v: json.dumps(v).encode()),
)
def test_no_message_makes_the_feed_raise(
    config: ServiceConfig, branch: str, payload: bytes
) -> None:
    feed = live_feed(config)
    feed.message(Inbound(f"{ROOT}/{SITE}/{NODE}/{branch}", payload), T0 + S)
    feed.refresh(T0 + S)
    assert feed.rejected["internal-error"] == 0


def test_a_reading_is_unknown_while_the_service_s_link_is_down(config: ServiceConfig) -> None:
    feed = live_feed(config)
    feed.link(False, T0 + 10 * S)
    assert feed.sensing(MEETING).occupied is None
    assert "broker link is down" in feed.sensing(MEETING).reason
    feed.link(True, T0 + 20 * S)  # up again, but nothing current until the status comes
    assert feed.sensing(MEETING).occupied is None
    feed.message(status(), T0 + 21 * S)
    assert feed.sensing(MEETING).healthy_since == T0 + 21 * S


def test_the_last_will_makes_the_device_s_zones_unknown(config: ServiceConfig) -> None:
    feed = live_feed(config, occupied=True)
    feed.message(will(), T0 + 30 * S)
    reading = feed.sensing(MEETING)
    assert reading.occupied is None
    assert reading.reason == "sensors-2f offline since 10:00"
    assert reading.spans == ((T0, T0 + 30 * S),)  # not seen occupied past the will
    assert feed.sensing(ISLANDS[0]).occupied is None


def test_a_device_not_heard_for_stale_after_s_is_stale(config: ServiceConfig) -> None:
    feed = live_feed(config)
    stale = config.checkin.stale_after_s
    feed.refresh(T0 + stale * S)
    assert feed.sensing(MEETING).occupied is False
    feed.refresh(T0 + stale * S + S)
    reading = feed.sensing(MEETING)
    assert reading.occupied is None
    assert "stale" in reading.reason
    assert reading.unhealthy_since == T0 + stale * S
    feed.message(status(), T0 + 200 * S)  # its periodic status: fresh again
    assert feed.sensing(MEETING).occupied is False


def test_no_status_ever_heard_is_unknown(config: ServiceConfig) -> None:
    feed = Feed(config)
    feed.link(True, T0)
    feed.message(occupancy(MEETING, False), T0)
    feed.refresh(T0)
    assert feed.sensing(MEETING).occupied is None
    assert feed.sensing(MEETING).reason == f"no status heard from {NODE}"


def test_a_sensor_fault_reported_by_the_device_is_unknown(config: ServiceConfig) -> None:
    feed = live_feed(config)
    feed.message(occupancy(MEETING, False, sensor_ok=False), T0 + S)
    assert feed.sensing(MEETING).occupied is None
    assert "sensor fault" in feed.sensing(MEETING).reason
    feed.message(occupancy(MEETING, False, sensor_ok=None), T0 + 2 * S)
    assert feed.sensing(MEETING).healthy_since == T0 + 2 * S


def test_line_crossings_in_and_out_once_each(config: ServiceConfig) -> None:
    feed = live_feed(config)
    inside = event(
        GATE, "access", "crossing", 1, card_ref=CARD, door=GATE_DOOR, from_zone="lobby",
        to_zone="staff-area",
    )  # fmt: skip
    crossing = feed.message(inside, T0)
    assert crossing is not None
    assert (crossing.card_ref, crossing.inside) == (CARD, True)
    assert feed.message(inside, T0 + S) is None  # a QoS 1 duplicate
    out = event(
        GATE, "access", "crossing", 2, card_ref=CARD, door=GATE_DOOR, from_zone="staff-area",
        to_zone="lobby",
    )  # fmt: skip
    crossing = feed.message(out, T0 + 2 * S)
    assert crossing is not None
    assert crossing.inside is False
    granted = event(GATE, "access", "granted", 3, card_ref=CARD, door=GATE_DOOR)
    assert feed.message(granted, T0 + 3 * S) is None
    raw = event(
        GATE, "access", "crossing", 4, card_ref="04A2B3C4", from_zone="lobby", to_zone="staff-area"
    )
    assert feed.message(raw, T0 + 4 * S) is None  # not a card reference


def test_doors_are_taken_only_from_the_device_whose_configuration_has_them(
    config: ServiceConfig,
) -> None:
    feed = live_feed(config)
    assert feed.doors() == {GATE_DOOR: None}  # provisioned, not heard since start
    assert feed.door_devices() == {GATE_DOOR: GATE}
    feed.message(event(NODE, "door", "opened", 1, door=GATE_DOOR), T0)  # a node claims it first
    assert feed.doors() == {GATE_DOOR: None}
    feed.message(event(GATE, "door", "opened", 1, door=GATE_DOOR), T0 + S)
    feed.message(event(GATE, "door", "closed", 2, door=GATE_DOOR), T0 + 2 * S)
    assert feed.doors() == {GATE_DOOR: False}
    assert feed.door_devices() == {GATE_DOOR: GATE}
    feed.message(event(GATE, "door", "opened", 3, door="side-door"), T0 + 3 * S)
    assert feed.doors() == {GATE_DOOR: False}
    assert (feed.rejected["untrusted-device"], feed.rejected["unknown-door"]) == (1, 1)


def test_a_sensor_node_s_crossing_is_refused(config: ServiceConfig) -> None:
    feed = live_feed(config)
    faked = event(
        NODE, "access", "crossing", 1, card_ref=CARD, door=GATE_DOOR, from_zone="lobby",
        to_zone="staff-area",
    )  # fmt: skip
    assert feed.message(faked, T0) is None
    elsewhere = event(
        GATE, "access", "crossing", 2, card_ref=CARD, door=GATE_DOOR, from_zone="lobby",
        to_zone="vault",
    )  # fmt: skip
    assert feed.message(elsewhere, T0 + S) is None  # not the two zones its door joins
    assert feed.rejected["untrusted-device"] == 2


def test_head_counts_only_from_the_devices_counting_the_zone(
    config: ServiceConfig, tmp_path: Path
) -> None:
    feed = live_feed(config)
    feed.message(occupancy("staff-area", True, device=GATE, count=7), T0)
    feed.message(occupancy("staff-area", True, device=OTHER, count=5000), T0)  # a node
    feed.message(occupancy("staff-area", True, device="gate-1f-west", count=5), T0)  # no file
    for n in range(50):  # zones its configuration does not have: nothing is kept
        feed.message(occupancy(f"zone-{n}", True, device=GATE, count=1), T0)
    assert feed.counts() == {"staff-area": 7}
    assert feed.rejected["untrusted-device"] == 52
    # A second gate counting the same zone: neither count is the zone's (each floors at zero).
    two = service_config(tmp_path)
    (two.devices_dir or tmp_path).joinpath("gate-1f-west.toml").write_text(
        gate_toml("gate-1f-west", "gate-west")
    )
    feed = live_feed(two)
    feed.message(occupancy("staff-area", True, device=GATE, count=7), T0)
    feed.message(occupancy("staff-area", True, device="gate-1f-west", count=5), T0)
    assert feed.counts() == {}


def test_without_device_files_no_door_crossing_or_count_is_taken(tmp_path: Path) -> None:
    feed = live_feed(service_config(tmp_path, devices_dir=None))
    crossing = event(
        GATE, "access", "crossing", 1, card_ref=CARD, door=GATE_DOOR, from_zone="lobby",
        to_zone="staff-area",
    )  # fmt: skip
    assert feed.message(crossing, T0) is None
    feed.message(event(GATE, "door", "opened", 2, door=GATE_DOOR), T0)
    feed.message(occupancy("staff-area", True, device=GATE, count=7), T0)
    assert (feed.doors(), feed.door_devices(), feed.counts()) == ({}, {}, {})
    assert feed.sensing(MEETING).occupied is False  # rooms are still read


def test_a_zone_level_that_is_not_a_slug_is_refused(config: ServiceConfig) -> None:
    feed = live_feed(config)
    body = occupancy("staff-area", True, device=GATE, count=3).payload
    feed.message(Inbound(f"{ROOT}/{SITE}/{GATE}/occupancy/Zone_X", body), T0)
    assert feed.rejected["bad-zone-id"] == 1
    assert feed.counts() == {}


def test_a_device_catching_up_on_a_backlog_is_not_current(config: ServiceConfig) -> None:
    feed = live_feed(config)
    feed.message(status(backlog=2), T0 + S)  # events in flight: normal
    feed.refresh(T0 + S)
    assert feed.sensing(MEETING).healthy_since == T0
    feed.message(occupancy(MEETING, False), T0 + S)  # the queue drains: its messages arrive
    feed.message(status(backlog=1), T0 + 2 * S)  # one more queued as it was sent: normal
    feed.refresh(T0 + 2 * S)
    assert feed.sensing(MEETING).healthy_since == T0
    feed.message(status(backlog=12), T0 + 3 * S)  # nothing arrived since: it stands still
    feed.refresh(T0 + 3 * S)
    assert feed.sensing(MEETING).occupied is None
    assert "queued" in feed.sensing(MEETING).reason
    feed.message(status(backlog=0), T0 + 4 * S)
    feed.refresh(T0 + 4 * S)
    assert feed.sensing(MEETING).occupied is False
    feed.message(will(), T0 + 5 * S)
    feed.message(status(backlog=30), T0 + 6 * S)  # back online with a queue
    feed.refresh(T0 + 6 * S)
    assert "queued" in feed.sensing(MEETING).reason
    feed.refresh(T0 + 11 * S)  # time enough to drain 30 messages on a live link
    assert feed.sensing(MEETING).occupied is False


def test_a_message_counts_from_its_arrival(config: ServiceConfig) -> None:
    feed = live_feed(config)
    arrived = occupancy(MEETING, True)
    late = Inbound(arrived.topic, arrived.payload, at=T0 + 10 * S)
    feed.message(late, T0 + 60 * S)  # taken from the inbox fifty seconds later
    feed.refresh(T0 + 60 * S)
    assert feed.sensing(MEETING).spans == ((T0 + 10 * S, None),)


def test_after_lost_messages_no_zone_is_trusted_until_heard_again(config: ServiceConfig) -> None:
    feed = live_feed(config)
    feed.lost(T0 + S)
    assert feed.sensing(MEETING).occupied is None
    feed.message(status(), T0 + 2 * S)
    feed.message(occupancy(MEETING, False), T0 + 2 * S)
    feed.refresh(T0 + 2 * S)
    assert (feed.sensing(MEETING).occupied, feed.sensing(MEETING).healthy_since) == (
        False,
        T0 + 2 * S,
    )


def test_an_area_counts_islands_from_its_device_only(config: ServiceConfig, tmp_path: Path) -> None:
    feed = live_feed(config)
    feed.message(occupancy(ISLANDS[0], True), T0)
    feed.message(occupancy(ISLANDS[1], True, device=OTHER), T0)
    feed.refresh(T0)
    assert feed.sensing(ISLANDS[0]).occupied is True
    assert feed.sensing(ISLANDS[1]).occupied is None  # nothing from its own device yet


def test_device_files_are_read_again_and_a_door_in_two_files_is_taken_from_neither(
    tmp_path: Path,
) -> None:
    config = service_config(tmp_path)
    feed = live_feed(config)
    assert feed.door_devices() == {GATE_DOOR: GATE}
    assert config.devices_dir is not None
    assert feed.provisioned is not None
    (config.devices_dir / "gate-1f-west.toml").write_text(gate_toml("gate-1f-west", GATE_DOOR))
    (config.devices_dir / "gate-2f.toml").write_text("[device\nid = ")  # not valid: trusts nothing
    feed.provisioned.rescan()
    assert feed.door_devices() == {}
    feed.message(event(GATE, "door", "opened", 1, door=GATE_DOOR), T0)
    assert feed.rejected["unknown-door"] == 1
    (config.devices_dir / "gate-1f-west.toml").unlink()
    feed.provisioned.rescan()
    assert feed.door_devices() == {GATE_DOOR: GATE}
