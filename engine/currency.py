"""Currencies: ISO 4217 codes and minor units, and the currency of a case.

Codes and minor units come from the ``iso4217`` package, which is generated
from the ISO 4217 maintenance agency's own published list (SIX) and is
re-released when that list changes. Babel's CLDR data was considered and
refused: CLDR records the digits people *use* (IDR, HUF, COP 0), not the
ISO minor unit (2), and the standard here is ISO 4217 (JPY 0, KWD 3, CLF 4).
Codes whose minor unit ISO gives as "N.A." (gold, SDR, XXX) are not money a
customer is billed in and are refused.

A policy either *names* one currency — the one its source text names; its
money literals are in it — or *accepts* several (a list, or any ISO 4217
code) when the text names none; then it may hold no money literal but
``money(0)``. A case's money facts set the decision's currency; facts in two
currencies are a case error naming both. A plain amount (``"12.50"``) is in
the case's currency: the one its other facts name, else the policy's default
(the named currency or the first accepted one).
The decision's currency travels with the facts under :data:`CURRENCY_FACT`
(not an identifier, so it can never clash with a declared fact).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from iso4217 import Currency

from engine._yaml import json_path
from engine.errors import CaseError, Diagnostic

if TYPE_CHECKING:
    from engine.case import Case
    from engine.model import Policy

CURRENCY_FACT = "$currency"
ANY = "any"
NO_CURRENCY = "XXX"  # ISO 4217 "no currency involved": a policy accepting any, with no money fact


@lru_cache(maxsize=512)
def _exponent(code: str) -> int | None:
    if not (isinstance(code, str) and len(code) == 3 and code.isascii() and code.isupper()):
        return None
    try:
        return Currency(code).exponent
    except ValueError:
        return None


def known(code: str) -> bool:
    """Whether ``code`` is an ISO 4217 currency with a minor unit (USD, SEK, JPY...)."""
    return _exponent(code) is not None


def minor_units(code: str) -> int:
    """Decimal places of ``code``'s minor unit (USD 2, JPY 0, KWD 3)."""
    if code == NO_CURRENCY:
        return 0
    exponent = _exponent(code)
    if exponent is None:
        raise KeyError(code)
    return exponent


@lru_cache(maxsize=512)
def quantum(code: str) -> Decimal:
    """The smallest amount of ``code`` (Decimal('0.01') for USD, Decimal('1') for JPY)."""
    return Decimal(1).scaleb(-minor_units(code))


def accepts(policy: Policy, code: str) -> str | None:
    """Why ``code`` is refused for ``policy``, or None when it is accepted."""
    if not isinstance(code, str) or not known(code):
        return f"{code!r} is not an ISO 4217 currency code (with a minor unit)"
    if policy.currencies and code not in policy.currencies:
        return f"amounts are in {', '.join(policy.currencies)} for this vendor, found {code}"
    return None


def split(raw: Any) -> tuple[Any, str | None]:
    """A money fact's value and its currency code (None when the value is plain)."""
    if isinstance(raw, str):  # the usual form, tested before the slower Mapping check
        stripped = raw.strip()
        if " " in stripped:
            value, code = stripped.rsplit(" ", 1)
            return value, code
        return raw, None
    if isinstance(raw, Mapping):
        return raw.get("value"), raw.get("currency")
    return raw, None


def _money_values(policy: Policy, facts: Mapping[str, Any]) -> list[tuple[tuple[Any, ...], Any]]:
    """(path, raw value) of every money fact of a case, list fields included, in case order."""
    out: list[tuple[tuple[Any, ...], Any]] = []
    declared = policy.facts
    for name, raw in facts.items():  # the case's few facts, not every declared one
        decl = declared.get(name)
        if decl is None or raw is None:
            continue
        if decl.type.kind == "money":
            out.append(((name,), raw))
        elif decl.type.kind == "list" and isinstance(raw, list):
            money_fields = [k for k, f in decl.fields.items() if f.type.kind == "money"]
            for i, item in enumerate(raw):
                if isinstance(item, Mapping):
                    out += [((name, i, k), item[k]) for k in money_fields if item.get(k) is not None]
    return out


def case_currency(case: Case, policy: Policy) -> str:
    """The currency a case is decided in: the one its money facts name, else the default.

    Run after the facts are coerced (which checks each code). A plain amount
    (``"12.50"``) is in the case's currency: the one the other money facts
    name, else the policy's (named or first accepted) currency. Raises
    :class:`CaseError` for money facts in two currencies (naming both facts),
    and for plain amounts only where the policy accepts any currency and no
    fact names one.
    """
    found: tuple[tuple[Any, ...], str] | None = None
    plain: list[tuple[Any, ...]] = []
    problems = []
    for path, raw in _money_values(policy, case.facts):
        code = split(raw)[1]
        if code is None:
            plain.append(path)
        elif found is None:
            found = (path, code)
        elif code != found[1]:
            problems.append(_diag(case, path, "case_currency", (
                f"fact {_label(path)} is in {code} but fact {_label(found[0])} is in {found[1]}: "
                "all amounts of one case must be in one currency")))
    if found is None and plain and not policy.currencies:
        problems += [_diag(case, path, "case_fact_type", (
            f"fact {_label(path)}: give the currency with the amount (\"12.50 SEK\" or "
            "{\"value\": \"12.50\", \"currency\": \"SEK\"}); this vendor accepts any ISO 4217 "
            "currency and has no default")) for path in plain]
    if problems:
        raise CaseError(problems)
    return found[1] if found else policy.currency


def _label(path: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in path)


def _diag(case: Case, path: tuple[Any, ...], code: str, message: str) -> Diagnostic:
    full = ("facts", *path)
    loc = case.document.loc(full) if case.document else None
    return Diagnostic(code, message, loc, json_path(full))
