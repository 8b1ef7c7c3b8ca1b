"""Agent state in the store, kept in step with the records of each event."""

from __future__ import annotations

import json
from collections.abc import Iterable

from sqlite_utils import Database

from edge.core.antipassback import NOWHERE, Position, Stamp
from edge.core.clock import utc_text
from edge.core.controller import DeviceState
from edge.core.outputs import EventKind, EventRecord
from edge.store import outbox

# Alarms with two edges whose "raised" must be answered by a "cleared" even across a restart.
LASTING_ALARMS = frozenset(
    {
        "door_forced",
        "door_held_open",
        "reader_offline",
        "fire",
        "credentials_stale",
        "anti_passback_degraded",
        "presence_sensor_fault",
    }
)


def _alarm_key(record: EventRecord) -> str:
    data = record.data
    door, reader, zone, sensor = (data.get(k) or "" for k in ("door", "reader", "zone", "sensor"))
    return (
        f"{record.type}|{door}|{reader}"
        + (f"|{zone}" if zone else "")
        + (f"|sensor:{sensor}" if sensor else "")
    )


def _save_alarms(db: Database, records: Iterable[EventRecord]) -> None:
    active = {a["key"]: a for a in active_alarms(db)}
    for record in records:
        if record.kind is not EventKind.ALARM or record.type not in LASTING_ALARMS:
            continue
        key = _alarm_key(record)
        if record.data.get("state") == "cleared":
            active.pop(key, None)
        else:
            active[key] = {
                "key": key,
                "type": record.type,
                "door": record.data.get("door"),
                "reader": record.data.get("reader"),
                "zone": record.data.get("zone"),
                **({"sensor": record.data["sensor"]} if record.data.get("sensor") else {}),
            }
    db.execute(
        "INSERT INTO device_state (key, value) VALUES ('alarms', ?) "
        "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        [json.dumps(sorted(active.values(), key=lambda a: str(a["key"])))],
    )


def active_alarms(db: Database) -> list[dict[str, str | None]]:
    """Return the lasting alarms raised and not yet cleared, as the store last saw them."""
    row = db.execute("SELECT value FROM device_state WHERE key = 'alarms'").fetchone()
    return list(json.loads(row[0])) if row else []


def apply(
    db: Database, records: Iterable[EventRecord], state: DeviceState, saved: DeviceState | None
) -> None:
    """Persist what `records` changed, and the modes if they differ from `saved`.

    Call inside the events' transaction, once `outbox.append` has given them their seqs.
    """
    alarms_changed = False
    device: str | None = None
    records = list(records)
    first_seq = outbox.last_seq(db) - len(records) + 1
    for seq, record in enumerate(records, first_seq):
        data = record.data
        if record.kind is EventKind.ALARM and record.type in LASTING_ALARMS:
            alarms_changed = True
        if record.kind is EventKind.ACCESS and record.type == "crossing":
            device = _own_device(db) if device is None else device
            stamp = (utc_text(record.ts), device, 0)
            card, to_zone = data["card_ref"], data["to_zone"]
            merge_position(db, card, to_zone, stamp, own=True, origin=(data["from_zone"], seq))
        elif record.type == "anti_passback_card_forgiven" and data.get("changed"):
            device = _own_device(db) if device is None else device
            stamp = (utc_text(record.ts), device, 0)
            was_in = data.get("was_in")
            merge_position(db, data["card_ref"], NOWHERE, stamp, own=True, origin=(was_in, seq))
        elif record.kind is EventKind.SYSTEM and record.type == "anti_passback_forgiven":
            # Forgotten in the zone: nothing in it any more, and nothing that left it belongs
            # to its digest (only what crossed since its forgiveness does).
            # Only what crossed before the forgiveness instant: a crossing after it (a device
            # running late) stays, as it does in the tracker.
            before = data.get("forgiven_at") or utc_text(record.ts)
            db.execute(
                "DELETE FROM positions WHERE zone = ? AND (ts IS NULL OR ts < ?)",
                [data["zone"], before],
            )
            db.execute(
                "UPDATE positions SET from_zone = NULL "
                "WHERE from_zone = ? AND (ts IS NULL OR ts < ?)",
                [data["zone"], before],
            )
        elif record.kind is EventKind.OCCUPANCY and data.get("count") is not None:
            db.execute(
                "INSERT INTO occupancy (zone, count) VALUES (?, ?) "
                "ON CONFLICT(zone) DO UPDATE SET count = excluded.count",
                [data["zone"], data["count"]],
            )
    if alarms_changed:
        _save_alarms(db, records)
    if state == saved:
        return
    modes = {
        "lockdown": state.lockdown,
        "fire_latched": state.fire_latched,
        "held_by_command": list(state.held_by_command),
        "forgiven_on": [list(pair) for pair in state.forgiven_on],
        "occupied_sensors": list(state.occupied_sensors),
        "latched_rooms": list(state.latched_rooms),
    }
    db.execute(
        "INSERT INTO device_state (key, value) VALUES ('modes', ?) "
        "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        [json.dumps(modes, sort_keys=True)],
    )


def _own_device(db: Database) -> str:
    # The records were just appended to the outbox in this transaction, under this device.
    row = db.execute(
        "SELECT json_extract(payload, '$.device') FROM outbox ORDER BY seq DESC LIMIT 1"
    ).fetchone()
    return str(row[0]) if row and row[0] is not None else ""


def merge_position(
    db: Database,
    card_ref: str,
    zone: str,
    stamp: Stamp,
    own: bool,
    origin: tuple[str | None, int | None] = (None, None),
) -> bool:
    """Set the card's position if `stamp` is later than the stored one; return whether it was.

    `own`: this device's crossing, which wins an equal stamp (its later record). A peer's
    with an equal stamp (only a forged claim has one) wins by the greater zone id, as in the
    tracker. `origin`: the zone the crossing left and the seq of this device's own event
    (None: not known), kept for the positions digests. Call inside a transaction.
    """
    cursor = db.execute(
        "INSERT INTO positions (card_ref, zone, ts, device, seq, from_zone, event_seq) "
        "VALUES (?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT(card_ref) DO UPDATE SET zone = excluded.zone, ts = excluded.ts, "
        "device = excluded.device, seq = excluded.seq, from_zone = excluded.from_zone, "
        "event_seq = excluded.event_seq "
        "WHERE positions.ts IS NULL "
        "OR (excluded.ts, excluded.device, excluded.seq, excluded.zone) "
        "> (positions.ts, positions.device, positions.seq, positions.zone) "
        "OR (? AND (excluded.ts, excluded.device, excluded.seq) "
        "= (positions.ts, positions.device, positions.seq))",
        [card_ref, zone, *stamp, *origin, own],
    )
    return bool(cursor.rowcount)


# (card_ref, from_zone, to_zone, ts, seq): one position as a positions digest lists it, with
# the seq of the event that set it (its stamp's seq, 0, is this device's own record of it).
OwnPosition = tuple[str, str, str, str, int]


def own_positions(db: Database, device: str, zone: str, limit: int) -> list[OwnPosition]:
    """Return the newest `limit` positions `device` set itself (crossing or forgiveness) that
    enter or leave `zone`, newest first; never those learned from peers.

    A learned one may have been set by this device's own crossing elsewhere (its retained
    digest, read back after its store was lost): the stamp's device says whose it is.
    """
    rows = db.execute(
        "SELECT card_ref, coalesce(from_zone, ''), zone, ts, coalesce(event_seq, seq, 0) "
        "FROM positions "
        "WHERE device = ? AND ts IS NOT NULL AND (zone = ? OR from_zone = ?) "
        "ORDER BY ts DESC, card_ref LIMIT ?",
        [device, zone, zone, limit],
    ).fetchall()
    return [(str(c), str(f), str(z), str(t), int(s)) for c, f, z, t, s in rows]


def load(db: Database) -> tuple[DeviceState, list[Position], list[tuple[str, int]]]:
    """Return the saved modes, anti-passback positions and head counts."""
    row = db.execute("SELECT value FROM device_state WHERE key = 'modes'").fetchone()
    modes = json.loads(row[0]) if row else {}
    state = DeviceState(
        lockdown=bool(modes.get("lockdown", False)),
        fire_latched=bool(modes.get("fire_latched", False)),
        held_by_command=tuple(modes.get("held_by_command", ())),
        forgiven_on=tuple((str(z), str(d)) for z, d in modes.get("forgiven_on", ())),
        occupied_sensors=tuple(str(s) for s in modes.get("occupied_sensors", ())),
        latched_rooms=tuple(str(z) for z in modes.get("latched_rooms", ())),
    )
    positions: list[Position] = [
        (card, zone) if ts is None else (card, zone, (ts, device or "", int(seq or 0)))
        for card, zone, ts, device, seq in db.execute(
            "SELECT card_ref, zone, ts, device, seq FROM positions"
        )
    ]
    counts = [(r[0], int(r[1])) for r in db.execute("SELECT zone, count FROM occupancy")]
    return state, positions, counts
