"""Typed values <-> msgpack maps, for the local API's replies and events (sans-I/O).

A reply or an event is a frozen, slotted dataclass whose fields are ``str``, ``int``,
``bool``, ``bytes``, a ``StrEnum``, ``dict[str, int]`` (counters) or ``tuple[str, ...]``
(names). On the wire it is a map of its field names, so the bytes are what the daemon
sent before these types existed.
:func:`load` checks a map from the other side field by field and raises
:class:`IpcError` naming the first thing wrong; a key it does not know is ignored (a newer
daemon may say more).
"""

from __future__ import annotations

import dataclasses
import enum
import typing
from typing import Any, TypeVar

T = TypeVar("T")

SCALARS: tuple[type, ...] = (str, int, bool, bytes)


class IpcError(Exception):
    """The other side broke the local protocol, or the daemon refused a request."""


def dump(value: object) -> Any:
    """A dataclass (or a list of them) as the plain maps msgpack carries."""
    if isinstance(value, list):
        return [dump(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    return value


def _plain(value: object) -> object:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, tuple):
        return list(value)
    return value


def hints(cls: type) -> dict[str, Any]:
    """The field types of a dataclass, resolved (this package uses postponed annotations)."""
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in typing.get_type_hints(cls).items() if k in names}


def load(cls: type[T], raw: object, where: str = "") -> T:
    """One map from the other side as ``cls``; :class:`IpcError` if it does not fit."""
    return _load(cls, hints(cls), raw, where or cls.__name__)


def load_list(cls: type[T], raw: object, where: str = "") -> list[T]:
    where = where or cls.__name__
    if not isinstance(raw, list):
        raise IpcError(f"{where}: expected a list")
    types = hints(cls)
    return [_load(cls, types, item, where) for item in raw]


def _load(cls: type[T], types: dict[str, Any], raw: object, where: str) -> T:
    if not isinstance(raw, dict):
        raise IpcError(f"{where}: expected a map")
    values: dict[str, object] = {}
    for field in dataclasses.fields(cls):  # type: ignore[arg-type]
        if field.name not in raw:
            if field.default is not dataclasses.MISSING:
                continue
            raise IpcError(f"{where}: {field.name} is missing")
        values[field.name] = check(types[field.name], raw[field.name], f"{where}.{field.name}")
    return cls(**values)


def check(kind: Any, value: object, where: str) -> object:
    """``value`` if it is of ``kind`` (``bool`` is not an ``int`` here), else IpcError."""
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        try:
            return kind(value)
        except ValueError:
            raise IpcError(f"{where}: unknown value {value!r}") from None
    if typing.get_origin(kind) is dict:
        if not isinstance(value, dict) or not all(
            type(k) is str and type(v) is int for k, v in value.items()
        ):
            raise IpcError(f"{where}: expected a map of counters")
        return dict(value)
    if typing.get_origin(kind) is tuple:  # tuple[str, ...]: a list of strings on the wire
        if not isinstance(value, list | tuple) or not all(type(v) is str for v in value):
            raise IpcError(f"{where}: expected a list of strings")
        return tuple(value)
    if kind in SCALARS and type(value) is kind:
        return value
    name = getattr(kind, "__name__", str(kind))
    raise IpcError(f"{where}: expected {name}, got {type(value).__name__}")
