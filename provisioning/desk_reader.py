"""A card on the desk reader (nfcpy): its reference and, for a Lite-S card, its proof.

What `cards set-pin` needs of the desk: the holder's card, known only by its reference (the
raw id goes into the referencer and nowhere else), and whether it proved it holds its own
key. It reads cards the way the door's nfc reader does (`edge.readers.nfc`, the one module
that imports nfcpy: the same identity, so the same reference), and waits for the card the way
`cards personalise` does, but for any FeliCa, ISO 14443 A or B card, not only blank Lite-S.

| card on the desk                 | reference from     | proved                          |
| -------------------------------- | ------------------ | ------------------------------- |
| FeliCa Lite-S enrolled `lite-s`  | IDm                | mutual authentication, its CK   |
| any other FeliCa, ISO 14443 A/B  | IDm, UID, PUPI     | not checked (None)              |

DESFire cards prove themselves only on PC/SC readers (edge.readers.desfire); nfcpy reads
their UID alone.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from edge.errors import EdgeError

# _card_identity is the door reader's own mapping from an nfcpy tag to (technology, id):
# using it keeps the desk's references equal to the doors' ones.
from edge.readers.nfc import (
    DEFAULT_TARGETS,
    LiteSError,
    _card_identity,
    is_lite_s,
    lite_s_proves,
    open_frontend,
)


class DeskReaderError(EdgeError, RuntimeError):
    """No usable card on the desk reader; the message says what to do."""


@dataclass(frozen=True, slots=True)
class DeskCard:
    """The card read at the desk: its reference, and whether it proved its key."""

    card_ref: str
    technology: str
    proved: bool | None  # None: no key to prove it with (a card known by its id)


def read_card(
    path: str,
    *,
    timeout_s: float,
    referencer: Callable[[str, str], str],
    proof_key: Callable[[str], bytes | None],
) -> DeskCard:
    """Wait up to `timeout_s` for a card on the desk reader at `path`; return what it showed.

    `referencer(technology, raw id)` makes the card's reference; `proof_key(reference)`
    gives the Lite-S key the card must prove, or None.
    """
    try:
        clf = open_frontend(path)
    except OSError as error:
        raise DeskReaderError(
            f"cannot open the desk reader {path} ({error.strerror or type(error).__name__}); "
            "check --reader (usb:054c:06c3 for an RC-S380) and that nothing else holds it"
        ) from None
    try:
        return _read(_wait_for_card(clf, path, timeout_s), referencer, proof_key)
    finally:
        clf.close()


def _wait_for_card(clf: Any, path: str, timeout_s: float) -> Any:
    return wait_for_card(
        clf,
        path,
        timeout_s,
        list(DEFAULT_TARGETS),
        "ask the holder to hold their staff card on it",
        DeskReaderError,
    )


def wait_for_card(
    clf: Any,
    path: str,
    timeout_s: float,
    targets: list[str],
    what_to_do: str,
    error: type[EdgeError],
    card: str = "card",
) -> Any:
    """Return the first card of `targets` on an open nfcpy reader; raise `error` saying why not."""
    deadline = time.monotonic() + timeout_s
    options = {
        "targets": targets,
        "on-connect": lambda tag: False,  # keep the tag: connect() returns it
        "iterations": 1,
        "interval": 0.1,
        "beep-on-connect": False,
    }
    tag = clf.connect(rdwr=options, terminate=lambda: time.monotonic() > deadline)
    if tag is False:
        raise error(f"lost the desk reader {path}; plug it in again and retry")
    if tag is None:
        raise error(
            f"no {card} on the reader within {timeout_s:g} s; {what_to_do} and run the "
            "command again"
        )
    return tag


def _read(
    tag: Any,
    referencer: Callable[[str, str], str],
    proof_key: Callable[[str], bytes | None],
) -> DeskCard:
    identity = _card_identity(tag)
    if identity is None:
        raise DeskReaderError(
            "that is not a staff card (not FeliCa, ISO 14443 A or B; a phone?); use the "
            "holder's staff card"
        )
    technology = identity[0]
    ref = referencer(*identity)
    del identity
    key = proof_key(ref)
    if key is None:
        return DeskCard(ref, technology, None)
    try:
        proved = is_lite_s(tag) and lite_s_proves(tag, key)
    except LiteSError:
        proved = False
    except Exception:  # nfcpy's TagCommandError, CommunicationError: the card left mid-way
        raise DeskReaderError(
            "the card left before it proved itself; hold it still on the reader and run the "
            "command again"
        ) from None
    return DeskCard(ref, technology, proved)
