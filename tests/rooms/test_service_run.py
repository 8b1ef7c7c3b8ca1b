"""`edge-rooms run` as installed: a real process, a real mosquitto, the floor view served."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from edge.link import topics
from simulator.broker import free_port
from tests.broker import Subscriber, start_broker
from tests.rooms.service_site import MEETING, ROOT, SITE, occupancy, service_config, status

pytestmark = pytest.mark.services
EDGE_ROOMS = Path(sys.executable).with_name("edge-rooms")


def toml(tmp_path: Path, port: int, web_port: int) -> Path:
    config = service_config(tmp_path)
    room = config.rooms[0]
    path = tmp_path / "rooms.toml"
    path.write_text(
        f'site = "{SITE}"\nname = "{config.name}"\nstate_path = "{config.state_path}"\n'
        f"poll_s = 5\n"
        f'[mqtt]\nport = {port}\npassword_file = "{config.mqtt.password_file}"\n'
        f"[web]\nport = {web_port}\n"
        # A calendar nobody answers at: logged, and the service runs on.
        f'[[calendars]]\nkind = "caldav"\nid = "cal"\nurl = "http://127.0.0.1:{free_port()}/"\n'
        f'username = "svc"\npassword_file = "{config.mqtt.password_file}"\n'
        f'[[rooms]]\nzone = "{room.zone}"\nname = "{room.name}"\nkind = "{room.kind}"\n'
        f'floor = 2\ndevice = "{room.device}"\ncalendar = "cal"\nresource = "/rooms/m/"\n'
    )
    return path


def send(port: int, *messages: tuple[str, bytes]) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="node", protocol=mqtt.MQTTv5)
    client.connect("127.0.0.1", port)
    client.loop_start()
    for topic, payload in messages:
        client.publish(topic, payload, qos=1, retain=True).wait_for_publish(10)
    client.disconnect()
    client.loop_stop()


def test_run_publishes_the_view_serves_it_and_says_offline_on_sigterm(tmp_path: Path) -> None:
    broker = start_broker(tmp_path / "broker")
    web_port = free_port()
    path = toml(tmp_path, broker.port, web_port)
    watcher = Subscriber(broker.port, f"{ROOT}/{SITE}/rooms/#", client_id="watcher")
    alive, vacant = status(), occupancy(MEETING, False)
    send(broker.port, (alive.topic, alive.payload), (vacant.topic, vacant.payload))
    process = subprocess.Popen(
        [str(EDGE_ROOMS), "run", "--config", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output: list[str] = []
    reader = threading.Thread(target=lambda: output.extend(process.stdout or []), daemon=True)
    reader.start()
    try:
        view_topic = topics.rooms_view(ROOT, SITE)

        def free(messages: list[mqtt.MQTTMessage]) -> bool:
            views = [json.loads(m.payload) for m in messages if m.topic == view_topic]
            return any(v["rooms"][0]["status"] == "free" for v in views)

        watcher.wait_for(free, what="a view with the meeting room free")
        status_topic = topics.rooms_status(ROOT, SITE)
        assert any(m.topic == status_topic and m.payload == b"online" for m in watcher.messages)
        done = threading.Event()
        page = None
        while page is None and not done.wait(0.1):
            try:
                page = httpx.get(f"http://127.0.0.1:{web_port}/api/view", timeout=2)
            except httpx.TransportError:
                continue  # the server thread is still starting
        assert page is not None
        assert page.status_code == 200
        assert page.json()["rooms"][0]["zone"] == MEETING
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
        watcher.wait_for(
            lambda ms: [m.payload for m in ms if m.topic == status_topic][-1] == b"offline",
            what="offline",
        )
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        watcher.close()
        broker.stop()
    reader.join(5)
    if process.stdout is not None:
        process.stdout.close()
    log = "".join(output)
    assert "rooms service kamakura-city-hall: 1 rooms" in log  # the effective config, once
    assert log.count("calendar cal cannot be read") == 1
    assert "secret" not in log
