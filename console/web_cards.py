"""The desk pages: lost and revoked cards, and day passes."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
