"""The decision log's JSON: cases written with their exact digits, decisions as the service answers them.

Kept apart from :mod:`engine.log` (the storage) because the batch writes
cases with :func:`exact_json` too, and because both functions run once per
logged decision: a logged service request pays for them.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from json.encoder import encode_basestring, encode_basestring_ascii  # type: ignore[attr-defined]
from typing import Any, Callable

import orjson

from engine.errors import Diagnostic, EngineError


class LogError(EngineError):
    """The decision log cannot be opened or written."""


def exact_json(value: Any) -> str:
    """A case as JSON text that decides the same: every number keeps its exact digits.

    ``json.dumps`` cannot write a Decimal as a number, and turning ``2.0`` or
    ``-0.0`` into ``2`` or ``0`` changes the case id a replay compares with
    (issue 9, item 12), so numbers are written from their own text. Text that
    holds a lone surrogate cannot be stored as UTF-8: it is written with
    ``\\u`` escapes instead, which read back to the same string. Dates become
    ISO text (as a case file holds them). The text is ``json.dumps``'s own
    (``", "`` and ``": "`` separators), written by one walk that quotes strings
    with json's C quoting function: a logged service request pays for it.
    """
    try:
        text = _exact(value, encode_basestring)
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return _exact(value, encode_basestring_ascii)
    except (RecursionError, ValueError) as err:  # nested too deeply; an int over Python's digit limit
        raise LogError([Diagnostic("log", f"the case cannot be recorded: {err}")]) from err


def _exact(value: Any, quote: Callable[[str], str]) -> str:
    """``value`` as JSON (see :func:`exact_json`); ``quote`` is json's C string quoting, ASCII-only or not.

    Each branch writes what ``json.dumps(value, ensure_ascii=...)`` writes for
    that type (the exact types first, as a fast path; subclasses fall through
    to the ``isinstance`` checks, which decide as the original walk did).
    """
    kind = type(value)
    if kind is str:
        return quote(value)
    if kind is dict:
        return "{" + ", ".join([f"{quote(k if type(k) is str else str(k))}: {_exact(v, quote)}"
                                for k, v in value.items()]) + "}"
    if kind is list:
        return "[" + ", ".join([_exact(v, quote) for v in value]) + "]"
    if value is None:
        return "null"
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return int.__repr__(value)  # json's C encoder writes ints so (and refuses over 4300 digits)
    if kind is Decimal:
        return str(value) if value.is_finite() else encode_basestring_ascii(str(value))
    if isinstance(value, dict):
        return "{" + ", ".join([f"{quote(str(k))}: {_exact(v, quote)}" for k, v in value.items()]) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join([_exact(v, quote) for v in value]) + "]"
    if isinstance(value, Decimal):
        return str(value) if value.is_finite() else encode_basestring_ascii(str(value))
    if isinstance(value, (date, datetime)):
        return encode_basestring_ascii(value.isoformat())
    if value is None or isinstance(value, (bool, int, float, str)):
        return json.dumps(value, ensure_ascii=quote is encode_basestring_ascii)
    return quote(str(value))


def decision_json(decision: dict[str, Any]) -> str:
    """A decision's dict as compact JSON: the text the service answers (:func:`engine.httpio.json_bytes`).

    orjson writes a decision in about a tenth of the time a walk takes; what
    it refuses — a key that is not a plain str, a Decimal or a date, an
    integer beyond 64 bits, text with a lone surrogate, nesting too deep —
    is written by :func:`exact_json` instead, which reads back the same.
    A decision holds no float (amounts and bounds are text): orjson would
    write a non-finite one as ``null``, so this is for decisions' dicts only.
    """
    try:
        return orjson.dumps(decision).decode("utf-8")
    except (TypeError, ValueError):  # orjson.JSONEncodeError is a TypeError
        return exact_json(decision)
