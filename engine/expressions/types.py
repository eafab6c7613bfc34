"""Types of the expression language and of declared facts."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

SCALARS = ("bool", "integer", "decimal", "money", "date", "datetime", "duration", "string", "enum")
NUMERIC = ("integer", "decimal")


@dataclass(frozen=True, slots=True)
class Type:
    """A value type; ``values`` for enums, ``fields`` for records, ``item`` for lists."""

    kind: str
    values: tuple[str, ...] = ()
    fields: Mapping[str, Type] = field(default_factory=lambda: MappingProxyType({}))
    item: Type | None = None

    def __str__(self) -> str:
        if self.kind == "list" and self.item is not None:
            return f"list of {self.item}"
        return self.kind

    def __hash__(self) -> int:
        return hash((self.kind, self.values, tuple(self.fields), self.item))

    @property
    def numeric(self) -> bool:
        return self.kind in NUMERIC

    @property
    def textual(self) -> bool:
        return self.kind in ("string", "enum")


BOOL = Type("bool")
INTEGER = Type("integer")
DECIMAL = Type("decimal")
MONEY = Type("money")
DATE = Type("date")
DATETIME = Type("datetime")
DURATION = Type("duration")
STRING = Type("string")
ANY_LIST = Type("list")


def record(fields: Mapping[str, Type]) -> Type:
    return Type("record", fields=MappingProxyType(dict(fields)))


def list_of(item: Type) -> Type:
    return Type("list", item=item)


def enum(values: tuple[str, ...]) -> Type:
    return Type("enum", values=values)


def comparable(a: Type, b: Type) -> bool:
    """Whether ``a`` and ``b`` may be compared with == or <."""
    if a.numeric and b.numeric:
        return True
    if {a.kind, b.kind} <= {"money", "integer", "decimal"}:
        return True  # money against a number, e.g. ``amount > 0``
    if a.textual and b.textual:
        return True
    return a.kind == b.kind and a.kind != "list"


def unify(a: Type, b: Type) -> Type | None:
    """The common type of two branches, or None."""
    if a == b:
        return a
    if a.numeric and b.numeric:
        return DECIMAL
    if a.textual and b.textual:
        return STRING
    return None
