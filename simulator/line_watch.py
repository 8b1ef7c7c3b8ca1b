"""What an agent knows of the security line, read and waited for through its control socket.

`positions` reads the zone the agent holds each card in, whether it is cut off and whether
its uplink is connected. `wait_positions` waits (real time, on a condition) until the agent
holds every wanted position, with its uplink connected and not cut off: the condition is
checked on the agent's loop thread after each event it handles, so what is read is never
half-merged. `wait_link` waits until the uplink is up (or down) as the loop has seen it.

A stepped clock stands still while these wait: the link's ups and downs and the peers'
crossings still reach the loop, which is all the waits watch.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from edge.core.events import Event
from edge.core.outputs import Output
from edge.link.messages import InboundMessage, SnapshotResult
from edge.runtime import Agent

WAIT_MAX_S = 60.0  # the longest a request may wait


def _link(agent: Agent) -> threading.Event | None:
    """Return the event set while the agent's uplink is connected (None: it has none)."""
    return agent.link_up


def _connected(agent: Agent) -> bool:
    link = _link(agent)
    return link is not None and link.is_set()


def _refs(body: dict[str, Any], key: str) -> dict[str, str | None] | str:
    """Return the wanted positions in `body[key]`, or the error to reply."""
    value = body.get(key)
    if key == "refs":
        if isinstance(value, list) and all(isinstance(r, str) for r in value):
            return dict.fromkeys(value)
        return "positions needs refs: a list of card references"
    if isinstance(value, dict) and all(
        isinstance(r, str) and (z is None or isinstance(z, str)) for r, z in value.items()
    ):
        return value
    return "wait_positions needs want: an object of card reference -> zone (or null)"


class LineWatch:
    """Answers the line's requests about one agent; attach it once the agent exists."""

    def __init__(self) -> None:
        self._turned = threading.Condition()
        self._turns = 0  # events the loop has handled since attached
        self._want: dict[str, str | None] | None = None
        self._wrong: int | None = None  # positions still wrong, as last checked on the loop
        self._agreed = False

    def __repr__(self) -> str:
        return f"<LineWatch turns={self._turns} waiting={self._want is not None}>"

    def attach(self, agent: Agent) -> None:
        """Watch `agent`'s loop from now on."""
        agent.when_processed(lambda event, outputs: self._turn(agent, event, outputs))

    def _turn(
        self, agent: Agent, event: Event | InboundMessage | SnapshotResult, outputs: list[Output]
    ) -> None:
        """After each event the loop handles (on its thread): check what a waiter wants."""
        with self._turned:
            self._turns += 1
            if self._want is not None:
                self._check(agent, self._want)
            self._turned.notify_all()

    def _check(self, agent: Agent, want: dict[str, str | None]) -> None:
        passback = agent.controller.passback
        self._wrong = sum(passback.position(ref) != zone for ref, zone in want.items())
        cut_off = agent.controller.peers.cut_off(agent.clock.now())
        self._agreed = not self._wrong and _connected(agent) and not cut_off

    def positions(self, agent: Agent, body: dict[str, Any]) -> dict[str, Any]:
        """Return the zone held for each of `refs`, whether cut off and whether connected.

        The caller has synced the loop first: what it has taken in so far is merged.
        """
        refs = _refs(body, "refs")
        if isinstance(refs, str):
            return {"ok": False, "error": refs}
        passback = agent.controller.passback
        return {
            "ok": True,
            "positions": {ref: passback.position(ref) for ref in refs},
            "cut_off": agent.controller.peers.cut_off(agent.clock.now()),
            "connected": _connected(agent),
        }

    def wait_positions(
        self, agent: Agent, body: dict[str, Any], sync: Callable[[], object]
    ) -> dict[str, Any]:
        """Wait until the agent holds `want`, connected and not cut off, or `timeout` passes.

        `sync` makes the loop handle one more event (so the first check runs at once).
        The reply's `agreed` says which; `wrong` counts the positions still wrong.
        """
        want = _refs(body, "want")
        if isinstance(want, str):
            return {"ok": False, "error": want}
        timeout = min(float(body.get("timeout", 10)), WAIT_MAX_S)
        with self._turned:
            self._want, self._wrong, self._agreed = want, None, False
        try:
            sync()
            with self._turned:
                self._turned.wait_for(lambda: self._agreed, timeout)
                return {"ok": True, "agreed": self._agreed, "wrong": self._wrong}
        finally:
            with self._turned:
                self._want = None

    def wait_link(self, agent: Agent, body: dict[str, Any]) -> dict[str, Any]:
        """Wait until the uplink is `up` (true) or down (false) as the loop has seen it."""
        if _link(agent) is None:
            return {"ok": False, "error": "this agent has no uplink to wait for"}
        up = bool(body.get("up"))
        timeout = min(float(body.get("timeout", 10)), WAIT_MAX_S)
        with self._turned:
            # The loop reads the link once a turn, and takes a turn at least every tick.
            seen = self._turned.wait_for(lambda: _connected(agent) == up, timeout)
        return {"ok": True, "seen": seen}
