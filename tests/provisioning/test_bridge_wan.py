"""Two sites bridged to a centre over TLS, with the generated configurations: a WAN cut
loses nothing, a site speaks only for itself, and only the contract's topics cross."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge.link import topics
from provisioning.bridge import account
from tests.wan import ROOT, Client, Wan, events, start_wan

pytestmark = pytest.mark.services  # starts three mosquittos and the WAN links between them

A, B = "site-a", "site-b"
GATE = "gate-1"  # the same device id at both sites: only the site tells them apart
NOT_AUTHORIZED = 0x87


@pytest.fixture(scope="module")
def wan(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Wan]:
    wan = start_wan(tmp_path_factory.mktemp("wan"), (A, B), (GATE, "gate-2"))
    yield wan
    wan.close()


@pytest.fixture(autouse=True)
def _own_clients(wan: Wan) -> Iterator[None]:
    """Close each test's clients: accounts are client ids, so a leftover one would kick."""
    yield
    wan.close_clients()


def collector(wan: Wan, *filters: str, name: str = "collector") -> Client:
    """Return the centre's persistent subscriber (a console account), subscribed to `filters`."""
    return wan.client(
        wan.central.port, name, wan.central_password(name), subscribe=filters, persistent=True
    )


def gate(wan: Wan, site: str, device: str = GATE, *filters: str) -> Client:
    """Return a device's own client at its site (its device account)."""
    broker = wan.sites[site]
    return wan.client(
        broker.broker.port, device, broker.password(device), subscribe=filters,
        client_id=f"{device}",
    )  # fmt: skip


def tap(wan: Wan, port: int, name: str) -> Client:
    """Return a test-only client that sees everything on one broker."""
    return wan.client(port, "tap", wan.tap_password, subscribe=("#",), client_id=name)


def wait_down_link(console: Client, at_site: Client, site: str) -> None:
    """Wait until commands from the centre reach `site` (its bridge subscribed again).

    The bridge's session at the centre ends with each cut (see provisioning.bridge), and
    it says "1" before it subscribes: probe until a probe command comes through.
    """
    probe = topics.command(ROOT, site, "probe", "ping")
    deadline = time.monotonic() + 20
    while not at_site.on(probe):
        if time.monotonic() > deadline:
            pytest.fail(f"commands from the centre never reached {site}")
        console.publish(probe, b"probe")
        with at_site.cond:
            at_site.cond.wait_for(lambda: bool(at_site.on(probe)), 0.2)


def states(client: Client, site: str) -> list[bytes]:
    return [m.payload for m in client.on(topics.bridge_state(ROOT, site))]


def test_a_wan_cut_loses_nothing_and_the_other_site_keeps_flowing(wan: Wan) -> None:
    centre = collector(
        wan,
        *(topics.events_filter(ROOT, s) for s in (A, B)),
        *(topics.bridge_state(ROOT, s) for s in (A, B)),
    )
    centre.wait_for(lambda m: states(centre, A)[-1:] == [b"1"], "site A's bridge state 1")
    sent_a = dict(events(GATE, 1, 600))
    sent_b = dict(events(GATE, 1, 200))
    gate_a, gate_b = gate(wan, A), gate(wan, B)
    prefix_a = topics.device_prefix(ROOT, A, GATE)
    prefix_b = topics.device_prefix(ROOT, B, GATE)
    topic_a = topics.event(ROOT, A, GATE, "access")

    def publish_a() -> None:
        for payload in sent_a.values():
            assert not gate_a.publish(topic_a, payload).is_failure  # type: ignore[attr-defined]

    traffic = threading.Thread(target=publish_a)
    traffic.start()
    centre.wait_for(lambda m: len(centre.ids(prefix_a)) >= 100, "100 of site A's events")
    wan.sites[A].link.cut()  # during traffic
    centre.wait_for(lambda m: states(centre, A)[-1:] == [b"0"], "site A's bridge state 0")
    for payload in sent_b.values():  # site B keeps flowing while A is cut
        gate_b.publish(topics.event(ROOT, B, GATE, "access"), payload)
    centre.wait_for(lambda m: len(centre.ids(prefix_b)) == 200, "site B's events during the cut")
    traffic.join(60)
    assert not traffic.is_alive()
    held_back = 600 - len(centre.ids(prefix_a))
    assert held_back > 0, "the cut held nothing back: the link was not cut"
    restored = time.perf_counter()
    wan.sites[A].link.restore()
    centre.wait_for(lambda m: len(centre.ids(prefix_a)) == 600, "all of site A's events", 60)
    catch_up_s = time.perf_counter() - restored
    print(f"\nsite A caught up {held_back} events in {catch_up_s:.2f} s after the WAN came back")
    centre.wait_for(lambda m: states(centre, A)[-1:] == [b"1"], "site A's bridge state 1 again")
    for sent, prefix in ((sent_a, prefix_a), (sent_b, prefix_b)):
        received = centre.ids(prefix)
        assert set(received) == set(sent)
        assert all(set(payloads) == {sent[id_]} for id_, payloads in received.items())
    history = states(centre, A)
    assert b"0" in history
    assert history.index(b"1") < history.index(b"0") < len(history) - 1
    assert states(centre, B) == [b"1"]  # B's link never dropped


def test_the_queue_survives_a_restart_of_the_site_broker_while_cut(wan: Wan) -> None:
    prefix = topics.device_prefix(ROOT, A, "gate-2")
    centre = collector(wan, topics.events_filter(ROOT, A), name="collector")
    wan.sites[A].link.cut()
    try:
        sent = dict(events("gate-2", 1, 50))
        device = gate(wan, A, "gate-2")
        for payload in sent.values():
            device.publish(topics.event(ROOT, A, "gate-2", "access"), payload)
        device.close()
        site = wan.sites[A].broker
        site.stop()  # SIGTERM: mosquitto saves its store, the bridge's queue with it
        site.start()
    finally:
        wan.sites[A].link.restore()
    centre.wait_for(lambda m: len(centre.ids(prefix)) == 50, "the queued events after restart")
    assert {i: {p} for i, p in sent.items()} == {i: set(p) for i, p in centre.ids(prefix).items()}


def test_a_site_cannot_speak_for_another_or_read_its_commands(wan: Wan) -> None:
    central = wan.central.port
    watch = tap(wan, central, "tap-hostile")
    wan.sites[A].link.cut()  # the real bridge of A steps aside: its account is ours now
    try:
        password = (wan.sites[A].directory / "bridge" / "password").read_text().strip()
        filters = (
            topics.command_branch_filter(ROOT, B),
            topics.credentials_branch_filter(ROOT, B),
            topics.command_branch_filter(ROOT, A),  # its own: the marker comes this way
        )
        hostile = wan.client(central, account(A), password, subscribe=filters)
        forged = next(events(GATE, 9001, 9001))[1]
        refused = hostile.publish(topics.event(ROOT, B, GATE, "access"), forged)
        own = hostile.publish(topics.event(ROOT, A, "gate-9", "access"), forged)
        assert refused.value == NOT_AUTHORIZED  # type: ignore[attr-defined]
        assert not own.is_failure  # type: ignore[attr-defined]
        for branch in ("rooms/status", "gate-1/crossings/lobby", "bridge/status"):
            code = hostile.publish(f"{topics.site_prefix(ROOT, A)}/{branch}", b"x")
            assert code.value == NOT_AUTHORIZED, branch  # type: ignore[attr-defined]
        office = wan.client(central, "office", wan.central_password("office"))
        console = wan.client(central, "collector", wan.central_password("collector"),
                             client_id="collector-commands")  # fmt: skip
        console.publish(topics.command(ROOT, B, GATE, "unlock"), b"for site B only")
        office.publish(topics.credentials(ROOT, B, GATE), b"site B's snapshot", retain=True)
        own_command = topics.command(ROOT, A, GATE, "unlock")
        console.publish(own_command, b"marker")
        hostile.wait_for(lambda m: any(x.topic == own_command for x in m), "its own command")
        assert hostile.on(topics.site_prefix(ROOT, B)) == []
        watch.wait_for(lambda m: any(x.topic.endswith("gate-9/events/access") for x in m), "own")
        assert watch.on(topics.device_prefix(ROOT, B, GATE) + "/events") == []
        hostile.close()
    finally:
        wan.sites[A].link.restore()


def test_commands_and_credentials_reach_the_right_site_only(wan: Wan) -> None:
    at_a = tap(wan, wan.sites[A].broker.port, "tap-a")
    at_b = tap(wan, wan.sites[B].broker.port, "tap-b")
    device_a = gate(wan, A, GATE, topics.commands_filter(ROOT, A, GATE))
    console = wan.client(wan.central.port, "collector", wan.central_password("collector"),
                         client_id="collector-down")  # fmt: skip
    office = wan.client(wan.central.port, "office", wan.central_password("office"))
    wait_down_link(console, at_a, A)
    wait_down_link(console, at_b, B)
    command = topics.command(ROOT, A, GATE, "unlock")
    # A command's MQTT 5 properties cross with it: the device answers where they say.
    asked = Properties(PacketTypes.PUBLISH)
    asked.ResponseTopic = topics.reply(ROOT, A, GATE, "collector")
    asked.CorrelationData = b"\x01\x02"
    assert not console.publish(command, b"unlock A", properties=asked).is_failure  # type: ignore[attr-defined]
    snapshot, delta = (
        topics.credentials(ROOT, A, GATE),
        f"{topics.credentials(ROOT, A, GATE)}/delta",
    )
    office.publish(snapshot, b"A's snapshot", retain=True)
    office.publish(delta, b"A's delta", retain=True)
    marker = topics.command(ROOT, B, "gate-2", "ping")
    console.publish(marker, b"marker for B")
    device_a.wait_for(lambda m: any(x.topic == command for x in m), "the command at site A")
    received = device_a.on(command)[0].properties
    assert received is not None
    assert received.ResponseTopic == asked.ResponseTopic
    assert received.CorrelationData == asked.CorrelationData
    at_a.wait_for(lambda m: {x.topic for x in m} >= {command, snapshot, delta}, "A's down topics")
    at_b.wait_for(lambda m: any(x.topic == marker for x in m), "the marker at site B")
    assert at_b.on(topics.site_prefix(ROOT, A)) == []
    # Retained at site A as at the centre: a device that starts later still gets them.
    at_a.close()  # one `tap` client per broker at a time (the account is the client id)
    later = tap(wan, wan.sites[A].broker.port, "tap-a-later")
    later.wait_for(lambda m: {x.topic for x in m if x.retain} >= {snapshot, delta}, "retained")


def test_credentials_sent_during_a_cut_arrive_after_it_and_commands_do_not(wan: Wan) -> None:
    """mosquitto 2.0.11 keeps no central session for an MQTT 5 bridge (provisioning.bridge):
    what is retained comes down again when the link returns; a command does not."""
    console = wan.client(wan.central.port, "collector", wan.central_password("collector"),
                         client_id="collector-cut")  # fmt: skip
    office = wan.client(wan.central.port, "office", wan.central_password("office"))
    at_a = tap(wan, wan.sites[A].broker.port, "tap-a-cut")
    wait_down_link(console, at_a, A)
    snapshot, delta = (
        topics.credentials(ROOT, A, "gate-2"),
        f"{topics.credentials(ROOT, A, 'gate-2')}/delta",
    )
    lost = topics.command(ROOT, A, "gate-2", "unlock")
    wan.sites[A].link.cut()
    try:
        office.publish(snapshot, b"snapshot sent during the cut", retain=True)
        office.publish(delta, b"delta sent during the cut", retain=True)
        console.publish(lost, b"command sent during the cut")
    finally:
        wan.sites[A].link.restore()
    at_a.wait_for(lambda m: {x.topic for x in m} >= {snapshot, delta}, "the credentials", 30)
    assert [m.payload for m in at_a.on(delta)][-1] == b"delta sent during the cut"
    wait_down_link(console, at_a, A)  # a later command gets through: the earlier one never will
    assert at_a.on(lost) == []


def test_only_the_contracts_topics_cross(wan: Wan) -> None:
    centre = tap(wan, wan.central.port, "tap-centre")
    site = wan.sites[A]
    writer = wan.client(site.broker.port, "tap", wan.tap_password, client_id="tap-writer")
    stay = [
        topics.crossings(ROOT, A, GATE, "lobby"),
        topics.positions(ROOT, A, GATE, "lobby"),
        topics.rooms_status(ROOT, A),
        topics.rooms_view(ROOT, A),
        f"{topics.rooms_prefix(ROOT, A)}/ha/booth-1/state",
        "homeassistant/binary_sensor/booth-1/config",
        topics.event(ROOT, B, GATE, "access"),  # another site's topic, published at A
    ]
    cross = [
        topics.status(ROOT, A, GATE),
        topics.occupancy(ROOT, A, GATE, "lobby"),
        topics.reply(ROOT, A, GATE, "collector"),
        topics.event(ROOT, A, GATE, "alarm"),
    ]
    retained = {topics.status(ROOT, A, GATE), topics.occupancy(ROOT, A, GATE, "lobby")}
    for topic in stay + cross:
        writer.publish(topic, b'{"id": "x"}', retain=topic in retained)
    centre.wait_for(lambda m: {x.topic for x in m} >= set(cross), "the contract's up topics")
    arrived = {m.topic for m in centre.messages}
    assert arrived.isdisjoint(stay)
    stored = topics.bridge_stored(ROOT, A)
    centre.wait_for(lambda m: any(x.topic == stored for x in m), "the bridged $SYS store count")
    assert int(centre.on(stored)[-1].payload) > 0
    centre.close()  # one `tap` client per broker at a time (the account is the client id)
    later = tap(wan, wan.central.port, "tap-centre-later")
    later.wait_for(lambda m: {x.topic for x in m if x.retain} >= retained, "retained at the centre")


def test_the_generated_files_hold_no_password_in_sight(wan: Wan, tmp_path: Path) -> None:
    bridge_conf = wan.sites[A].broker.workdir.parent / f"broker-{A}" / "bridge.conf"
    assert oct(bridge_conf.stat().st_mode & 0o777) == "0o640"
    password = wan.sites[A].directory / "bridge" / "password"
    assert oct(password.stat().st_mode & 0o777) == "0o600"
    central_passwd = wan.central.workdir.parent / "broker-central" / "passwd"
    assert password.read_text().strip() not in central_passwd.read_text()
