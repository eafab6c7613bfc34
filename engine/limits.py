"""Limits on input values, checked before any conversion can cost time or crash.

A number such as ``1e300000`` is cheap to hold as a ``Decimal`` but takes
seconds to turn into an ``int``, and a string with a lone surrogate
(``"\\ud800"``) is a valid Python ``str`` that no UTF-8 encoder accepts. Both
are refused here, at the edge, with a message that names the value, so the
rest of the engine only ever sees values it can compute with exactly.
"""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

# Amounts below a trillion with at most 12 places, whole numbers below 10**15
# (the Rete projection needs them inside 2**52), years 1900-2999.
MAX_MAGNITUDE = Decimal(10) ** 12
MAX_PLACES = 12
MAX_INTEGER = 10**15
MIN_YEAR, MAX_YEAR = 1900, 2999
# A duration longer than the whole supported range of years means nothing.
MAX_DURATION = timedelta(days=366 * (MAX_YEAR - MIN_YEAR + 1))
MAX_NUMBER_TEXT = 64  # characters of a number written as text

# ASCII digits only: ``Decimal`` and ``int`` also read Arabic-Indic and other
# Unicode digits, which no currency amount in a case is written with.
_DECIMAL_TEXT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def shown(value: int | Decimal) -> str:
    """A number for a message, shortened when long (an echo must not be as big as the attack)."""
    try:
        text = str(value)
    except ValueError:  # an int past Python's 4300-digit conversion limit
        return "a number of more than 4300 digits"
    if len(text) <= 40:
        return text
    return f"{text[:16]}…{text[-6:]} ({len(text)} characters)"


def decimal_problem(value: Decimal) -> str | None:
    """Why ``value`` is outside the exact range the engine computes in, or None.

    Uses only the exponent and digit count, never a conversion, so it takes
    the same time for ``1e300000`` as for ``1``.
    """
    if not value.is_finite():
        return f"expected a finite number, found {value}"
    if value and value.adjusted() >= 12:  # adjusted(): the power of ten of the first digit
        return f"{shown(value)} is out of range (amounts must be below {MAX_MAGNITUDE:,f})"
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and -exponent > MAX_PLACES:
        return f"{shown(value)} has more than {MAX_PLACES} decimal places"
    return None


def parse_decimal(text: str) -> Decimal:
    """A decimal written as text: ASCII digits, an optional sign, point and short exponent.

    Raises:
        ValueError: with a message meant for the user (never decimal's own
        ``[<class 'decimal.ConversionSyntax'>]``).
    """
    stripped = text.strip()
    if stripped.lstrip("+-").lower() in ("nan", "snan", "inf", "infinity"):
        raise ValueError(f"expected a finite number, found {text!r}")
    if len(stripped) > MAX_NUMBER_TEXT or not _DECIMAL_TEXT.fullmatch(stripped):
        raise ValueError(f"expected a decimal number like \"12.50\", found {text!r}")
    try:
        return Decimal(stripped)
    except InvalidOperation:  # unreachable after the pattern, kept as a guard
        raise ValueError(f"expected a decimal number like \"12.50\", found {text!r}") from None


def whole_number(value: int | Decimal) -> int:
    """``value`` as an int when it is whole and in range; the range is checked first.

    Raises:
        TypeError: not a whole number. ValueError: out of range.
    """
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise TypeError(f"expected a whole number, found {value}")
        if value and value.adjusted() >= 15:
            raise ValueError(f"{shown(value)} is out of range (at most {MAX_INTEGER - 1:,} in size)")
        if value != value.to_integral_value():
            raise TypeError(f"expected a whole number, found {shown(value)}")
        value = int(value)
    if abs(value) >= MAX_INTEGER:
        raise ValueError(f"{shown(value)} is out of range (at most {MAX_INTEGER - 1:,} in size)")
    return value


def bad_text(value: str) -> bool:
    """True when ``value`` cannot be written as UTF-8 (it holds a lone surrogate)."""
    if value.isascii():
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def shown_text(value: str) -> str:
    """``value`` quoted, with lone surrogates escaped so the message itself is valid text."""
    return repr(value.encode("utf-8", "backslashreplace").decode("utf-8"))


def text_problems(data: Any, path: tuple[Any, ...] = (), depth: int = 0) -> list[tuple[tuple[Any, ...], str]]:
    """(path, message) for every key or string inside ``data`` that is not valid text."""
    out: list[tuple[tuple[Any, ...], str]] = []
    if depth > 64:
        return out
    if isinstance(data, str):
        if bad_text(data):
            out.append((path, f"{shown_text(data)} is not valid text (a lone UTF-16 surrogate)"))
    elif isinstance(data, dict):
        for key, item in data.items():
            if isinstance(key, str) and bad_text(key):
                out.append(((*path, _escaped(key)), f"the name {shown_text(key)} is not valid text "
                            "(a lone UTF-16 surrogate)"))
                continue
            out += text_problems(item, (*path, key), depth + 1)
    elif isinstance(data, (list, tuple)):
        for i, item in enumerate(data):
            out += text_problems(item, (*path, i), depth + 1)
    return out


def _escaped(key: str) -> str:
    return key.encode("utf-8", "backslashreplace").decode("utf-8")
