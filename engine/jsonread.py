"""Strict JSON for cases: the same reading over HTTP, in batch files and in diff inputs.

Python's ``json`` keeps the last of two equal keys (``{"a":true,"a":false}``
silently becomes ``false``), reads ``NaN`` and ``Infinity``, and turns
numbers into binary floats. Cases are read here instead: a repeated key is
refused with its name, non-standard constants are refused, and every number
with a fraction or exponent becomes an exact ``Decimal`` (its size is
checked later, against the fact's declared type, without converting it).
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any


class JSONInputError(ValueError):
    """The text is not strict JSON; the message says where or which key."""


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            shown = key.encode("utf-8", "backslashreplace").decode("utf-8")
            raise JSONInputError(f"duplicate key {shown!r}: each key may appear once in an object")
        out[key] = value
    return out


def _no_constant(name: str) -> Any:
    raise JSONInputError(f"{name} is not a JSON number")


def _integer(text: str) -> int | Decimal:
    """An integer; one too long for ``int()`` (4300 digits) stays an exact Decimal.

    The number is then refused where it is used — a fact out of its type's
    range, an id that is not a case id — naming the fact, instead of the
    whole document (a batch) failing to parse.
    """
    return int(text) if len(text) <= 4000 else Decimal(text)


_DECODER = json.JSONDecoder(parse_float=Decimal, parse_int=_integer, object_pairs_hook=_no_duplicates,
                            parse_constant=_no_constant)


def loads(text: str | bytes) -> Any:
    """Parse strict JSON (see the module docstring).

    Raises:
        JSONInputError: invalid JSON, a duplicate key, NaN/Infinity, or nesting
        too deep — never another exception type.
    """
    try:
        # json.loads' own reading of bytes and str, then a decoder built once (json.loads with
        # options builds one, with its scanner, on every call: ~2 µs of a ~5 µs service request body).
        if isinstance(text, (bytes, bytearray)):
            text = text.decode(json.detect_encoding(text), "surrogatepass")
        elif not isinstance(text, str):
            raise TypeError(f"the JSON object must be str, bytes or bytearray, not {text.__class__.__name__}")
        elif text.startswith("\ufeff"):
            raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
        return _DECODER.decode(text)
    except JSONInputError:
        raise
    except json.JSONDecodeError as err:
        raise JSONInputError(f"{err.msg} (line {err.lineno}, column {err.colno})") from None
    except UnicodeDecodeError as err:
        raise JSONInputError(f"the text is not UTF-8: {err.reason} at byte {err.start}") from None
    except ValueError as err:  # e.g. an integer over Python's 4300-digit limit
        raise JSONInputError(str(err).split(";")[0]) from None
    except RecursionError:
        raise JSONInputError("nested too deeply") from None
