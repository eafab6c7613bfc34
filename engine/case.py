"""Cases: read them, and coerce their facts to the types the policy declares.

Matching back ends compare raw values (durable_rules would let ``"99"`` pass
``> 100``, docs/design.md §4.5), so every fact is checked and converted here, and
any mistake is reported against the fact's name, never guessed around.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Callable, Mapping
from zoneinfo import ZoneInfo

from engine import currency
from engine._yaml import Document, json_path
from engine.errors import CaseError, Diagnostic
from engine.limits import (MAX_DURATION, MAX_INTEGER, MAX_MAGNITUDE, MAX_NUMBER_TEXT, MAX_PLACES, MAX_YEAR,  # noqa: F401
                           MIN_YEAR, bad_text, decimal_problem, parse_decimal, shown, shown_text, text_problems,
                           whole_number)

if TYPE_CHECKING:
    from engine.model import FactDecl, Policy

# ASCII digits only, at most 12 per part: the value is bounded before it is built.
_DURATION = re.compile(r"P(?:([0-9]{1,12})D)?(?:T(?:([0-9]{1,12})H)?(?:([0-9]{1,12})M)?"
                       r"(?:([0-9]{1,12}(?:\.[0-9]{1,6})?)S)?)?")


@dataclass(frozen=True, slots=True)
class Case:
    """A case as given: which decision of which vendor, on which day, with which facts."""

    vendor: str
    kind: str
    facts: Mapping[str, Any]
    id: str | None = None
    as_of: date | None = None
    document: Document | None = None

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], document: Document | None = None) -> Case:
        """Build a case from a mapping shaped like ``schemas/case.schema.json``."""
        if type(data) is dict:
            quick = _quick(cls, data, document)
            if quick is not None:
                return quick
        problems = _shape(data, document) or _text(data, document)
        if problems:
            raise CaseError(problems)
        as_of = data.get("as_of")
        if isinstance(as_of, str) and _ISO_DATE.fullmatch(as_of):
            try:
                as_of = date.fromisoformat(as_of)
            except ValueError:
                as_of = data.get("as_of")
        if as_of is not None and (not isinstance(as_of, date) or isinstance(as_of, datetime)):
            raise CaseError([_diag(document, ("as_of",), "case",
                                   f"as_of must be a date YYYY-MM-DD, found {_shown(as_of)}")])
        if as_of is not None and not MIN_YEAR <= as_of.year <= MAX_YEAR:
            raise CaseError([_diag(document, ("as_of",), "case", f"as_of {as_of.isoformat()} is outside "
                                   f"the supported years {MIN_YEAR}-{MAX_YEAR}")])
        case_id = data.get("id")
        if case_id is not None and (isinstance(case_id, bool) or not isinstance(case_id, (str, int))):
            # the case schema's string or integer; a Decimal such as 1e300000 would cost
            # seconds wherever it is turned into an integer (the log, a replay)
            raise CaseError([_diag(document, ("id",), "case",
                                   f"id must be a string or a whole number, found {_shown(case_id)}")])
        if type(case_id) is int and abs(case_id) >= MAX_ID:
            raise CaseError([_diag(document, ("id",), "case", "id is too large a number; give it as text")])
        control = _CONTROL.search(case_id) if type(case_id) is str else None
        if control:  # an identifier has none, and a PostgreSQL log cannot store U+0000
            raise CaseError([_diag(document, ("id",), "case", "id must not hold control characters (found "
                                   f"U+{ord(control.group()):04X} at position {control.start() + 1})")])
        return cls(vendor=data["vendor"], kind=data["kind"],
                   facts=MappingProxyType(dict(data.get("facts") or {})),
                   id=None if case_id is None else str(case_id), as_of=as_of, document=document)


MAX_ID = 10**64  # a whole-number case id beyond this is refused (its text would cost time, or fail)
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")  # Unicode's control characters (category Cc)
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_CASE_KEYS = frozenset({"id", "vendor", "kind", "as_of", "facts"})


def _quick(cls: type[Case], data: dict[str, Any], document: Document | None) -> Case | None:
    """The usual case (a plain dict, ASCII names, an ISO ``as_of``) read without the checking path.

    Accepts only what :meth:`Case.from_mapping`'s checks accept, and builds
    the same Case; anything else (every mistake included) returns None and
    takes the checking path, which reports it.
    """
    head = case_head(data)
    if head is None:
        return None
    vendor, kind, facts, case_id, as_of = head
    for name in facts:
        if type(name) is not str or not name.isascii():
            return None
    return cls(vendor=vendor, kind=kind, facts=MappingProxyType(dict(facts)), id=case_id, as_of=as_of,
               document=document)


def case_head(data: dict[str, Any]) -> tuple[str, str, dict[str, Any], str | None, date | None] | None:
    """(vendor, kind, facts, id, as_of) of a plain-dict case whose head is well formed, else None.

    The fact names are not looked at: the caller reads them (a name the
    policy does not declare sends the case down the checking path).
    """
    vendor, kind, facts = data.get("vendor"), data.get("kind"), data.get("facts", {})
    if (type(vendor) is not str or type(kind) is not str or type(facts) is not dict or not vendor or not kind
            or not vendor.isascii() or not kind.isascii() or not _CASE_KEYS.issuperset(data)):
        return None
    case_id, as_of = data.get("id"), data.get("as_of")
    if not (case_id is None or (type(case_id) is int and abs(case_id) < MAX_ID)
            or (type(case_id) is str and case_id.isascii() and case_id.isprintable())):
        return None
    if as_of is not None:
        if type(as_of) is not str or not as_of.isascii() or not _ISO_DATE.fullmatch(as_of):
            return None
        try:
            as_of = date.fromisoformat(as_of)
        except ValueError:
            return None
        if not MIN_YEAR <= as_of.year <= MAX_YEAR:
            return None
    return vendor, kind, facts, None if case_id is None else str(case_id), as_of


# Bounds that keep every computation exact and in range (and the Rete
# projection inside 2**52) live in engine.limits; re-exported here.


def _to_utc(moment: datetime, tz: ZoneInfo) -> datetime:
    """The moment in UTC; one without an offset is read in the vendor's time zone.

    Arithmetic on aware datetimes that share a zone is wall-clock arithmetic
    in Python (a DST night would count 3 hours for 2), so every moment is
    normalized to UTC. Local times a DST change skips or repeats are refused.
    """
    if not MIN_YEAR <= moment.year <= MAX_YEAR:
        raise ValueError(f"{moment.isoformat()} is outside the supported years {MIN_YEAR}-{MAX_YEAR}")
    if moment.tzinfo is not None:
        return moment.astimezone(timezone.utc)
    local = moment.replace(tzinfo=tz)
    as_utc = local.astimezone(timezone.utc)
    if as_utc.astimezone(tz).replace(tzinfo=None) != moment:
        raise ValueError(f"{moment.isoformat()} does not exist in {tz.key} (a clock change); "
                         "give the UTC offset")
    if local.utcoffset() != moment.replace(tzinfo=tz, fold=1).utcoffset():
        raise ValueError(f"{moment.isoformat()} happens twice in {tz.key} (a clock change); "
                         "give the UTC offset")
    return as_utc


def _check_number(value: Decimal | int) -> None:
    if isinstance(value, int):
        whole_number(value)
        return
    problem = decimal_problem(value)
    if problem:
        raise ValueError(problem)


def _shown(value: Any) -> str:
    """A value as the user wrote it (``1.5``, not ``Decimal('1.5')``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (Decimal, int)):
        return shown(value)
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:60]}… ({len(text)} characters)"


def _shape(data: Any, document: Document | None) -> list[Diagnostic]:
    if not isinstance(data, Mapping):
        return [_diag(document, (), "case", "a case must be a mapping with vendor, kind and facts")]
    out = []
    for key in ("vendor", "kind"):
        if not isinstance(data.get(key), str) or not data.get(key):
            out.append(_diag(document, (key,), "case", f"the case needs '{key}' (a string)"))
    facts = data.get("facts", {})
    if not isinstance(facts, Mapping):
        out.append(_diag(document, ("facts",), "case", "'facts' must be a mapping of name: value"))
    else:
        out += [_diag(document, ("facts",), "case", f"fact names are text, found {_shown(k)}")
                for k in facts if not isinstance(k, str)]
    for key in data:
        if key not in ("id", "vendor", "kind", "as_of", "facts", "$schema"):
            out.append(_diag(document, (key,), "case", f"unknown case field {key!r}; expected "
                             "id, vendor, kind, as_of, facts"))
    return out


def _text(data: Mapping[str, Any], document: Document | None) -> list[Diagnostic]:
    """The case's own strings and fact names must be valid text: a lone surrogate cannot be
    stored, logged or sent back as JSON. (String fact values are checked when coerced.)"""
    facts = data.get("facts") or {}
    if all(type(v) is not str or v.isascii() for v in data.values()) and all(
            type(k) is not str or k.isascii() for k in facts):
        return []  # the common case, in a few microseconds
    own = {k: v for k, v in data.items() if k != "facts"}
    found = text_problems(own) + text_problems({k: None for k in facts}, ("facts",))
    return [_diag(document, path, "case", message) for path, message in found]


def _diag(document: Document | None, path: tuple[Any, ...], code: str, message: str,
          hint: str | None = None) -> Diagnostic:
    loc = document.loc(path) if document else None
    return Diagnostic(code, message, loc, json_path(path), hint)


class _Coercer:
    def __init__(self, policy: Policy, document: Document | None) -> None:
        self.policy = policy
        self.document = document
        self.tz = ZoneInfo(policy.timezone)
        self.problems: list[Diagnostic] = []

    def bad(self, path: tuple[Any, ...], message: str) -> None:
        self.problems.append(_diag(self.document, ("facts", *path), "case_fact_type", message))

    def value(self, decl: FactDecl, raw: Any, path: tuple[Any, ...]) -> Any:
        label = "fact " + ".".join(str(p) for p in path)
        try:
            value = getattr(self, "to_" + decl.type.kind)(decl, raw, path)
        except (ValueError, TypeError, InvalidOperation) as err:
            self.bad(path, f"{label}: {err}")
            return None
        if decl.type.kind in ("integer", "decimal", "money") and value is not None:
            if decl.minimum is not None and value < decl.minimum:
                self.bad(path, f"{label}: {value} is below the minimum {decl.minimum}")
            if decl.maximum is not None and value > decl.maximum:
                self.bad(path, f"{label}: {value} is above the maximum {decl.maximum}")
        return value

    def to_bool(self, _d: FactDecl, raw: Any, _p: Any) -> bool:
        if isinstance(raw, bool):
            return raw
        raise TypeError(f"expected true or false, found {_shown(raw)}")

    def to_integer(self, _d: FactDecl, raw: Any, _p: Any) -> int:
        if isinstance(raw, bool) or not isinstance(raw, (int, Decimal)):
            raise TypeError(f"expected a whole number, found {_shown(raw)}")
        return whole_number(raw)  # checks the range before converting (1e300000 stays cheap)

    def to_decimal(self, _d: FactDecl, raw: Any, _p: Any) -> Decimal:
        if isinstance(raw, float):
            raise TypeError(f"expected an exact decimal (a string like \"12.50\" or a Decimal), "
                            f"found the binary float {_shown(raw)}")
        if isinstance(raw, bool) or not isinstance(raw, (int, Decimal, str)):
            raise TypeError(f"expected a number, found {_shown(raw)}")
        value = parse_decimal(raw) if isinstance(raw, str) else Decimal(raw)
        _check_number(value)
        return value

    def to_money(self, decl: FactDecl, raw: Any, path: Any) -> Decimal:
        """An amount; its currency is checked here and unified by :func:`currency.case_currency`."""
        if isinstance(raw, Mapping) and set(raw) != {"value", "currency"}:
            raise ValueError("money as a mapping needs exactly 'value' and 'currency'")
        raw, code = currency.split(raw)
        refused = currency.accepts(self.policy, code) if code is not None else None
        if refused:
            raise ValueError(refused)
        return self.to_decimal(decl, raw, path)

    def to_date(self, _d: FactDecl, raw: Any, _p: Any) -> date:
        if isinstance(raw, datetime):
            raise TypeError(f"expected a date, found the date-time {raw.isoformat()}")
        if isinstance(raw, str) and re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", raw):
            raw = date.fromisoformat(raw)
        if not isinstance(raw, date):
            raise TypeError(f"expected a date YYYY-MM-DD, found {_shown(raw)}")
        if not MIN_YEAR <= raw.year <= MAX_YEAR:
            raise ValueError(f"{raw.isoformat()} is outside the supported years {MIN_YEAR}-{MAX_YEAR}")
        return raw

    def to_datetime(self, _d: FactDecl, raw: Any, _p: Any) -> datetime:
        if isinstance(raw, str):
            try:
                raw = datetime.fromisoformat(raw)
            except ValueError:
                raise ValueError("expected an ISO date-time like 2025-03-01T14:30:00-06:00, "
                                 f"found {_shown(raw)}") from None
        if not isinstance(raw, datetime):
            raise TypeError(f"expected a date-time, found {_shown(raw)}")
        return _to_utc(raw, self.tz)

    def to_duration(self, _d: FactDecl, raw: Any, _p: Any) -> timedelta:
        if isinstance(raw, timedelta):
            value = raw
        else:
            m = _DURATION.fullmatch(raw) if isinstance(raw, str) else None
            if not m or raw in ("P", "PT") or raw.endswith("T"):
                raise ValueError(f"expected an ISO 8601 duration like PT1H30M or P2D, found {_shown(raw)}")
            d, h, mi, s = (int(x) if x and "." not in x else Decimal(x or 0) for x in m.groups())
            seconds = ((d * 24 + h) * 60 + mi) * 60 + s  # exact, and small: at most 13 digits each
            if seconds > MAX_DURATION.total_seconds():
                raise ValueError(f"{raw} is out of range (durations are at most {MAX_DURATION.days:,} days)")
            value = timedelta(microseconds=int(Decimal(seconds) * 1000000))
        if abs(value) > MAX_DURATION:
            raise ValueError(f"{value} is out of range (durations are at most {MAX_DURATION.days:,} days)")
        return value

    def to_enum(self, decl: FactDecl, raw: Any, _p: Any) -> str:
        if raw not in decl.type.values:
            raise ValueError(f"expected one of {', '.join(decl.type.values)}, found {_shown(raw)}")
        return str(raw)

    def to_string(self, _d: FactDecl, raw: Any, _p: Any) -> str:
        if not isinstance(raw, str):
            raise TypeError(f"expected a string, found {_shown(raw)}")
        if bad_text(raw):
            raise ValueError(f"{shown_text(raw)} is not valid text (a lone UTF-16 surrogate)")
        return raw

    def to_list(self, decl: FactDecl, raw: Any, path: tuple[Any, ...]) -> list[dict[str, Any]]:
        if not isinstance(raw, list):
            raise TypeError(f"expected a list of records, found {_shown(raw)}")
        out = []
        for i, item in enumerate(raw):
            if not isinstance(item, Mapping):
                self.bad((*path, i), f"fact {path[0]}[{i}]: expected a record, found {item!r}")
                continue
            out.append(self.record(decl, item, (*path, i)))
        return out

    def record(self, decl: FactDecl, item: Mapping[str, Any], path: tuple[Any, ...]) -> dict[str, Any]:
        for key in item:
            if key not in decl.fields:
                self.bad((*path, key), f"fact {path[0]}[{path[1]}]: unknown field {key!r}; "
                         f"fields are {', '.join(decl.fields)}")
        rec = {}
        for name, fdecl in decl.fields.items():
            if name not in item:
                self.bad(path, f"fact {path[0]}[{path[1]}]: missing field {name!r}")
            else:
                rec[name] = self.value(fdecl, item[name], (*path, name))
        return rec


_SLOW = object()
SLOW = _SLOW  # what a fact reader returns for a value it leaves to the checking path

def _fast(decl: FactDecl, raw: Any) -> Any:
    """The common, well-formed inputs, converted without the checking path.

    Returns ``_SLOW`` for anything else (including every mistake), which
    :class:`_Coercer` then converts or reports with a full message.
    """
    kind = decl.type.kind
    typ = type(raw)
    value: Any = _SLOW
    if kind == "bool":
        return raw if typ is bool else _SLOW
    if kind == "date":
        if typ is str and len(raw) == 10 and raw[4] == "-" and raw[7] == "-" and "1900" <= raw[:4] <= "2999":
            try:
                return date.fromisoformat(raw)
            except ValueError:
                return _SLOW
        return _SLOW
    if kind == "enum":
        return raw if typ is str and raw in decl.type.values else _SLOW
    if kind == "datetime":
        if typ is str and len(raw) > 19 and raw[10] == "T":
            try:
                moment = datetime.fromisoformat(raw)
            except ValueError:
                return _SLOW
            if moment.tzinfo is None or not MIN_YEAR <= moment.year <= MAX_YEAR:
                return _SLOW
            return moment.astimezone(timezone.utc)
        return _SLOW
    if kind == "list":
        return _fast_records(decl, raw) if typ is list else _SLOW
    if kind in ("money", "decimal"):
        if typ is str:
            value = _decimal_text(raw)
        elif typ is Decimal or typ is int:
            value = Decimal(raw)
            if decimal_problem(value):  # no arithmetic on it before the bounds
                return _SLOW
    elif kind == "integer" and typ is int and abs(raw) < MAX_INTEGER:
        value = raw
    if value is not _SLOW and _outside(value, decl.minimum, decl.maximum):
        return _SLOW
    return value


def _decimal_text(raw: str) -> Any:
    """A plain decimal written as text (ASCII, no spaces or ``_``, at most 64 characters),
    checked against the engine's range; ``_SLOW`` for anything else."""
    if len(raw) <= 12 and raw.isascii() and raw.replace(".", "", 1).isdigit():
        return Decimal(raw)  # at most 12 digits, point or not: below 10**12, at most 11 places — in range
    if len(raw) > MAX_NUMBER_TEXT or " " in raw or "_" in raw or not raw.isascii():
        return _SLOW
    try:
        value = Decimal(raw)
    except InvalidOperation:
        return _SLOW
    return _SLOW if decimal_problem(value) else value


def _outside(value: Any, lo: Decimal | None, hi: Decimal | None) -> bool:
    return (lo is not None and value < lo) or (hi is not None and value > hi)


def _fast_records(decl: FactDecl, raw: list[Any]) -> Any:
    out = []
    fields = decl.fields
    for item in raw:
        if type(item) is not dict or item.keys() != fields.keys():
            return _SLOW
        rec = {name: _fast(fields[name], value) for name, value in item.items()}
        if _SLOW in rec.values():
            return _SLOW
        out.append(rec)
    return out


def fact_readers(policy: Policy) -> dict[str, Callable[[Any], Any]]:
    """Per declared fact, a converter specialised to its type (built once, at compile time).

    Each does exactly what :func:`_fast` does for its declaration, without
    dispatching on the type for every value of every case.
    """
    return {name: _reader(decl) for name, decl in policy.facts.items()}


def _reader(decl: FactDecl) -> Callable[[Any], Any]:
    kind = decl.type.kind
    if kind == "bool":
        return lambda raw: raw if type(raw) is bool else _SLOW
    if kind == "enum":
        values = frozenset(decl.type.values)
        return lambda raw: raw if type(raw) is str and raw in values else _SLOW
    lo, hi = decl.minimum, decl.maximum
    if kind in ("money", "decimal"):
        def amount(raw: Any) -> Any:
            if type(raw) is not str:
                return _fast(decl, raw)
            value = _decimal_text(raw)
            return _SLOW if value is _SLOW or _outside(value, lo, hi) else value
        return amount
    if kind == "integer":
        def integer(raw: Any) -> Any:
            if type(raw) is int and abs(raw) < MAX_INTEGER and not _outside(raw, lo, hi):
                return raw
            return _fast(decl, raw)
        return integer
    return lambda raw: _fast(decl, raw)


def coerce_facts(case: Case, policy: Policy,
                 readers: Mapping[str, Callable[[Any], Any]] | None = None) -> dict[str, Any]:
    """The case's facts converted to their declared types (absent facts stay absent).

    ``readers`` (:func:`fact_readers`, compiled once per policy) convert the
    well-formed values; anything else goes through the checking path.

    Raises:
        CaseError: naming every unknown fact and every value of the wrong type.
    """
    coercer: _Coercer | None = None
    out: dict[str, Any] = {}
    declared = policy.facts
    readers = readers or fact_readers(policy)
    for name, raw in case.facts.items():
        decl = declared.get(name)
        if decl is None:
            coercer = coercer or _Coercer(policy, case.document)
            coercer.problems.append(_unknown(case, policy, name))
        elif raw is not None:  # an explicit null means "not known", like an absent fact
            value = readers[name](raw)
            if value is _SLOW:
                coercer = coercer or _Coercer(policy, case.document)
                value = coercer.value(decl, raw, (name,))
            out[name] = value
    if coercer and coercer.problems:
        raise CaseError(coercer.problems)
    return out


def _unknown(case: Case, policy: Policy, name: str) -> Diagnostic:
    if name in policy.derived:
        message = f"fact {name!r} is derived by the {policy.vendor} policy; do not give it"
        hint = None
    elif name == "as_of":
        message = "'as_of' is not a fact: it is the case's decision date"
        hint = "move it to the top level of the case, next to vendor and kind"
    else:
        message = f"unknown fact {name!r}: the {policy.vendor} policy does not declare it"
        close = difflib.get_close_matches(name, list(policy.facts), n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"`clause facts {policy.vendor}` lists them"
    loc = case.document.key_loc(("facts", name)) if case.document else None
    return Diagnostic("unknown_fact", message, loc, json_path(("facts", name)), hint)
