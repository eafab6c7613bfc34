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
   (see :func:`engine.match.projection.scaled`), never as floats or
   exponents, projected by one function generated per kind;
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

import json
import threading
import uuid
import weakref
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Callable

from engine.errors import Diagnostic, EvaluationError, MatcherUnavailable, PolicyError
from engine.match import budget, ir
from engine.match.projection import MAX_SAFE, compile_projection, constant_scale, projector, scaled

if TYPE_CHECKING:
    from engine.compiler import CompiledPolicy, CompiledKind
    from engine.expressions.types import Type

MAX_RULES = 2000  # per kind: load time grows with the rulesets the budget splits them into
MAX_FIELDS = 200
_OPS = {"<": "$lt", "<=": "$lte", ">": "$gt", ">=": "$gte", "!=": "$neq"}
_RESERVED = ("sid", "id", "$s", "k")
_scaled = scaled  # the exact integer map of numbers and moments (tests read it here)


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
        self.fields: list[tuple[str, str, Type, int]] = []  # fact, short name, type, scale
        self.project_const: dict[str, Callable[[Any], Any]] = {}
        for name in fields:
            consts = [v for leaf in leaves if leaf.field == name
                      for v in (leaf.values if isinstance(leaf, ir.In) else
                                (leaf.value,) if isinstance(leaf, ir.Cmp) else ())]
            typ, scale = compiled.field_types[name], constant_scale(consts)
            self.fields.append((name, self.names[name], typ, scale))
            self.project_const[name] = projector(typ, scale)
        self.project = compile_projection(self.fields, f"{compiled.policy.vendor}/{kind.kind.name}")
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
        """The kind's matching rules: the case projected once, asserted in each ruleset under the lock."""
        text = self.project(facts)
        with self.lock:
            if len(self.handles) == 1:  # the common case: no budget split
                fired = self._fire(0, text)
            else:
                fired = [rule for i in range(len(self.handles)) for rule in self._fire(i, text)]
        # An $or fires once per true branch, and the core's order is its own.
        return fired if len(fired) < 2 else sorted(set(fired))

    def _fire(self, i: int, text: str) -> list[int]:
        """The rules that fire in ruleset ``i``; any failure of the core becomes an EvaluationError.

        After a failure the ruleset is replaced by a fresh one, without
        ``delete_state`` on the failed state (that call can abort the process
        after a core error, docs/design.md §4).
        """
        core, handle = self.core, self.handles[i]
        fired: list[int] = []
        ids = self.rule_ids  # "r<index>" -> index; the guard rule is not in it
        try:
            state = core.assert_fact(handle, text)[1]
            result = core.start_action_for_state(handle, state)
            message = result[1] if result else None
            while message:  # '{"<rule>": ...': the id sliced out, cheaper than json.loads
                rule = ids.get(message[2:message.index('"', 2)])
                if rule is not None:
                    fired.append(rule)
                message = core.complete_and_start_action(handle, state)
            core.delete_state(handle, "0")
        except Exception as err:  # noqa: BLE001 - bare error numbers; the state may be half-built
            self._replace(i)
            raise EvaluationError([Diagnostic(
                "evaluation", f"the rete matcher's core failed on this case of kind {self.kind_name!r} "
                f"({err}); the python matcher decides it")]) from err
        return fired

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

    def kind_function(self, kind: str) -> Callable[[dict[str, Any]], list[int]]:
        """``match`` for one kind, bound once: the generated decide path calls it per case."""
        return self._kinds[kind].match

    def close(self) -> None:
        """Delete the rulesets now rather than at garbage collection."""
        self._finalizer()

