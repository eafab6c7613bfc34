"""A case's facts as the JSON text the rete back end asserts — one generated function per kind.

The C core only compares integers and strings (docs/design.md §4, pitfall 6),
so every number, date, moment and duration travels as an exact,
order-preserving integer (:func:`scaled`), and every fact under a short name
checked collision-free by :mod:`engine.match.rete`. Projecting field by
field through generic closures, then ``json.dumps`` of a dict, cost more
than the core's own match; :func:`compile_projection` instead writes, once
per kind, a straight-line function that appends each field's JSON text
directly, with fast paths for the common cases (an int within the safe
range, a bool, a declared enum value) and :func:`scaled` as the reference
for everything else. Names and constants from the policy are hoisted into
the function's namespace, never printed into its source: the source holds
only identifiers made from integers.
"""

from __future__ import annotations

import decimal
import json
import math
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from json.encoder import encode_basestring  # what json.dumps(ensure_ascii=False) uses for a str
from typing import TYPE_CHECKING, Any, Callable

from engine.errors import Diagnostic, PolicyError

if TYPE_CHECKING:
    from engine.expressions.types import Type

MAX_SAFE = 2**53  # integers a double holds exactly, whatever the core parses them as
HEAD = '{"sid":"0","k":1'  # the one sid per ruleset instance, and the guard rule's constant
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_US = timedelta(microseconds=1)
_WIDE = decimal.Context(prec=200, Emax=10**6, Emin=-(10**6))


def scaled(value: Any, scale: int) -> int:
    """Exact order-preserving integer for a number: 2·v·10^s, or odd if v has more places.

    Constants have at most ``scale`` places, so they map to even integers; a
    case value between two of them maps to the odd integer between, which
    keeps every <, =, > against the constants exact. This is the reference
    the generated fast paths are tested against.
    """
    n = Decimal(value).scaleb(scale, context=_WIDE)  # exact: no rounding to 34 digits
    if abs(n) >= MAX_SAFE:  # clamp before math.floor builds a huge int
        return MAX_SAFE if n > 0 else -MAX_SAFE
    floor = math.floor(n)
    out = 2 * floor + (0 if n == floor else 1)
    # Beyond every constant (they are checked to stay below MAX_SAFE / 2).
    return max(-MAX_SAFE, min(MAX_SAFE, out))


def _clamp(n: int) -> int:
    return MAX_SAFE if n > MAX_SAFE else -MAX_SAFE if n < -MAX_SAFE else n


def scaled_decimal(value: Any, scale: int, power: int) -> int:
    """:func:`scaled` in integer arithmetic for an ordinary Decimal (``power`` is 10**scale).

    ``as_integer_ratio`` is exact; the magnitude check keeps the integers
    small (anything huge, tiny or not finite goes to the reference).
    """
    if value.__class__ is Decimal and value.is_finite() and -20 < value.adjusted() < 17:
        num, den = value.as_integer_ratio()
        floor, rest = divmod(num * power, den)
        return _clamp(2 * floor + (rest != 0))
    return scaled(value, scale)


def scaled_micros(micros: int, scale: int) -> int:
    """:func:`scaled` of ``micros`` millionths (seconds of a moment or duration), in integers."""
    if scale >= 6:
        return _clamp(2 * micros * 10 ** (scale - 6))
    floor, rest = divmod(micros, 10 ** (6 - scale))
    return _clamp(2 * floor + (rest != 0))


def projector(typ: Type, scale: int) -> Callable[[Any], Any]:
    """One value as the core compares it: used for the rules' constants, at compile time."""
    kind = typ.kind
    if kind == "bool":
        return lambda v: 1 if v else 0
    if kind in ("integer", "decimal", "money"):
        return lambda v: scaled(v, scale)
    if kind == "date":
        return lambda v: v.toordinal()
    if kind == "datetime":  # seconds since the epoch, with the constants' places
        return lambda v: scaled(Decimal((v - _EPOCH) // _US).scaleb(-6), scale)
    if kind == "duration":
        return lambda v: scaled(Decimal(v // _US).scaleb(-6), scale)
    return str


def constant_scale(values: list[Any]) -> int:
    """Decimal places the constants need (microseconds count for moments and durations)."""
    places = 0
    for v in values:
        if isinstance(v, Decimal):
            places = max(places, -min(v.as_tuple().exponent, 0))  # type: ignore[operator]
        elif (isinstance(v, datetime) and v.microsecond) or (isinstance(v, timedelta) and v.microseconds):
            places = max(places, 6)
    return places


def _field_source(i: int, typ: Type, scale: int, short: str, ns: dict[str, Any]) -> list[str]:
    """Lines appending field ``i``'s JSON text to ``out`` (its constants go into ``ns``)."""
    prefix = f",{json.dumps(short)}:"
    ns[f"_p{i}"] = prefix
    kind = typ.kind
    if kind == "bool":
        ns[f"_t{i}"], ns[f"_f{i}"] = prefix + "1", prefix + "0"
        return [f"        out += _t{i} if f[_n{i}] else _f{i}"]
    if kind in ("integer", "decimal", "money"):
        ns[f"_k{i}"], ns[f"_l{i}"], ns[f"_m{i}"] = 2 * 10**scale, MAX_SAFE // (2 * 10**scale), 10**scale
        return [f"        v = f[_n{i}]",
                f"        if v.__class__ is int and -_l{i} < v < _l{i}:",  # 2·v·10^s stays in range
                f"            out += _p{i} + str(v * _k{i})",
                "        else:",
                f"            out += _p{i} + str(_dec(v, {scale}, _m{i}))"]
    if kind == "date":
        return [f"        out += _p{i} + str(f[_n{i}].toordinal())"]
    if kind == "datetime":
        return [f"        out += _p{i} + str(_micros((f[_n{i}] - _EPOCH) // _US, {scale}))"]
    if kind == "duration":
        return [f"        out += _p{i} + str(_micros(f[_n{i}] // _US, {scale}))"]
    if kind == "enum":  # the declared values' text, encoded once
        ns[f"_e{i}"] = {v: prefix + encode_basestring(v) for v in typ.values}
        return [f"        v = f[_n{i}]",
                f"        out += _e{i}.get(v) or _p{i} + _enc(str(v))"]
    return [f"        out += _p{i} + _enc(str(f[_n{i}]))"]


def compile_projection(fields: list[tuple[str, str, Type, int]], label: str) -> Callable[[dict[str, Any]], str]:
    """A function from facts to the asserted JSON text, for (fact name, short name, type, scale) fields.

    The text is what ``json.dumps`` gives for ``{"sid": "0", "k": 1, short:
    projected value, ...}`` (compact separators) over the facts present, in
    the order of ``fields``.
    """
    ns: dict[str, Any] = {"__builtins__": {}, "str": str, "int": int, "_enc": encode_basestring,
                          "_dec": scaled_decimal, "_micros": scaled_micros, "_EPOCH": _EPOCH, "_US": _US,
                          "_HEAD": HEAD}
    lines = ["def project(f):", "    out = _HEAD"]
    for i, (name, short, typ, scale) in enumerate(fields):
        ns[f"_n{i}"] = name
        lines.append(f"    if _n{i} in f:")
        lines += _field_source(i, typ, scale, short, ns)
    lines.append("    return out + '}'")
    try:
        code = compile("\n".join(lines) + "\n", f"<clause-rete-projection:{label}>", "exec")
    except (SyntaxError, RecursionError, MemoryError) as err:
        raise PolicyError([Diagnostic("limit", f"the rete projection of {label} is too large: {err}")]) from err
    exec(code, ns)  # noqa: S102 - generated from integers and hoisted constants only
    project: Callable[[dict[str, Any]], str] = ns["project"]
    return project

