"""How many of durable_rules' tests can be true at once — and rulesets split to stay under it.

The C core walks the alpha network of a ruleset with a fixed stack: when 64
or more distinct tests are true for one asserted fact it fails with error
303 (``ERR_MAX_STACK_SIZE``, docs/design.md §4) — 64 band rules ``x >= lo``
with ``x`` above every ``lo``, or 64 booleans that are all true, are enough.
Tests that are identical are shared, and only one equality test per field
can hold, so the count depends on the policy's constants, not its size.

This module bounds, per group of rules, the largest number of tests that
one case can make true (exactly per field, by sweeping the field's values
across the constants; summed over fields, which is an upper bound since
facts vary independently), and groups a kind's rules greedily, in order,
so that no group can reach the limit. The rete back end gives each group
its own ruleset and unions the rules that fire, so no case can fail at run
time. A single rule that could reach the limit alone is refused when the
policy compiles, at the rule.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable

from engine.match import ir

LIMIT = 64  # measured: 63 true tests assert, 64 fail with error 303
BUDGET = 48  # per ruleset, a margin below the limit for the internal $nex/guard tests

_RANGE = {"<", "<=", ">", ">="}
_TRUE = {"<": lambda c: c < 0, "<=": lambda c: c <= 0, ">": lambda c: c > 0, ">=": lambda c: c >= 0}


def _compare(point: tuple[Any, int], const: Any) -> int:
    """Order of a point — a value, or just below/above it (-1/+1) — against a constant."""
    value, side = point
    if value < const:
        return -1
    if value > const:
        return 1
    return side


@dataclass
class _FieldTests:
    """The tests one group of rules makes on one field."""

    equal: Counter[Any] = field(default_factory=Counter)  # value -> tests true only at it
    unequal: Counter[Any] = field(default_factory=Counter)  # value -> tests false only at it
    ranges: list[tuple[str, Any]] = field(default_factory=list)
    present: int = 0  # tests true whenever the field is given
    absent: int = 0  # tests true when it is not

    def add(self, leaf: ir.Leaf) -> None:
        if isinstance(leaf, ir.Exists):
            if leaf.present:
                self.present += 1
            else:
                self.absent += 1
        elif isinstance(leaf, ir.In):
            target = self.unequal if leaf.negated else self.equal
            target.update(leaf.values)
        elif leaf.op == "==":
            self.equal[leaf.value] += 1
        elif leaf.op == "!=":
            self.unequal[leaf.value] += 1
        else:
            self.ranges.append((leaf.op, leaf.value))

    def most_true(self) -> int:
        """The most tests one value of the field (or its absence) makes true."""
        unequal_total = sum(self.unequal.values())
        best = self.present + unequal_total + self._ranges_true_at_extremes()
        if not self.ranges:  # one equality value at a time: no sweep needed
            at = [self.equal[v] - self.unequal[v] for v in (*self.equal, *self.unequal)]
            return max(best + max([0, *at]), self.absent)  # 0: a value no test names
        points: list[tuple[Any, int]] = [(c, s) for _, c in self.ranges for s in (-1, 0, 1)]
        points += [(c, 0) for c in (*self.equal, *self.unequal)]
        for point in points:
            value = point[0]
            true = self.present + sum(_TRUE[op](_compare(point, c)) for op, c in self.ranges)
            if point[1] == 0:
                true += self.equal[value] + unequal_total - self.unequal[value]
            else:
                true += unequal_total
            best = max(best, true)
        return max(best, self.absent)

    def _ranges_true_at_extremes(self) -> int:
        """Below or above every constant: all upper or all lower bounds hold."""
        below = sum(op in ("<", "<=") for op, _ in self.ranges)
        return max(below, len(self.ranges) - below)


@dataclass
class _Group:
    fields: dict[str, _FieldTests] = field(default_factory=dict)
    bounds: dict[str, int] = field(default_factory=dict)
    constants: int = 0  # constant-true/false rules: one shared test each, counted apart

    def total(self) -> int:
        return sum(self.bounds.values()) + min(self.constants, 1)


def _rule_leaves(cond: ir.Cond) -> tuple[list[ir.Leaf], int]:
    leaves = ir.leaves(cond)
    constants = _count_constants(cond)
    return leaves, constants


def _count_constants(cond: ir.Cond) -> int:
    if isinstance(cond, (ir.All, ir.Any)):
        if not cond.items:
            return 1
        return sum(_count_constants(c) for c in cond.items)
    return 0


def _with(group: _Group, leaves: list[ir.Leaf], constants: int) -> _Group:
    """``group`` grown by one rule, in place (a refused rule starts a new group anyway)."""
    for leaf in leaves:
        group.fields.setdefault(leaf.field, _FieldTests()).add(leaf)
    for name in {leaf.field for leaf in leaves}:
        group.bounds[name] = group.fields[name].most_true()
    group.constants += constants
    return group


def most_true(conds: Iterable[ir.Cond]) -> int:
    """An upper bound on the tests one case makes true in a ruleset of these conditions."""
    group = _Group()
    for cond in conds:
        group = _with(group, *_rule_leaves(cond))
    return group.total()


def split(conds: list[ir.Cond], budget: int = BUDGET) -> tuple[list[list[int]], list[int]]:
    """Indices of ``conds`` grouped in order so no group can exceed ``budget`` true tests.

    Returns the groups and the indices of conditions that exceed it alone.
    """
    groups: list[list[int]] = []
    too_wide: list[int] = []
    current: list[int] = []
    group = _Group()
    for i, cond in enumerate(conds):
        leaves, constants = _rule_leaves(cond)
        alone = _with(_Group(), leaves, constants)
        if alone.total() > budget:
            too_wide.append(i)
            continue
        group = _with(group, leaves, constants)
        if group.total() > budget:
            groups.append(current)
            current, group = [i], alone
        else:
            current.append(i)
    if current:
        groups.append(current)
    return groups, too_wide
