"""Agent state in the store, kept in step with the records of each event."""

from __future__ import annotations

import json
from collections.abc import Iterable

from sqlite_utils import Database

from edge.core.controller import DeviceState
from edge.core.outputs import EventKind, EventRecord


def apply(
    db: Database, records: Iterable[EventRecord], state: DeviceState, saved: DeviceState | None
) -> None:
    """Persist what `records` changed, and the modes if they differ from `saved`.

    Call inside the events' transaction.
    """
    for record in records:
        data = record.data
        if record.kind is EventKind.ACCESS and record.type == "crossing":
            db.execute(
                "INSERT INTO positions (card_ref, zone) VALUES (?, ?) "
                "ON CONFLICT(card_ref) DO UPDATE SET zone = excluded.zone",
                [data["card_ref"], data["to_zone"]],
            )
        elif record.kind is EventKind.SYSTEM and record.type == "anti_passback_forgiven":
            db.execute("DELETE FROM positions WHERE zone = ?", [data["zone"]])
        elif record.kind is EventKind.OCCUPANCY and data.get("count") is not None:
            db.execute(
                "INSERT INTO occupancy (zone, count) VALUES (?, ?) "
                "ON CONFLICT(zone) DO UPDATE SET count = excluded.count",
                [data["zone"], data["count"]],
            )
    if state == saved:
        return
    modes = {
        "lockdown": state.lockdown,
        "fire_latched": state.fire_latched,
        "held_by_command": list(state.held_by_command),
        "forgiven_on": [list(pair) for pair in state.forgiven_on],
    }
    db.execute(
        "INSERT INTO device_state (key, value) VALUES ('modes', ?) "
        "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        [json.dumps(modes, sort_keys=True)],
    )


def load(db: Database) -> tuple[DeviceState, list[tuple[str, str]], list[tuple[str, int]]]:
    """Return the saved modes, anti-passback positions and head counts."""
    row = db.execute("SELECT value FROM device_state WHERE key = 'modes'").fetchone()
    modes = json.loads(row[0]) if row else {}
    state = DeviceState(
        lockdown=bool(modes.get("lockdown", False)),
        fire_latched=bool(modes.get("fire_latched", False)),
        held_by_command=tuple(modes.get("held_by_command", ())),
        forgiven_on=tuple((str(z), str(d)) for z, d in modes.get("forgiven_on", ())),
    )
    positions = [(r[0], r[1]) for r in db.execute("SELECT card_ref, zone FROM positions")]
    counts = [(r[0], int(r[1])) for r in db.execute("SELECT zone, count FROM occupancy")]
    return state, positions, counts
