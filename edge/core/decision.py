"""The access decision: may this card pass this door, now? Every answer carries a reason."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from edge.core.credentials import CredentialStore, DenyReason
from edge.core.policy import AccessPolicy
from edge.core.schedule import HolidayCalendar
from edge.core.spec import AntiPassback, CardSecurity


class Reason(StrEnum):
    """Why a card was granted or denied (checked in this order)."""

    GRANTED = "granted"
    REVOKED = "revoked"  # on the deny list (revoked or lost)
    UNKNOWN_CARD = "unknown_card"  # not enrolled for this device
    # The door, one of the card's groups or the card itself requires a proven read.
    CARD_NOT_AUTHENTICATED = "card_not_authenticated"
    NOT_YET_VALID = "not_yet_valid"
    EXPIRED = "expired"
    LOCKDOWN = "lockdown"  # locked down and the card is in no override group
    NO_RULE = "no_rule"  # none of the card's groups may pass this door
    OUT_OF_SCHEDULE = "out_of_schedule"  # a rule exists, but not at this time
    ANTI_PASSBACK = "anti_passback"  # already on the side it is trying to enter
    # At a door that wants a PIN after the card (decided after the checks above).
    NO_PIN = "no_pin"  # the card has no PIN enrolled
    WRONG_PIN = "wrong_pin"
    PIN_TIMEOUT = "pin_timeout"  # no PIN entered before the reader's pin_timeout_s
    # Too many wrong PINs in a row: the card is refused at PIN doors for pin_lockout_s.
    PIN_LOCKED_OUT = "pin_locked_out"


@dataclass(frozen=True, slots=True)
class Request:
    """One card at one door: what the decision needs to know about the read and the door."""

    card_ref: str
    door: str
    authenticated: bool
    security: CardSecurity
    destination: str  # the zone the card would enter
    position: str | None  # where anti-passback last saw the card (None: unknown)
    anti_passback: AntiPassback  # the strictest setting of the two zones


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer, its reason, and what else the door must know."""

    granted: bool
    reason: Reason
    lost_card: bool = False  # a card reported lost was used: raise an alarm
    # A card enrolled as able to prove itself was read without a proof: its id is being
    # presented by something that does not hold its key (a copy, an emulator).
    clone_suspected: bool = False
    override: bool = False  # granted through lockdown by an override group
    passback_violation: bool = False  # soft anti-passback: granted, but recorded


def decide(
    request: Request,
    *,
    utc: datetime,
    local: datetime,
    credentials: CredentialStore,
    policy: AccessPolicy,
    calendar: HolidayCalendar,
    lockdown: bool,
) -> Decision:
    """Decide one card read. Pure: reads the stores, changes nothing."""
    deny = credentials.denied(request.card_ref)
    if deny is not None:
        return Decision(False, Reason.REVOKED, lost_card=deny is DenyReason.LOST)
    credential = credentials.find(request.card_ref)
    if credential is None:
        return Decision(False, Reason.UNKNOWN_CARD)
    if not request.authenticated:
        if credential.profile.proves:
            return Decision(False, Reason.CARD_NOT_AUTHENTICATED, clone_suspected=True)
        if request.security is CardSecurity.AUTHENTICATED or (
            credential.groups & policy.authenticated_groups
        ):
            return Decision(False, Reason.CARD_NOT_AUTHENTICATED)
    if credential.valid_from is not None and utc < credential.valid_from:
        return Decision(False, Reason.NOT_YET_VALID)
    if credential.valid_until is not None and utc >= credential.valid_until:
        return Decision(False, Reason.EXPIRED)
    override = bool(credential.groups & policy.override_groups)
    if lockdown and not override:
        return Decision(False, Reason.LOCKDOWN)
    rules = [
        schedule for group, schedule in policy.rules_for(request.door) if group in credential.groups
    ]
    if not rules:
        return Decision(False, Reason.NO_RULE)
    if not any(schedule.is_open(local, calendar) for schedule in rules):
        return Decision(False, Reason.OUT_OF_SCHEDULE)
    violation = (
        request.anti_passback is not AntiPassback.OFF and request.position == request.destination
    )
    if violation and request.anti_passback is AntiPassback.HARD:
        return Decision(False, Reason.ANTI_PASSBACK)
    return Decision(
        True, Reason.GRANTED, override=lockdown and override, passback_violation=violation
    )
