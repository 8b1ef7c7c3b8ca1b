"""Fixtures for the core tests: a fresh harness (see harness.py)."""

from __future__ import annotations

import pytest

from tests.edge.core.harness import Harness, make_harness


@pytest.fixture
def h() -> Harness:
    return make_harness()
