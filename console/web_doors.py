"""The doors page: each door's live state and what a guard or manager may do to it."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
