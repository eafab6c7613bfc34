"""Indexed matching for kinds with many rules: only the rules a case could match are tested.

Testing every rule of a kind costs time in proportion to the rules; a
decision table or a Rete alpha network instead discriminates on the facts
first. Here each kind with :data:`MIN_RULES` rules or more gets a small
decision tree over its rules' top-level conjuncts (``A and B and ...``):

- a **choice** node on an enum, boolean or text field — a dict from the
  case's value to the rules whose ``==``/``in`` conjuncts on that field
  admit it (plus the rules that do not test the field);
- a **bands** node on a number, date or duration field — the distinct
  constants of the rules' ``< <= > >= ==`` conjuncts on the field cut its
  line into regions (each constant, and each gap between two), and a binary
  search finds the case's region, whose rules were listed at build time.

A node is split again (another field) while that shrinks its rule list
enough; a leaf holds the candidate rules in file order, each then tested by
its full condition. So the index only ever *drops* rules a conjunct
excludes: the result is exactly the linear scan's (a property test compares
them), and any leaf the index does not understand (``!=``, ``not in``, an
``or``) just keeps its rule a candidate.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter, deque
from math import log
from dataclasses import dataclass
from dataclasses import field as _field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Callable

from engine.match import ir

MIN_RULES = 32        # below this, testing every rule in one generated function is faster
LEAF_RULES = 12       # a node with this few candidates is not split further
MAX_DEPTH = 6
MAX_FIELDS = 8        # fields scored per node: the ones most of its rules test
MAX_CUTS = 48         # a bands node cuts its field at most here (quantiles of the rules' constants)
ENTRIES_PER_RULE = 24  # rule references the index may hold, per rule of the kind (bounds build time and memory)
MIN_ENTRIES = 20_000
_ABSENT = object()
_ORDERED = (int, Decimal, date, datetime, timedelta)


@dataclass(slots=True)
class Node:
    """A leaf (``rules``) or a split on ``field`` (``table``/``other``, or ``consts``/``regions``)."""

    rules: tuple[int, ...] = ()
    field: str = ""
    table: dict[Any, Node] | None = None
    other: Node | None = None           # a choice node: values no rule names
    absent: Node | None = None          # the case lacks the field
    consts: list[Any] = _field(default_factory=list)
    regions: list[Node] = _field(default_factory=list)


def conjuncts(cond: ir.Cond) -> list[ir.Cond]:
    if isinstance(cond, ir.All):
        return [leaf for item in cond.items for leaf in conjuncts(item)]
    return [cond]


def _choice_values(leaf: ir.Cond) -> frozenset[Any] | None:
    """The values a choice conjunct admits, or None when it is not one."""
    if isinstance(leaf, ir.Cmp) and leaf.op == "==" and isinstance(leaf.value, (str, bool)):
        return frozenset({leaf.value})
    if isinstance(leaf, ir.In) and not leaf.negated and all(isinstance(v, (str, bool)) for v in leaf.values):
        return frozenset(leaf.values)
    return None


def _band(leaf: ir.Cond) -> ir.Cmp | None:
    if (isinstance(leaf, ir.Cmp) and leaf.op in ("<", "<=", ">", ">=", "==")
            and isinstance(leaf.value, _ORDERED) and not isinstance(leaf.value, bool)):
        return leaf
    return None


class _Builder:
    """Builds the tree top-down; every split is paid from one budget of rule references.

    A split copies each rule into every branch that admits it, so overlapping
    bands (``days >= k`` for many k) would copy each rule into most regions:
    quadratic time and memory. The budget (a fixed number of references per
    rule) stops that; a node that cannot afford its best split stays a leaf,
    which is always correct, only slower.
    """

    def __init__(self, conds: dict[int, list[ir.Cond]]) -> None:
        self.budget = max(MIN_ENTRIES, ENTRIES_PER_RULE * len(conds))
        # Per rule, read once: the fields its indexable conjuncts test (one entry per conjunct),
        # the values its choice conjuncts admit per field, and its band conjuncts per field.
        self.tested: dict[int, list[str]] = {}
        self.choices: dict[int, dict[str, frozenset[Any]]] = {}
        self.band_leaves: dict[int, dict[str, list[ir.Cmp]]] = {}
        for r, leaves in conds.items():
            tested, choices, bands = [], {}, {}  # type: ignore[var-annotated]
            for leaf in leaves:
                if (values := _choice_values(leaf)) is not None:
                    name = leaf.field  # type: ignore[union-attr]
                    choices[name] = values if name not in choices else choices[name] & values
                    tested.append(name)
                elif (band := _band(leaf)) is not None:
                    bands.setdefault(band.field, []).append(band)
                    tested.append(band.field)
            self.tested[r], self.choices[r], self.band_leaves[r] = tested, choices, bands

    def split(self, node: Node, depth: int, used: frozenset[str]) -> list[tuple[Node, int, frozenset[str]]]:
        """Turn the leaf ``node`` into a split if one pays; the new leaves to consider next.

        The tree is built breadth first, so the budget goes to the shallow
        splits every case passes through before the deep ones few reach.
        """
        rules = node.rules
        if len(rules) <= LEAF_RULES or depth >= MAX_DEPTH or self.budget < len(rules):
            return []  # (any split copies every rule at least once)
        # The split that narrows the candidates most per rule reference it copies: a band split
        # narrows more, but copies every rule into each region its band spans, and a budget spent
        # on it at the top leaves none for the cheap choice splits below (leaves of 100 rules).
        usable = [c for c in self.candidates(rules, used)
                  if c is not None and c[0] <= 0.7 * len(rules) and c[3] <= self.budget]
        best = max(usable, default=None, key=lambda c: log(len(rules) / max(c[0], 1.0)) / c[3])
        if best is None:
            return []
        self.budget -= best[3]
        _, name, kind, _ = best
        node.rules, node.field = (), name
        if kind == "choice":  # a choice field is settled below; a band field may be cut finer
            children = self.choice(node, rules, name)
            used = used | {name}
        else:
            children = self.bands(node, rules, name)
        return [(child, depth + 1, used) for child in children if child.rules != rules]

    def candidates(self, rules: tuple[int, ...], used: frozenset[str]) -> list[tuple[float, str, str, int] | None]:
        """Per field: (average rules per branch, field, node kind, rule references the split copies).

        Only the :data:`MAX_FIELDS` fields most rules test are scored: scoring
        costs a pass over the rules per field, and a field few rules test
        cannot split them well anyway (2,000 rules on 2,000 facts took seconds).
        """
        tested = Counter(name for r in rules for name in self.tested[r] if name not in used)
        fields = sorted(tested, key=lambda f: (-tested[f], f))[:MAX_FIELDS]
        return [score for name in fields for score in (self.choice_score(rules, name),
                                                       self.band_score(rules, name))]

    # --- choice nodes (enum, bool, text) -------------------------------------------
    def admitted(self, rule: int, name: str) -> frozenset[Any] | None:
        """The values of ``name`` the rule's choice conjuncts admit (None: it does not test it)."""
        return self.choices[rule].get(name)

    def choice_score(self, rules: tuple[int, ...], name: str) -> tuple[float, str, str, int] | None:
        sets = [self.admitted(r, name) for r in rules]
        counts = Counter(v for s in sets if s is not None for v in s)
        if not counts:
            return None
        wild = sum(1 for s in sets if s is None)
        total = sum(counts.values()) + wild * len(counts)
        return total / len(counts), name, "choice", total + wild

    def choice(self, node: Node, rules: tuple[int, ...], name: str) -> list[Node]:
        sets = {r: self.admitted(r, name) for r in rules}
        members: dict[Any, list[int]] = {v: [] for s in sets.values() if s is not None for v in s}
        for r in rules:  # in file order, so every branch lists its rules in file order
            for v in (members if sets[r] is None else sets[r]):  # type: ignore[union-attr]
                members[v].append(r)
        node.table = {v: Node(rules=tuple(m)) for v, m in members.items()}
        node.other = node.absent = Node(rules=tuple(r for r in rules if sets[r] is None))
        return [*node.table.values(), node.other]

    # --- band nodes (numbers, dates, durations) -----------------------------------
    def spans(self, rules: tuple[int, ...], name: str) -> tuple[list[Any], dict[int, tuple[int, int] | None]]:
        """The cut points, and per rule the range of regions its band conjuncts allow (None: untested)."""
        leaves = {r: self.band_leaves[r].get(name, ()) for r in rules}
        try:
            consts = sorted({b.value for bs in leaves.values() for b in bs})
        except TypeError:  # constants of different kinds: not a band field
            return [], {}
        if len(consts) > MAX_CUTS:  # cut at quantiles; a rule then spans the coarse regions it touches
            consts = [consts[i * len(consts) // MAX_CUTS] for i in range(MAX_CUTS)]
        out: dict[int, tuple[int, int] | None] = {}
        for r, bands in leaves.items():
            lo, hi = 0, 2 * len(consts)
            for b in bands:
                a, z = _allowed(b.op, b.value, consts)
                lo, hi = max(lo, a), min(hi, z)
            out[r] = (lo, hi) if bands else None
        return consts, out

    def band_score(self, rules: tuple[int, ...], name: str) -> tuple[float, str, str, int] | None:
        consts, spans = self.spans(rules, name)
        if not consts:
            return None
        regions = 2 * len(consts) + 1
        total = sum(regions if s is None else max(0, s[1] - s[0] + 1) for s in spans.values())
        return total / regions, name, "bands", total + len(rules)

    def bands(self, node: Node, rules: tuple[int, ...], name: str) -> list[Node]:
        consts, spans = self.spans(rules, name)
        members: list[list[int]] = [[] for _ in range(2 * len(consts) + 1)]
        for r in rules:
            lo, hi = spans[r] if spans[r] is not None else (0, len(members) - 1)
            for region in range(lo, hi + 1):
                members[region].append(r)
        shared: dict[tuple[int, ...], Node] = {}  # regions with the same rules share one subtree
        node.consts = consts
        node.regions = [shared.setdefault(key, Node(rules=key)) for key in map(tuple, members)]
        node.absent = Node(rules=tuple(r for r in rules if spans[r] is None))
        return [*shared.values(), node.absent]


def _allowed(op: str, value: Any, cuts: list[Any]) -> tuple[int, int]:
    """Regions (gap g = 2g, cut p = 2p + 1) where ``x op value`` may hold: one range.

    Exact when ``value`` is a cut; otherwise the gap holding ``value`` is
    included whole (a superset: its rules are tested in full anyway).
    """
    i, n = bisect_left(cuts, value), len(cuts)
    if i < n and cuts[i] == value:
        point = 2 * i + 1
        return {"<": (0, point - 1), "<=": (0, point), ">": (point + 1, 2 * n), ">=": (point, 2 * n),
                "==": (point, point)}[op]
    gap = 2 * i
    return {"<": (0, gap), "<=": (0, gap), ">": (gap, 2 * n), ">=": (gap, 2 * n), "==": (gap, gap)}[op]


def build(rules: list[tuple[int, ir.Cond]]) -> Node:
    """The index over ``(rule index, condition)`` pairs, in file order."""
    builder = _Builder({i: conjuncts(cond) for i, cond in rules})
    root = Node(rules=tuple(i for i, _ in rules))
    pending = deque([(root, 0, frozenset[str]())])
    while pending:
        pending.extend(builder.split(*pending.popleft()))
    return root


def lookup(node: Node, facts: dict[str, Any]) -> tuple[int, ...]:
    """The candidate rules for a case (a superset of the matching ones, in file order)."""
    while not node.rules and (node.table is not None or node.regions):
        value = facts.get(node.field, _ABSENT)
        if value is _ABSENT:
            node = node.absent  # type: ignore[assignment]
        elif node.table is not None:
            try:
                node = node.table.get(value, node.other)  # type: ignore[assignment]
            except TypeError:  # an unhashable value (a list): no choice rule admits it
                node = node.other  # type: ignore[assignment]
        else:
            i = bisect_left(node.consts, value)
            node = node.regions[2 * i + 1 if i < len(node.consts) and node.consts[i] == value else 2 * i]
    return node.rules


def matcher(rules: list[tuple[int, ir.Cond]], tests: dict[int, Callable[[dict[str, Any]], bool]],
            linear: Callable[[dict[str, Any]], list[int]]) -> Callable[[dict[str, Any]], list[int]]:
    """A match function: the index's candidates, each tested by its full condition.

    A value the index cannot place (a comparison between incompatible types)
    falls back to the linear scan, which then behaves as it always did.
    """
    root = build(rules)

    def match(facts: dict[str, Any]) -> list[int]:
        try:
            candidates = lookup(root, facts)
        except TypeError:
            return linear(facts)
        return [i for i in candidates if tests[i](facts)]
    return match
