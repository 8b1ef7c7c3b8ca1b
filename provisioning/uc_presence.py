"""Each person's opt-in to unified-communications presence, kept in the registry (audited).

Off by default. Opting in names the person's account at the UC server (`uc_id`: a Matrix user
id `@name:server`, an Entra object id or a user principal name) and, when their calendar
address differs from it, the address their bookings carry (`uc_mail`). Opting out forgets both;
the rooms service clears the person's status at the UC server when it next reads the registry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from edge.store.connection import write_transaction
from provisioning.registry import Registry, RegistryError

MAX_ID = 255
# Matrix user ids (spec, "User Identifiers"): @localpart:server_name, server with optional port.
_MATRIX = re.compile(r"@[a-z0-9._=\-/+]+:[A-Za-z0-9.\-]+(:\d{1,5})?")
# Entra object ids are GUIDs.
_GUID = re.compile(r"[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
# A user principal name or a mail address: one @, a dotted domain, no spaces or controls.
_ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~\-]+@[A-Za-z0-9\-]+(\.[A-Za-z0-9\-]+)+")


@dataclass(frozen=True, slots=True)
class UcOptIn:
    """One person's UC presence setting."""

    staff_no: str
    on: bool
    uc_id: str | None
    mail: str | None


def check_uc_id(uc_id: str) -> str:
    """Return the UC id if it is a Matrix user id, an Entra object id or a UPN; raise otherwise."""
    uc_id = uc_id.strip()
    if len(uc_id) <= MAX_ID and (
        _MATRIX.fullmatch(uc_id) or _GUID.fullmatch(uc_id) or _ADDRESS.fullmatch(uc_id)
    ):
        return uc_id
    raise RegistryError(
        f"--uc-id {uc_id[:80]!r} is not a UC id: give a Matrix user id (@name:server, lower "
        "case), an Entra object id (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx) or a user principal "
        "name (name@city.example)"
    )


def check_mail(mail: str) -> str:
    """Return the calendar address if it looks like one; raise with the fix otherwise."""
    mail = mail.strip().removeprefix("mailto:")
    if len(mail) <= MAX_ID and _ADDRESS.fullmatch(mail):
        return mail
    raise RegistryError(
        f"--mail {mail[:80]!r} is not a mail address: give the address the person's bookings "
        "carry as organiser or attendee (name@city.example)"
    )


def uc_opt_in(registry: Registry, staff_no: str) -> UcOptIn:
    """Return a person's setting; raise naming the fix for an unknown staff number."""
    row = registry.db.execute(
        "SELECT uc_presence, uc_id, uc_mail FROM people WHERE staff_no = ?", [staff_no]
    ).fetchone()
    if row is None:
        raise RegistryError(f"no staff {staff_no!r}; look them up with edge-provision people list")
    return UcOptIn(staff_no, bool(row[0]), row[1], row[2])


def set_uc_presence(
    registry: Registry,
    staff_no: str,
    on: bool,
    uc_id: str | None = None,
    mail: str | None = None,
    actor: str | None = None,
) -> UcOptIn:
    """Opt a person in (with their UC id) or out (forgetting it); audited, one transaction."""
    if on:
        if uc_id is None:
            raise RegistryError("opting in needs --uc-id: the person's account at the UC server")
        uc_id = check_uc_id(uc_id)
        mail = None if mail is None else check_mail(mail)
    elif uc_id is not None or mail is not None:
        raise RegistryError("--off forgets the UC id and mail: give neither with it")
    with write_transaction(registry.db) as db:
        if not db.execute("SELECT 1 FROM people WHERE staff_no = ?", [staff_no]).fetchone():
            raise RegistryError(
                f"no staff {staff_no!r}; look them up with edge-provision people list"
            )
        db.execute(
            "UPDATE people SET uc_presence = ?, uc_id = ?, uc_mail = ? WHERE staff_no = ?",
            [int(on), uc_id if on else None, mail if on else None, staff_no],
        )
        # The UC id and mail stay out of the audit detail: the row itself holds them.
        detail = {"staff_no": staff_no, "uc_presence": on, "mail": mail is not None}
        registry.record_by(db, actor, "uc presence " + ("on" if on else "off"), detail)
    return UcOptIn(staff_no, on, uc_id if on else None, mail if on else None)
