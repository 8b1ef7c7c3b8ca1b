"""Sensor -> floor view: from a booth's presence sensor to the rooms service's view.

A private mosquitto on loopback (the site's accounts and ACL), one real sensor-node agent
(`python -m simulator.agent`: the agent's own code on gpiozero's MockFactory) watching
`--booths` focus booths with PIR sensors, and `edge-rooms run` as its own process, with
those booths and no calendar. Each round drives one booth's sensor on or off through the
agent's control socket (booths in turn, so every round changes a booth) and takes, from the
control request:

* occupancy: the agent's retained `occupancy/{zone}` reaches a subscriber (the baseline:
  the part before the service);
* view (MQTT): the service's retained `{root}/{site}/rooms/view` shows the booth's new state;
* view (HTTP): `GET /api/view` on the service's web port shows it, polled back to back
  every 2 ms on one keep-alive connection (so its resolution is 2 ms plus one request).

The sensors' hold is 0 s: a booth reads vacant the moment its PIR drops (the building's
60 s hold is a deliberate wait, not latency). Prints p50/p95/p99 and the service's share;
never asserted.

    python bench/rooms_view.py [--changes 200] [--booths 4]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import paho.mqtt.client as mqtt

from bench.rooms_process import Accounts, RoomsProcess, client, payload, room
from edge.link import topics
from simulator.broker import free_port
from simulator.process import AgentProcess

ROOT, SITE, NODE = "edge", "bench-site", "sensors-bench"
WAIT_S = 10.0
POLL_S = 0.002


def agent_toml(tmp: Path, port: int, password: Path, booths: list[str]) -> Path:
    lines = [
        f'[site]\nid = "{SITE}"\ntimezone = "Asia/Tokyo"\n',
        f'[device]\nid = "{NODE}"\nrole = "sensor-node"\n',
        f'[mqtt]\nhost = "127.0.0.1"\nport = {port}\nusername = "{NODE}"',
        f'password_file = "{password}"\nkeepalive_s = 5\n',
        f'[store]\npath = "{tmp / "agent.db"}"\n',
    ]
    for n, booth in enumerate(booths):
        lines += [f'[[zones]]\nid = "{booth}"\nname = "Booth {n}"\nkind = "booth"\ncapacity = 1\n']
        lines += [
            f'[[presence]]\nid = "{booth}-pir"\npin = {17 + n}\nzone = "{booth}"\nhold_s = 0\n'
        ]
    path = tmp / "agent.toml"
    path.write_text("\n".join(lines))
    return path


def rooms_toml(tmp: Path, port: int, web_port: int, password: Path, booths: list[str]) -> Path:
    lines = [
        f'site = "{SITE}"\nname = "Bench"\nstate_path = "{tmp / "rooms.db"}"\n',
        f'[mqtt]\nport = {port}\nusername = "rooms"\npassword_file = "{password}"\n',
        f"[web]\nport = {web_port}\n",
    ]
    for n, booth in enumerate(booths):
        lines += [
            f'[[rooms]]\nzone = "{booth}"\nname = "Focus booth {n}"\nkind = "focus-booth"',
            f'floor = 2\ndevice = "{NODE}"\n',
        ]
    path = tmp / "rooms.toml"
    path.write_text("\n".join(lines))
    return path


class Watcher:
    """The bench's own subscriber (a console account): arrival times of what it waits for."""

    def __init__(self, port: int, password: str) -> None:
        self.occupancy = topics.occupancy_filter(ROOT, SITE, NODE)
        self.view = topics.rooms_view(ROOT, SITE)
        self.cond = threading.Condition()
        self.want: tuple[str, bool] | None = None
        self.seen: dict[str, float] = {}
        self.client = client(port, "bench", password)
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *a: subscribed.set()
        self.client.on_message = self._message
        self.client.subscribe([(self.occupancy, 1), (self.view, 1)])
        if not subscribed.wait(10):
            raise SystemExit("the bench's subscriber was not granted its subscriptions")

    def expect(self, zone: str, occupied: bool) -> None:
        with self.cond:
            self.want, self.seen = (zone, occupied), {}

    def _message(self, c: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        now = time.perf_counter()
        with self.cond:
            if self.want is None:
                return
            zone, occupied = self.want
            body = payload(message)
            if message.topic == self.view:
                if "view" not in self.seen and room(body, zone)["occupied"] is occupied:
                    self.seen["view"] = now
            elif body.get("zone") == zone and body.get("occupied") is occupied:
                self.seen.setdefault("occupancy", now)
            self.cond.notify_all()

    def wait(self, timeout_s: float) -> dict[str, float]:
        with self.cond:
            if not self.cond.wait_for(lambda: len(self.seen) == 2, timeout_s):
                raise SystemExit(f"{self.want}: only {sorted(self.seen)} after {timeout_s} s")
            return dict(self.seen)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def rounds(count: int, booths: list[str], agent: AgentProcess, service: RoomsProcess,
           watcher: Watcher) -> dict[str, list[float]]:  # fmt: skip
    state = dict.fromkeys(booths, False)
    times: dict[str, list[float]] = {"occupancy": [], "view": [], "http": []}
    pause = threading.Event()
    for n in range(count):
        booth = booths[n % len(booths)]
        state[booth] = not state[booth]
        watcher.expect(booth, state[booth])
        started = time.perf_counter()
        reply = agent.request(op="presence", sensor=f"{booth}-pir", on=state[booth])
        if not reply.get("ok"):
            raise SystemExit(f"the agent refused the presence request: {reply}")
        deadline = started + WAIT_S
        while True:
            view = service.view()
            if view is not None and room(view, booth)["occupied"] is state[booth]:
                http = time.perf_counter()
                break
            if time.perf_counter() > deadline:
                raise SystemExit(f"round {n}: /api/view did not show {booth} in {WAIT_S} s")
            pause.wait(POLL_S)
        seen = watcher.wait(WAIT_S)
        times["occupancy"].append((seen["occupancy"] - started) * 1000)
        times["view"].append((seen["view"] - started) * 1000)
        times["http"].append((http - started) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=200)
    parser.add_argument("--booths", type=int, default=4)
    parser.add_argument(
        "--broker-nodelay", action="store_true", help="mosquitto with set_tcp_nodelay true"
    )
    parser.add_argument(
        "--client-nodelay", action="store_true", help="TCP_NODELAY on the service's sockets"
    )
    args = parser.parse_args()
    booths = [f"focus-bench-{n + 1}" for n in range(max(1, min(args.booths, 8)))]
    with tempfile.TemporaryDirectory(prefix="rooms-view-bench-") as scratch:
        tmp = Path(scratch)
        accounts = Accounts(tmp, {NODE: "device", "rooms": "rooms", "bench": "console"})
        broker = accounts.broker(tmp, ROOT, SITE, nodelay=args.broker_nodelay)
        web_port = free_port()
        agent = service = watcher = None
        try:
            (tmp / "agent").mkdir()
            config = agent_toml(tmp / "agent", broker.port, accounts.file(NODE), booths)
            agent = AgentProcess(config, tmp / "agent")
            service = RoomsProcess(
                rooms_toml(tmp, broker.port, web_port, accounts.file("rooms"), booths),
                web_port,
                tmp / "rooms.log",
                client_nodelay=args.client_nodelay,
            )
            watcher = Watcher(broker.port, accounts.passwords["bench"])
            service.wait_view(lambda v: len(v["rooms"]) == len(booths), 30)
            for booth in booths:  # every booth read once: known, vacant
                agent.request(op="presence", sensor=f"{booth}-pir", on=True)
                agent.request(op="presence", sensor=f"{booth}-pir", on=False)
            service.wait_view(lambda v: all(r["occupied"] is False for r in v["rooms"]), 30)
            times = rounds(args.changes, booths, agent, service, watcher)
        finally:
            if watcher is not None:
                watcher.close()
            if service is not None:
                service.stop()
            if agent is not None:
                agent.terminate()
            broker.stop()
    nodelay = [
        *(["mosquitto set_tcp_nodelay"] if args.broker_nodelay else []),
        *(["TCP_NODELAY in the service"] if args.client_nodelay else []),
    ]
    report(times, args.changes, len(booths), ", ".join(nodelay) or "the defaults (TCP_NODELAY)")


def report(times: dict[str, list[float]], changes: int, booths: int, nodelay: str) -> None:
    print(f"rooms service, sensor -> floor view (python {platform.python_version()}, "
          f"{platform.machine()}): {changes} changes over {booths} booths, one agent, "
          f"mosquitto on loopback; {nodelay}")  # fmt: skip
    names = {
        "occupancy": "sensor -> agent's occupancy at a subscriber (baseline)",
        "view": "sensor -> service's rooms/view at a subscriber",
        "http": "sensor -> GET /api/view shows it (2 ms polling)",
    }
    cuts = {}
    for key, label in names.items():
        cut = statistics.quantiles(times[key], n=100)
        cuts[key] = (statistics.median(times[key]), cut[94], cut[98])
        p50, p95, p99 = cuts[key]
        print(f"  {label:<56} p50 {p50:6.1f} ms  p95 {p95:6.1f}  p99 {p99:6.1f}  "
              f"max {max(times[key]):6.1f}")  # fmt: skip
    added = [v - o for v, o in zip(times["view"], times["occupancy"], strict=True)]
    cut = statistics.quantiles(added, n=100)
    print(f"  {'service added (view - occupancy, same change)':<56} "
          f"p50 {statistics.median(added):6.1f} ms  p95 {cut[94]:6.1f}  p99 {cut[98]:6.1f}")  # fmt: skip
    share = statistics.median(added) / cuts["view"][0]
    print(
        f"  service's share of sensor -> view (medians): {share:.0%}; "
        f"view/occupancy ratio of medians {cuts['view'][0] / cuts['occupancy'][0]:.2f}"
    )


if __name__ == "__main__":
    main()
