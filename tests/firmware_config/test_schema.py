"""The JSON Schema is the installers' reference: snapshot it and keep it documented."""

from typing import Any

import pytest
from syrupy.assertion import SnapshotAssertion
from syrupy.extensions.json import JSONSnapshotExtension

from firmware_config.loader import json_schema


@pytest.fixture
def snapshot_json(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    return snapshot.use_extension(JSONSnapshotExtension)


def test_json_schema_matches_snapshot(snapshot_json: SnapshotAssertion) -> None:
    assert json_schema() == snapshot_json


def test_schema_is_titled_device_config() -> None:
    assert json_schema()["title"] == "DeviceConfig"


def _properties(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    models = {"DeviceConfig": schema, **schema["$defs"]}
    return [
        (model, name, prop)
        for model, definition in models.items()
        for name, prop in definition.get("properties", {}).items()
    ]


def test_every_key_is_described() -> None:
    undocumented = [
        f"{model}.{name}"
        for model, name, prop in _properties(json_schema())
        if not prop.get("description")
    ]

    assert undocumented == []


def test_every_table_is_described() -> None:
    schema = json_schema()
    models = {"DeviceConfig": schema, **schema["$defs"]}

    assert [name for name, model in models.items() if not model.get("description")] == []


def test_every_table_refuses_unknown_keys() -> None:
    schema = json_schema()
    models = {"DeviceConfig": schema, **schema["$defs"]}

    assert [
        name for name, model in models.items() if model.get("additionalProperties") is not False
    ] == []


def test_door_fail_mode_has_no_default() -> None:
    door = json_schema()["$defs"]["DoorConfig"]

    assert "fail" in door["required"]
    assert "default" not in door["properties"]["fail"]
