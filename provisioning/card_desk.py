"""What personalising a card at the desk can fail with, whatever the card."""

from __future__ import annotations

from edge.errors import EdgeError


class PersonaliseError(EdgeError, RuntimeError):
    """A card could not be personalised; the message says what to do."""
