"""The one mapper between domain dataclasses and Avro records (plain dicts), driven by the dataclasses' type hints.

Supported field types: str, int, bool, datetime (tz-aware; fastavro turns it into timestamp-micros), enums (written as
their member name, the Avro symbol), X | None, tuple[X, ...] (an Avro array) and nested dataclasses (an Avro record).
Each class's conversion plan is worked out once, on first use.
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from orderstream.schemas.errors import EncodeError

Convert = Callable[[Any], Any]


def registered_classes() -> tuple[type, ...]:
    """Every type that goes on the wire: the domain events, the commands and Reply."""
    from orderstream.domain.commands import ALL_COMMANDS, Reply
    from orderstream.domain.events import ALL_EVENTS

    return (*ALL_EVENTS, *ALL_COMMANDS, Reply)


@dataclasses.dataclass(frozen=True, slots=True)
class _Plan:
    names: tuple[str, ...]
    to_wire: tuple[tuple[str, Convert], ...]  # only the fields that need converting
    from_wire: tuple[tuple[str, Convert], ...]


class Mapper:
    """Turns a registered dataclass into an Avro-ready dict and back; the Avro type name is the class name.

    Guarantees: from_record(to_record(x)) == x for every registered class; an unregistered class is an EncodeError;
    so is a naive datetime (times on the wire are UTC instants) or an int field holding anything but an int (a float
    or a bool would be silently truncated by the Avro writer; money is never a float).
    """

    def __init__(self, classes: Iterable[type] | None = None) -> None:
        chosen = tuple(classes) if classes is not None else registered_classes()
        self._by_name: dict[str, type] = {}
        for cls in chosen:
            if not dataclasses.is_dataclass(cls):
                raise TypeError(f"{cls!r} is not a dataclass")
            if cls.__name__ in self._by_name:
                raise TypeError(f"two registered classes are named {cls.__name__}")
            self._by_name[cls.__name__] = cls
        self._classes = frozenset(self._by_name.values())
        self._plans: dict[type, _Plan] = {}

    def class_of(self, type_name: str) -> type | None:
        return self._by_name.get(type_name)

    def type_names(self) -> tuple[str, ...]:
        return tuple(self._by_name)

    def field_names(self, cls: type) -> tuple[str, ...]:
        return self._plan(cls).names

    def to_record(self, message: Any) -> dict[str, Any]:
        """The Avro record (a dict) of a registered message."""
        cls = type(message)
        if cls not in self._classes:
            raise EncodeError(f"{cls.__qualname__} is not a registered message type", type_name=cls.__name__)
        plan = self._plans.get(cls) or self._plan(cls)
        record = {name: getattr(message, name) for name in plan.names}
        for name, convert in plan.to_wire:
            record[name] = convert(record[name])
        return record

    def from_record(self, cls: type, record: dict[str, Any]) -> Any:
        """The instance of cls that record describes. record is consumed (converted in place)."""
        return self.builder(cls)(record)

    def builder(self, cls: type) -> Callable[[dict[str, Any]], Any]:
        """A function record -> instance of cls, specialised once (the decode hot path calls it directly)."""
        if cls not in self._classes:
            raise TypeError(f"{cls.__qualname__} is not a registered message type")
        return _nested_from_wire(cls, self._plan(cls))

    def _plan(self, cls: type) -> _Plan:
        plan = self._plans.get(cls)
        if plan is None:
            plan = _plan_for(cls)
            self._plans[cls] = plan
        return plan


def _plan_for(cls: type) -> _Plan:
    hints = typing.get_type_hints(cls)
    names: list[str] = []
    to_wire: list[tuple[str, Convert]] = []
    from_wire: list[tuple[str, Convert]] = []
    for field in dataclasses.fields(cls):
        names.append(field.name)
        out, back = _converters(hints[field.name], f"{cls.__name__}.{field.name}")
        if out is not None:
            to_wire.append((field.name, out))
        if back is not None:
            from_wire.append((field.name, back))
    return _Plan(tuple(names), tuple(to_wire), tuple(from_wire))


def _converters(hint: Any, where: str) -> tuple[Convert | None, Convert | None]:
    """(to wire, from wire) converters for one type hint; None where the value passes through unchanged."""
    origin = typing.get_origin(hint)
    if hint is str:
        return None, None  # fastavro itself refuses anything but a str
    if hint in (int, bool):
        return _check_exact(hint, where), None  # fastavro would write 3.7 as 3 and "yes" as true
    if hint is datetime:
        return _check_aware(where), None
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return _enum_to_symbol, _symbol_to_enum(hint)
    if origin in (typing.Union, types.UnionType):
        arms = [arm for arm in typing.get_args(hint) if arm is not type(None)]
        if len(arms) != 1 or len(typing.get_args(hint)) != 2:
            raise TypeError(f"{where}: only X | None unions are supported, not {hint}")
        out, back = _converters(arms[0], where)
        return _optional(out), _optional(back)
    if origin is tuple:
        args = typing.get_args(hint)
        if len(args) != 2 or args[1] is not Ellipsis:
            raise TypeError(f"{where}: only tuple[X, ...] is supported, not {hint}")
        out, back = _converters(args[0], where)
        return _to_list(out), _to_tuple(back)
    if dataclasses.is_dataclass(hint):
        plan = _plan_for(hint)  # type: ignore[arg-type]
        return _nested_to_wire(plan), _nested_from_wire(hint, plan)  # type: ignore[arg-type]
    raise TypeError(f"{where}: no Avro mapping for {hint!r}")


def _check_exact(kind: type, where: str) -> Convert:
    def check(value: Any) -> Any:
        if type(value) is not kind:
            raise EncodeError(f"{where} must be {kind.__name__}, got {type(value).__name__} {value!r}")
        return value

    return check


def _check_aware(where: str) -> Convert:
    def check(value: datetime) -> datetime:
        if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
            raise EncodeError(f"{where} must be a timezone-aware datetime, got {value!r}")
        return value

    return check


def _enum_to_symbol(member: enum.Enum) -> str:
    return member.name


def _symbol_to_enum(enum_cls: type[enum.Enum]) -> Convert:
    return enum_cls.__getitem__


def _optional(convert: Convert | None) -> Convert | None:
    if convert is None:
        return None
    return lambda value: None if value is None else convert(value)


def _to_list(convert: Convert | None) -> Convert:
    if convert is None:
        return list
    return lambda values: [convert(value) for value in values]


def _to_tuple(convert: Convert | None) -> Convert:
    if convert is None:
        return tuple
    return lambda values: tuple(convert(value) for value in values)


def _nested_to_wire(plan: _Plan) -> Convert:
    def convert(value: Any) -> dict[str, Any]:
        record = {name: getattr(value, name) for name in plan.names}
        for name, field_convert in plan.to_wire:
            record[name] = field_convert(record[name])
        return record

    return convert


def _nested_from_wire(cls: type, plan: _Plan) -> Convert:
    from_wire = plan.from_wire
    if not from_wire:
        return lambda record: cls(**record)

    def convert(record: dict[str, Any]) -> Any:
        for name, field_convert in from_wire:
            record[name] = field_convert(record[name])
        return cls(**record)

    return convert
