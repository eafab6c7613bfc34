"""The Rete back end on durable_rules' C core — the only module that imports it.

Hardened against every pitfall measured in docs/design.md §4:

1. every rule carries ``{"$nex": {"$s": 1}}`` so the auto-asserted state fact
   never matches;
2. one internal rule fires on every case, so ``delete_state`` always follows
   an action;
3. one sid per ruleset instance, always deleted after the case (no sid
   exhaustion, no poisoned sids);
4. fields are projected onto short names checked collision-free under the
   32-bit FNV-1a hash the core uses;
5. facts reach the core already coerced to their declared types;
6. decimals, money, dates, datetimes and durations travel as integers
   (see :func:`_scaled`), never as floats or exponents;
7. wide membership lists never reach the core (the IR lowers them), and rule
   and field counts are checked at compile time;
   a kind's rules are split over several rulesets so that no case can make
   64 tests true in one of them (error 303, :mod:`engine.match.budget`);
8. the generated ruleset is checked before it is handed over, and the core's
   bare error numbers are wrapped with the policy and kind;
9. calls hold the GIL anyway, so each ruleset is guarded by its own lock.

The Host layer (``durable.lang``/``durable.engine``) is never used.
"""

from __future__ import annotations

import decimal
import json
import math
import threading
import uuid
import weakref
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Callable

from engine.errors import Diagnostic, EvaluationError, MatcherUnavailable, PolicyError
from engine.match import budget, ir

if TYPE_CHECKING:
    from engine.compiler import CompiledPolicy, CompiledKind
    from engine.expressions.types import Type

MAX_RULES = 2000  # per kind: load time grows with the rulesets the budget splits them into
MAX_FIELDS = 200
MAX_SAFE = 2**53  # integers a double holds exactly, whatever the core parses them as
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_WIDE = decimal.Context(prec=200, Emax=10**6, Emin=-(10**6))
_OPS = {"<": "$lt", "<=": "$lte", ">": "$gt", ">=": "$gte", "!=": "$neq"}
_RESERVED = ("sid", "id", "$s", "k")


def load_core() -> Any:
    """Import the C core, or explain why it cannot run here."""
    try:
        import durable_rules_engine  # noqa: PLC0415 - optional, imported on demand
    except ImportError as err:
        import sys  # noqa: PLC0415
        raise MatcherUnavailable([Diagnostic(
            "matcher_unavailable",
            f"the rete matcher needs durable-rules' C module, which does not import on "
            f"Python {sys.version_info.major}.{sys.version_info.minor}: {err}",
            hint="use the default matcher (--matcher python), or Python 3.11/3.12 with "
                 "durable-rules installed (it builds from source with gcc)")]) from err
    return durable_rules_engine


def fnv1a_32(text: str) -> int:
    h = 0x811C9DC5
    for byte in text.encode():
        h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    return h


def _field_names(fields: list[str]) -> dict[str, str]:
    """Short projected names, distinct from each other and reserved names under FNV-1a."""
    taken = {fnv1a_32(r) for r in _RESERVED}
    out: dict[str, str] = {}
    n = 0
    for name in fields:
        while fnv1a_32(f"f{n}") in taken:
            n += 1
        out[name] = f"f{n}"
        taken.add(fnv1a_32(f"f{n}"))
        n += 1
    return out


def _scaled(value: Any, scale: int) -> int:
    """Exact order-preserving integer for a number: 2·v·10^s, or odd if v has more places.

    Constants have at most ``scale`` places, so they map to even integers; a
    case value between two of them maps to the odd integer between, which
    keeps every <, =, > against the constants exact.
    """
    n = Decimal(value).scaleb(scale, context=_WIDE)  # exact: no rounding to 34 digits
    if abs(n) >= MAX_SAFE:  # clamp before math.floor builds a huge int
        return MAX_SAFE if n > 0 else -MAX_SAFE
    floor = math.floor(n)
    out = 2 * floor + (0 if n == floor else 1)
    # Beyond every constant (they are checked to stay below MAX_SAFE / 2).
    return max(-MAX_SAFE, min(MAX_SAFE, out))


def _projector(typ: Type, scale: int) -> Callable[[Any], Any]:
    kind = typ.kind
    if kind == "bool":
        return lambda v: 1 if v else 0
    if kind in ("integer", "decimal", "money"):
        return lambda v: _scaled(v, scale)
    if kind == "date":
        return lambda v: v.toordinal()
    if kind == "datetime":  # seconds since the epoch, with the constants' places
        return lambda v: _scaled(Decimal((v - _EPOCH) // timedelta(microseconds=1)).scaleb(-6), scale)
    if kind == "duration":
        return lambda v: _scaled(Decimal(v // timedelta(microseconds=1)).scaleb(-6), scale)
    return str


def _constant_scale(values: list[Any]) -> int:
    """Decimal places the constants need (microseconds count for moments and durations)."""
    places = 0
    for v in values:
        if isinstance(v, Decimal):
            places = max(places, -min(v.as_tuple().exponent, 0))  # type: ignore[operator]
        elif (isinstance(v, datetime) and v.microsecond) or (isinstance(v, timedelta) and v.microseconds):
            places = max(places, 6)
    return places


class _KindRuleset:
    """The durable_rules rulesets of one kind (as many as the true-test budget needs), one projection."""

    def __init__(self, core: Any, compiled: CompiledPolicy, kind: CompiledKind) -> None:
        self.core = core
        self.lock = threading.Lock()
        self.kind_name = kind.kind.name
        leaves = [leaf for r in kind.rules for leaf in ir.leaves(r.cond)]
        fields = sorted({leaf.field for leaf in leaves})
        if len(kind.rules) > MAX_RULES or len(fields) > MAX_FIELDS:
            raise PolicyError([Diagnostic(
                "limit", f"kind {kind.kind.name!r} has {len(kind.rules)} rules and {len(fields)} "
                f"fields; the rete matcher takes at most {MAX_RULES} and {MAX_FIELDS}",
                kind.kind.rules[0].location)])
        self.names = _field_names(fields)
        self.projections: list[tuple[str, str, Callable[[Any], Any]]] = []
        for name in fields:
            consts = [v for leaf in leaves if leaf.field == name
                      for v in (leaf.values if isinstance(leaf, ir.In) else
                                (leaf.value,) if isinstance(leaf, ir.Cmp) else ())]
            project = _projector(compiled.field_types[name], _constant_scale(consts))
            self.projections.append((name, self.names[name], project))
        self.project_const = {name: p for name, _, p in self.projections}
        self.rule_ids = {f"r{r.rule.index}": r.rule.index for r in kind.rules}
        groups, too_wide = budget.split([r.cond for r in kind.rules])
        if too_wide:
            rule = kind.rules[too_wide[0]].rule
            raise PolicyError([Diagnostic(
                "limit", f"rule {rule.id!r} alone can make more than {budget.BUDGET} tests true at once; "
                "the rete matcher's core fails at 64 (split the rule, or use --matcher python)",
                rule.location)])
        self.texts: list[str] = []
        for group in groups:
            definition = {f"r{kind.rules[i].rule.index}": {"all": [{"m": {"$and": [
                {"$nex": {"$s": 1}}, self.condition(kind.rules[i].cond)]}}]} for i in group}
            definition["guard"] = {"all": [{"m": {"$and": [{"$nex": {"$s": 1}}, {"k": 1}]}}]}
            _check_numbers(definition)
            self.texts.append(json.dumps(definition, ensure_ascii=False))
        self.prefix = f"clause-{compiled.policy.vendor}-{kind.kind.name}"
        self.location = kind.kind.rules[0].location
        self.handles: list[Any] = []
        try:
            for text in self.texts:
                self.handles.append(self._create(text))
        except PolicyError:
            for handle in self.handles:
                core.delete_ruleset(handle)
            raise

    def _create(self, text: str) -> Any:
        try:
            return self.core.create_ruleset(f"{self.prefix}-{uuid.uuid4().hex}", text)
        except Exception as err:  # noqa: BLE001 - the core raises bare error numbers
            raise PolicyError([Diagnostic(
                "limit", f"durable_rules refused the ruleset for kind {self.kind_name!r}: {err}",
                self.location)]) from err

    def condition(self, cond: ir.Cond) -> dict[str, Any]:
        if isinstance(cond, (ir.All, ir.Any)):
            if not cond.items:  # constant true / false
                return {"k": 1} if isinstance(cond, ir.All) else {"k": 2}
            parts = [self.condition(c) for c in cond.items]
            if len(parts) == 1:
                return parts[0]
            return {"$and" if isinstance(cond, ir.All) else "$or": parts}
        field = self.names[cond.field]
        if isinstance(cond, ir.Exists):
            return {"$ex" if cond.present else "$nex": {field: 1}}
        project = self.project_const[cond.field]
        if isinstance(cond, ir.In):
            values = [project(v) for v in cond.values]
            if cond.negated:
                return {"$and": [{"$neq": {field: v}} for v in values]}
            return {"$or": [{field: v} for v in values]} if len(values) > 1 else {field: values[0]}
        value = project(cond.value)
        if not isinstance(value, str) and abs(value) >= MAX_SAFE // 2:
            raise PolicyError([Diagnostic("limit", f"the constant in {cond.text!r} is too large for "
                                          "the rete matcher")])
        return {field: value} if cond.op == "==" else {_OPS[cond.op]: {field: value}}

    def match(self, facts: dict[str, Any]) -> list[int]:
        fact: dict[str, Any] = {"sid": "0", "k": 1}
        for name, short, project in self.projections:
            if name in facts:
                fact[short] = project(facts[name])
        text = json.dumps(fact, ensure_ascii=False)
        fired: list[int] = []
        with self.lock:
            for i in range(len(self.handles)):
                self._fire(i, text, fired)
        return sorted(set(fired))  # an $or fires once per true branch

    def _fire(self, i: int, text: str, fired: list[int]) -> None:
        """Assert the case in ruleset ``i``; a failure of the core becomes an EvaluationError."""
        handle = self.handles[i]
        try:
            _code, state = self.core.assert_fact(handle, text)
        except Exception as err:  # noqa: BLE001 - bare error numbers; the state may be half-built
            self._replace(i)
            raise EvaluationError([Diagnostic(
                "evaluation", f"the rete matcher's core failed on this case of kind {self.kind_name!r} "
                f"({err}); the python matcher decides it")]) from err
        try:
            result = self.core.start_action_for_state(handle, state)
            message = result[1] if result else None
            while message:
                rule = message[2:message.index('"', 2)]
                if rule in self.rule_ids:
                    fired.append(self.rule_ids[rule])
                message = self.core.complete_and_start_action(handle, state)
        finally:
            self.core.delete_state(handle, "0")

    def _replace(self, i: int) -> None:
        """A fresh ruleset for one whose state a failed assert may have left half-built."""
        old, self.handles[i] = self.handles[i], self._create(self.texts[i])
        try:
            self.core.delete_ruleset(old)
        except Exception:  # noqa: BLE001, S110 - the old handle is dropped either way
            pass


def _check_numbers(node: Any) -> None:
    """Everything numeric must be an int the core's parser reads exactly."""
    if isinstance(node, dict):
        for v in node.values():
            _check_numbers(v)
    elif isinstance(node, list):
        for v in node:
            _check_numbers(v)
    elif isinstance(node, (float, Decimal)) or (isinstance(node, int) and abs(node) > MAX_SAFE):
        raise PolicyError([Diagnostic("limit", f"value {node!r} cannot be sent to durable_rules")])


def _delete(core: Any, owners: list[dict[str, _KindRuleset]]) -> None:
    """Delete every ruleset (the current handles: a replaced one was deleted already)."""
    for kinds in owners:
        for ruleset in kinds.values():
            for handle in ruleset.handles:
                core.delete_ruleset(handle)


class ReteMatcher:
    """Matches cases on durable_rules' C core: per kind, as many rulesets as the true-test budget needs."""

    name = "rete"

    def __init__(self, compiled: CompiledPolicy) -> None:
        core = load_core()
        self._kinds: dict[str, _KindRuleset] = {}
        handles: list[Any] = []
        self._finalizer = weakref.finalize(self, _delete, core, handles)
        handles.append(self._kinds)  # before building: a later kind's failure frees the earlier ones
        for name, kind in compiled.kinds.items():
            self._kinds[name] = _KindRuleset(core, compiled, kind)

    def match(self, kind: str, facts: dict[str, Any]) -> list[int]:
        """Indices (file order) of the kind's rules whose condition is true."""
        return self._kinds[kind].match(facts)

    def close(self) -> None:
        """Delete the rulesets now rather than at garbage collection."""
        self._finalizer()

