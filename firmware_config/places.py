"""Find where a pydantic error location points in the configuration model tree.

Pydantic locates an error as `("readers", 0, "pcsc", "door")`: keys, list indexes and union
tags mixed. `locate` walks the models' annotations along it and returns the installer's path
(`readers[0].door`), the TOML table (`readers.door`) and the field found there, so messages can
use the field's choices, bounds and description.
"""

from __future__ import annotations

import types
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from firmware_config.errors import join_path
from firmware_config.model import DeviceConfig


@dataclass(frozen=True)
class Place:
    """Where an error sits, resolved against the model tree."""

    path: str  # doors[1].relay.pin
    table: str  # doors.relay.pin, as in a TOML table header
    owner: type[BaseModel] | None  # the model holding the last key
    field: FieldInfo | None  # the last key's field, if it exists
    node: Any  # the annotation reached at the end
    siblings: tuple[type[BaseModel], ...]  # other kinds, when the owner is a union member

    @property
    def key(self) -> str:
        return self.table.rpartition(".")[2]

    @property
    def parent_table(self) -> str:
        return self.table.rpartition(".")[0]


def locate(loc: tuple[int | str, ...]) -> Place:
    """Resolve a pydantic error location of DeviceConfig."""
    node: Any = DeviceConfig
    path, table = "", ""
    owner: type[BaseModel] | None = None
    field: FieldInfo | None = None
    siblings: tuple[type[BaseModel], ...] = ()
    pending: tuple[type[BaseModel], ...] = ()
    for item in loc:
        node = unwrap(node)
        if isinstance(item, int):
            path += f"[{item}]"
            node, field = element(node), None
            continue
        member = _tagged_member(node, item)
        if member is not None:  # a union tag such as "pcsc": not part of the path
            pending = tuple(arm for arm in models_in(node) if arm is not member)
            node = member
            continue
        owner = node if is_model(node) else None
        field = owner.model_fields.get(item) if owner else None
        siblings, pending = pending, ()
        path, table = join_path(path, item), join_path(table, item)
        node = field.annotation if field else None
    return Place(path, table, owner, field, unwrap(node), siblings)


def unwrap(node: Any) -> Any:
    """Strip Annotated and `| None`."""
    while True:
        if get_origin(node) is Annotated:
            node = get_args(node)[0]
        elif _is_union(node) and len(arms := _non_none(node)) == 1:
            node = arms[0]
        else:
            return node


def _is_union(node: Any) -> bool:
    return get_origin(node) in (Union, types.UnionType)


def _non_none(node: Any) -> list[Any]:
    return [arm for arm in get_args(node) if arm is not type(None)]


def is_model(node: Any) -> bool:
    """Tell whether an annotation is a pydantic model class."""
    return isinstance(node, type) and issubclass(node, BaseModel)


def element(node: Any) -> Any:
    """Return the element annotation of `tuple[X, ...]` or `list[X]`, else None."""
    return get_args(node)[0] if get_origin(node) in (tuple, list) else None


def models_in(node: Any) -> list[type[BaseModel]]:
    """Return the model classes of a union annotation (the kinds of a `kind` union)."""
    return [arm for arm in _non_none(node) if is_model(arm)] if _is_union(node) else []


def _tagged_member(node: Any, tag: str) -> type[BaseModel] | None:
    for arm in models_in(node):
        if tag in choices(arm.model_fields.get("kind")):
            return arm
    return None


def choices(field: FieldInfo | None) -> tuple[str, ...]:
    """Return the allowed values of a Literal field; empty for any other field."""
    node = unwrap(field.annotation) if field else None
    return get_args(node) if get_origin(node) is Literal else ()


def model_fields_of(field: FieldInfo) -> dict[str, FieldInfo]:
    """Return the fields of the table (or list of tables) a field holds; empty if none."""
    node = unwrap(field.annotation)
    node = unwrap(element(node)) if get_origin(node) in (tuple, list) else node
    return node.model_fields if is_model(node) else {}
