"""Generate cases for a kind from the facts' declared types, biased to boundaries.

Used by ``clause lint`` (shadowed rules, overlaps, gaps) and ``clause diff``
without a corpus. Values come from small candidate lists: every enum value
and both booleans; the constants the rules compare a fact with, one unit
either side; and for dates a common anchor plus offsets that straddle the
usual limits (7/8, 14/15, 34/35 days, month ends, six months), so that
differences between two dates land on both sides of each limit. Sampling is
seeded by vendor and kind, so results are reproducible.
"""

from __future__ import annotations

import random
import zlib
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Callable

from engine.match import ir

if TYPE_CHECKING:
    from engine.compiler import CompiledPolicy
    from engine.model import FactDecl

DAY_OFFSETS = (0, 1, 2, 5, 6, 7, 8, 9, 10, 13, 14, 15, 16, 20, 28, 29, 30, 31, 33, 34, 35, 36,
               59, 60, 61, 90, 179, 180, 181, 182, 183, 184, 185, 365, 366, 400)
NUMBERS = (Decimal(0), Decimal(1), Decimal("9.99"), Decimal(10), Decimal(25), Decimal(100),
           Decimal("166.67"), Decimal(1000), Decimal("25000.50"), Decimal(100000))
MINUTES = (0, 1, 30, 59, 60, 61, 120, 600, 1440, 2880)
FORCE_WINDOW = 32  # conditions above a rule forced afresh per aimed case


class Sampler:
    """Candidate values per fact for one compiled policy."""

    def __init__(self, compiled: CompiledPolicy, anchor: date | None = None) -> None:
        self.compiled = compiled
        self._lowered: dict[str, ir.Cond] = {}
        self._candidates: dict[tuple[str, int], list[Any]] = {}
        self._negated: dict[int, tuple[ir.Cond, ir.Cond]] = {}
        self._chain: list[dict[str, Any]] = [{}]
        self._chain_of: list[ir.Cond] = []
        policy = compiled.policy
        self.anchor = anchor or max(policy.effective_from, date(2025, 1, 1))
        if policy.effective_until and self.anchor > policy.effective_until:
            self.anchor = policy.effective_from
        self.constants: dict[str, list[Any]] = {}
        for kind in compiled.kinds.values():
            for rule in kind.rules:
                for leaf in ir.leaves(rule.cond):
                    values = leaf.values if isinstance(leaf, ir.In) else (
                        (leaf.value,) if isinstance(leaf, ir.Cmp) else ())
                    self.constants.setdefault(leaf.field, []).extend(values)
        # Day counts the rules compare with (8 days, 34 days...) become offsets
        # between dates, one day either side included.
        days = {int(v) + d for vs in self.constants.values() for v in vs
                if isinstance(v, (int, Decimal)) and not isinstance(v, bool) and 0 < v <= 400
                and v == int(v) for d in (-1, 0, 1)}
        self.offsets = sorted(set(DAY_OFFSETS) | days)
        # Dates the policy names (a switch-over day, an effective date): cases
        # are also placed on both sides of them.
        exprs = [d.expr for d in policy.derived.values()] + [
            r.when for k in policy.kinds.values() for r in k.rules]
        self.date_literals = sorted({v for e in exprs for v in e.checked.constants.values()
                                     if isinstance(v, date) and not isinstance(v, datetime)})

    def candidates(self, name: str, decl: FactDecl) -> list[Any]:
        """The values drawn for a fact (computed once: they grow with the rules' constants)."""
        key = (name, id(decl))
        if key not in self._candidates:
            self._candidates[key] = self._candidates_of(name, decl)
        return self._candidates[key]

    def _candidates_of(self, name: str, decl: FactDecl) -> list[Any]:
        kind = decl.type.kind
        consts = [c for c in self.constants.get(name, []) if not isinstance(c, bool)]
        if kind == "bool":
            return [True, False]
        if kind == "enum":
            return list(decl.type.values)
        if kind in ("integer", "decimal", "money"):
            steps = (-1, 0, 1) if kind == "integer" else (-1, Decimal("-0.01"), 0, Decimal("0.01"), 1)
            near = [v + d for v in consts if isinstance(v, (int, Decimal)) for d in steps]
            ordered = sorted(Decimal(v) for v in consts if isinstance(v, (int, Decimal)))
            near += [(a + b) / 2 for a, b in zip(ordered, ordered[1:], strict=False)]  # between two limits
            values = [Decimal(v) for v in (*NUMBERS, *near)] if kind != "integer" else [
                int(v) for v in (*NUMBERS, *near) if v == int(v)]
            return [v for v in values if _within(decl, v)] or [decl.minimum or 0]
        if kind == "date":
            near = [c + timedelta(days=d) for c in consts if isinstance(c, date) for d in (-1, 0, 1)]
            return [self.anchor + timedelta(days=d) for d in self.offsets] + near
        if kind == "datetime":
            base = datetime.combine(self.anchor, datetime.min.time(), tzinfo=timezone.utc)
            return [base + timedelta(days=d, minutes=m) for d in (0, 1, 10) for m in MINUTES]
        if kind == "duration":
            return [timedelta(minutes=m) for m in MINUTES]
        if kind == "string":
            return ["", "x"]
        return []  # lists are built by record()

    def value(self, rng: random.Random, name: str, decl: FactDecl, base: date) -> Any:
        kind = decl.type.kind
        if kind == "list":
            return [{k: self.value(rng, k, f, base) for k, f in decl.fields.items()}
                    for _ in range(rng.choice((0, 1, 1, 2)))]
        if kind == "date" and rng.random() < 0.9:
            return base + timedelta(days=rng.choice(self.offsets))
        if kind == "datetime":
            start = datetime.combine(base, datetime.min.time(), tzinfo=timezone.utc)
            return start + timedelta(days=rng.choice((0, 1, 10)), minutes=rng.choice(MINUTES))
        return rng.choice(self.candidates(name, decl))

    def aiming(self, ranked: list[ir.Cond], target: ir.Cond) -> Callable[[random.Random], dict[str, Any]]:
        """Forcing for cases aimed at ``target``: the conditions ranked above it false, it true.

        The nearest :data:`FORCE_WINDOW` conditions above are forced afresh
        for every case; those further up once, in a fixed merge shared by all
        cases (:meth:`_prefix`), so a case costs the same for rule 3,000 as
        for rule 30 (lint stays near-linear in the number of rules).
        """
        cut = max(0, len(ranked) - FORCE_WINDOW)
        base = self._prefix(ranked, cut)
        negated = [self.negation(cond) for cond in ranked[cut:]]

        def force(rng: random.Random) -> dict[str, Any]:
            out: dict[str, Any] = dict(base)
            for cond in negated:
                out.update(self.forcing(cond, rng))
            out.update(self.forcing(target, rng))
            return out
        return force

    def _prefix(self, ranked: list[ir.Cond], cut: int) -> dict[str, Any]:
        """The merged forcing of ``not c`` for the first ``cut`` conditions (built incrementally)."""
        done = self._chain_of
        same = len(done) <= len(ranked) and all(a is b for a, b in zip(done, ranked))
        chain = self._chain if same else [{}]
        while len(chain) <= cut:
            index = len(chain) - 1
            merged = dict(chain[-1])
            merged.update(self.forcing(self.negation(ranked[index]), random.Random(index)))
            chain.append(merged)
        self._chain, self._chain_of = chain, ranked[:len(chain) - 1]
        return chain[cut]

    def negation(self, cond: ir.Cond) -> ir.Cond:
        """``not cond`` in negation normal form, built once per condition."""
        entry = self._negated.get(id(cond))
        if entry is None or entry[0] is not cond:
            entry = (cond, ir.negate(cond))
            self._negated[id(cond)] = entry
        return entry[1]

    def forcing(self, cond: ir.Cond, rng: random.Random | None = None) -> dict[str, Any]:
        """Values of bool and enum facts that make the gates of ``cond`` true.

        Follows the conjunction (and the first operand of a disjunction) down
        to leaves on declared facts, through derived facts too (``returned_complete
        = undamaged and packaged``), so that a rule behind many yes/no gates
        gets cases where all of them hold.
        """
        policy = self.compiled.policy
        out: dict[str, Any] = {}
        stack = [cond]
        seen: set[str] = set()
        while stack:
            node = stack.pop()
            if isinstance(node, ir.All):
                stack.extend(node.items)
            elif isinstance(node, ir.Any) and node.items:
                stack.append(rng.choice(node.items) if rng else node.items[0])
            elif isinstance(node, (ir.Cmp, ir.In)) and node.field in policy.derived and node.field not in seen:
                seen.add(node.field)
                if isinstance(node, ir.Cmp) and node.op == "==" and node.value is True:
                    stack.append(self._derived_ir(node.field))
            elif isinstance(node, (ir.Cmp, ir.In)) and node.field in policy.facts:
                value = _satisfying(node, policy.facts[node.field])
                if value is not None:
                    out[node.field] = value
        return out

    def _derived_ir(self, name: str) -> ir.Cond:
        """A boolean derived fact as a condition (lowered once per sampler)."""
        if name not in self._lowered:
            policy = self.compiled.policy
            expr = policy.derived[name].expr
            fields = {*policy.facts, *policy.derived, "as_of"}
            self._lowered[name] = ir.lower(expr.checked, expr.text, ir.Lowering(), fields)
        return self._lowered[name]

    def cases(self, kind: str, names: list[str], count: int,
              force: Callable[[random.Random], dict[str, Any]] | None = None,
              salt: str = "") -> list[dict[str, Any]]:
        """``count`` cases of ``kind`` giving every fact in ``names`` (and as_of).

        Dates are drawn relative to one base day per case: the first date
        fact is the base, the others (and as_of) lie the policy's day limits
        away from it, so differences such as "failed 8 days after
        installation" come up often.
        """
        policy = self.compiled.policy
        rng = random.Random(zlib.crc32(f"{policy.vendor}/{policy.version}/{kind}/{salt}".encode()))
        dates = [n for n in names if policy.facts[n].type.kind == "date"]
        as_of_near = [c + timedelta(days=d) for c in self.date_literals for d in (-1, 0, 1)]
        out = []
        for i in range(count):
            base = self.anchor + timedelta(days=rng.choice((0, 3, 30, 45, 120, 200)))
            if as_of_near and rng.random() < 0.5:
                base = rng.choice(as_of_near) - timedelta(days=rng.choice((0, 1, 7, 30)))
            facts = {n: _plain(base if dates and n == dates[0]
                               else self.value(rng, n, policy.facts[n], base)) for n in names}
            for name, value in (force(rng) if force else {}).items():
                if name in facts:
                    facts[name] = _plain(value)
            as_of = base + timedelta(days=rng.choice(self.offsets))
            if as_of_near and rng.random() < 0.5:
                as_of = rng.choice(as_of_near)
            out.append({"id": f"gen-{kind}-{i}", "vendor": policy.vendor, "kind": kind,
                        "as_of": as_of.isoformat(), "facts": facts})
        return out


def _within(decl: FactDecl, value: Decimal) -> bool:
    return ((decl.minimum is None or value >= decl.minimum)
            and (decl.maximum is None or value <= decl.maximum))


def _plain(value: Any) -> Any:
    """JSON-friendly form of a generated value (how a case file would give it)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, timedelta):
        return f"PT{int(value.total_seconds() // 60)}M"
    if isinstance(value, list):
        return [{k: _plain(v) for k, v in item.items()} for item in value]
    return value


def _satisfying(leaf: ir.Cmp | ir.In, decl: FactDecl) -> Any:
    """A value of a bool or enum fact that makes ``leaf`` true, or None."""
    kind = decl.type.kind
    if kind not in ("bool", "enum"):
        return None
    values: list[Any] = [True, False] if kind == "bool" else list(decl.type.values)
    if isinstance(leaf, ir.In):
        ok = [v for v in values if (v in leaf.values) != leaf.negated]
    else:
        ok = [v for v in values if (v == leaf.value if leaf.op == "==" else v != leaf.value)]
    return ok[0] if ok else None
