"""Which missing facts matter: decide by case splitting over what they could be.

A case may lack facts (or give them only as bounds). Asking the customer is
worth it only when some value the fact could take changes the decision —
its outcome, an amount (amount, customer_pays, fees) or a deadline. This
module proves, for one case, either that every completion gives the same
decision, or which facts change it.

Method. The rules are walked in decision order, as :mod:`engine.decide`
does, with conditions evaluated over the facts' domains
(:class:`engine.abstract.Evaluator`). The first rule that is true for every
completion decides the region; a rule that may or may not apply splits the
region on one missing fact it reads, at the value its condition compares
with (booleans and enums are enumerated; an orderable fact is cut at the
threshold, found by inverting ``+``/``-``/``add_days``/``days_between``,
else halved). The splits form a partition of the possible completions into
boxes, each with one decision (its *signature*) or *stuck* when no proof
was found within the budget.

A fact is relevant when two boxes with different signatures differ only in
that fact, i.e. their other coordinates overlap: a value in the overlap and
one value of the fact from each box are two completions that differ only in
the fact and decide differently. A stuck box makes every fact it could not
settle relevant: the engine never decides on a guess.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from engine import bounds as bd
from engine import intervals as iv
from engine.abstract import Evaluator
from engine.domains import case_domains, rounded_single
from engine.expressions import syntax as s
from engine.match import ir

if TYPE_CHECKING:
    from engine.compiler import CompiledKind, CompiledPolicy, CompiledRule

BUDGET = 600           # boxes explored per case before giving up (then: facts needed)
PAIRS = 250            # boxes beyond which relevance is not refined pair by pair


@dataclass(frozen=True, slots=True)
class Box:
    """One region of completions and the decision taken in it."""

    domains: dict[str, iv.Abstract]
    winner: CompiledRule | None        # None: the kind's ``otherwise``
    signature: tuple[Any, ...] | None  # None: no proof of the decision here
    stuck: tuple[str, ...] = ()        # facts the proof stumbled on (the winner may or may not apply)
    proven: dict[Any, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Analysis:
    """The outcome of :func:`analyse`: decided, or the facts that matter."""

    boxes: tuple[Box, ...]
    relevant: tuple[str, ...]
    ranges: dict[str, dict[str, Any] | None]
    always: tuple[CompiledRule, ...] = ()   # winners whose condition holds for every completion

    @property
    def settled(self) -> bool:
        return not self.relevant and bool(self.boxes) and all(
            b.signature is not None and not b.stuck for b in self.boxes)

    def winners(self) -> list[CompiledRule | None]:
        out: list[CompiledRule | None] = []
        for box in self.boxes:
            if box.winner not in out:
                out.append(box.winner)
        return out


class _Search:
    def __init__(self, compiled: CompiledPolicy, kind: CompiledKind, facts: dict[str, Any],
                 relations: list[bd.Relation]) -> None:
        self.compiled = compiled
        self.kind = kind
        self.facts = facts
        self.relations = relations
        self.budget = BUDGET
        self.order: list[str] = []   # facts in the order they were split on

    def explore(self, domains: dict[str, iv.Abstract], start: int = 0) -> list[Box]:
        self.budget -= 1
        ev = Evaluator(self.compiled, self.facts, domains)
        for index in range(start, len(self.kind.ranked)):
            rule = self.kind.ranked[index]
            value = ev.cond(rule.cond)
            if value == iv.FALSE:
                continue
            if value == iv.TRUE:
                return [self.box(ev, rule)]
            split = self.split(ev, rule.cond) if self.budget > 0 else None
            if split is None:
                return self.unsplit(ev, rule, index)
            name, parts = split
            if name not in self.order:
                self.order.append(name)
            out: list[Box] = []
            related = any(name in (r.left, r.right) for r in self.relations)
            for part in parts:
                narrowed = {**domains, name: part}
                if related:
                    narrowed = bd.propagate(narrowed, self.facts, self.relations)  # type: ignore[assignment]
                if narrowed is not None:  # else no completion lies there
                    out += self.explore(narrowed)
            return out
        return [Box(domains, None, (self.kind.kind.otherwise_outcome, None, None, (), ()))]

    def unsplit(self, ev: Evaluator, rule: CompiledRule, index: int) -> list[Box]:
        """A condition no split settles (``a < b``, both missing): branch on the rule itself.

        Where it applies, it decides; where it does not, the later rules do
        (evaluated over the whole region, a superset, so their verdicts still
        hold). If every branch decides alike, the condition does not matter;
        otherwise the facts it reads are needed. The undecided box keeps the
        rule's decision as its signature: it stands for the completions where
        the rule applies, so a fact that only separates it from a box deciding
        alike (a later rule with the same decision) is not needed for it.
        """
        applies = self.box(ev, rule)
        rest = self.explore(ev.domains, index + 1) if self.budget > 0 else []
        if rest and all(b.signature is not None and not b.stuck and b.signature == applies.signature
                        for b in rest):
            return [applies, *rest]
        return [Box(ev.domains, rule, applies.signature, tuple(self.unsettled(ev, rule.cond))), *rest]

    def box(self, ev: Evaluator, rule: CompiledRule) -> Box:
        """The decision ``rule`` takes in this region: outcome and every result value."""
        r = rule.rule
        proven: dict[Any, Any] = {}

        def result(key: Any, expr: Any, is_money: bool) -> Any:
            if expr is None:
                return None
            abstract = ev.node(expr.checked.node)
            ok, value = rounded_single(abstract, self.compiled, ev.facts) if is_money else iv.single(abstract)
            if not ok:  # the value varies (or is unknown): the facts it reads decide it
                return ("?", r.id, tuple(self.compiled.needs(sorted(expr.reads), ev.facts)))
            proven[key] = value
            return value

        signature = (r.outcome, result("amount", r.amount, True),
                     result("customer_pays", r.customer_pays, True),
                     tuple((n, result(("fee", n), e, True)) for n, e in r.fees),
                     tuple((n, result(("deadline", n), e, False)) for n, e in r.deadlines))
        return Box(ev.domains, rule, signature, proven=proven)

    def unsettled(self, ev: Evaluator, cond: ir.Cond) -> list[str]:
        names = []
        for leaf in ir.leaves(cond):
            if ev.leaf(leaf) == iv.UNKNOWN:
                # Absent facts with no domain (lists, strings) count too: an undecided
                # box always names what it stumbled on.
                names += [f for f in self.compiled.depends.get(leaf.field, {leaf.field})
                          if f not in self.facts and f in self.compiled.policy.facts and f not in names]
        return names

    # --- choosing a split ------------------------------------------------------------
    def split(self, ev: Evaluator, cond: ir.Cond) -> tuple[str, list[iv.Abstract]] | None:
        for leaf in ir.leaves(cond):
            if isinstance(leaf, ir.Exists) or ev.leaf(leaf) != iv.UNKNOWN:
                continue
            found = self.split_leaf(ev, leaf)
            if found is not None:
                return found
        return None

    def split_leaf(self, ev: Evaluator, leaf: ir.Leaf) -> tuple[str, list[iv.Abstract]] | None:
        domains = ev.domains
        if leaf.field in domains:
            dom = domains[leaf.field]
            if isinstance(leaf, ir.In) or isinstance(dom, iv.Choice):
                return self.enumerate(leaf.field, dom, leaf)
            if isinstance(dom, iv.Span) and isinstance(leaf, ir.Cmp):
                return _parts(leaf.field, iv.cut(dom, leaf.value))
            return None
        node = self.node_of(leaf.field)
        if node is None:
            return None
        solved = _solve_leaf(ev, node, leaf)
        if solved is not None:
            name, at = solved
            dom = domains[name]
            if isinstance(dom, iv.Span) and (found := _parts(name, iv.cut(dom, at))):
                return found
        unknown = [f for f in sorted(self.compiled.depends.get(leaf.field, ())) if f in domains]
        for name in unknown:  # finite domains first: enumerating them is exact
            if isinstance(domains[name], iv.Choice):
                return self.enumerate(name, domains[name], None)
        ordered = [n for n in unknown if not iv.single(domains[n])[0]]
        if len(ordered) == 1 and isinstance(domains[ordered[0]], iv.Span):
            # One unknown left: halving its span converges on the threshold of a
            # monotone condition. With two or more (``a > b + 34``, both
            # missing) the answer depends on both, and halving one never settles it.
            halves = iv.bisect(domains[ordered[0]])  # type: ignore[arg-type]
            return (ordered[0], list(halves)) if halves else None
        return None

    def node_of(self, field_name: str) -> s.Node | None:
        policy = self.compiled.policy
        if field_name in policy.derived:
            return policy.derived[field_name].expr.checked.node
        if field_name in self.compiled.synthetics:
            return self.compiled.synthetics[field_name].node
        return None

    @staticmethod
    def enumerate(name: str, dom: iv.Abstract, leaf: ir.Leaf | None) -> tuple[str, list[iv.Abstract]] | None:
        """A finite domain split in two by the leaf's values, or into single values."""
        if not isinstance(dom, iv.Choice) or len(dom.values) < 2:
            return None
        if leaf is not None:
            wanted = set(leaf.values) if isinstance(leaf, ir.In) else {leaf.value}
            inside, outside = dom.values & wanted, dom.values - wanted
            if inside and outside:
                return name, [iv.Choice(frozenset(inside)), iv.Choice(frozenset(outside))]
        return name, [iv.Choice(frozenset({v})) for v in sorted(dom.values, key=repr)]


def _parts(name: str, parts: list[iv.Span]) -> tuple[str, list[iv.Abstract]] | None:
    return (name, list(parts)) if len(parts) > 1 else None


def _solve_leaf(ev: Evaluator, node: s.Node, leaf: ir.Leaf) -> tuple[str, Any] | None:
    """The missing fact and the value at which ``leaf`` can change truth, if a simple inversion finds it."""
    if isinstance(leaf, ir.Cmp) and leaf.value is True and isinstance(node, s.Binary) \
            and node.op in ir.FLIP:
        ok, right = iv.single(ev.node(node.right))
        if ok:
            return _solve(ev, node.left, right)
        ok, left = iv.single(ev.node(node.left))
        return _solve(ev, node.right, left) if ok else None
    if isinstance(leaf, ir.Cmp) and not isinstance(leaf.value, bool):
        return _solve(ev, node, leaf.value)
    return None


def _solve(ev: Evaluator, node: s.Node, target: Any) -> tuple[str, Any] | None:
    """Invert ``node == target`` for the one missing fact it reads, through + - and day arithmetic."""
    try:
        if isinstance(node, s.Name):
            if node.name in ev.domains:
                return node.name, target
            if node.name in ev.policy.derived and node.name not in ev.facts:
                return _solve(ev, ev.policy.derived[node.name].expr.checked.node, target)
            return None
        if isinstance(node, s.Binary) and node.op in ("+", "-"):
            lok, left = iv.single(ev.node(node.left))
            rok, right = iv.single(ev.node(node.right))
            if node.op == "+" and rok:
                return _solve(ev, node.left, iv.minus(target, right))
            if node.op == "+" and lok:
                return _solve(ev, node.right, iv.minus(target, left))
            if node.op == "-" and rok:
                return _solve(ev, node.left, iv.plus(target, right))
            if node.op == "-" and lok:
                return _solve(ev, node.right, iv.minus(left, target))
            return None
        if isinstance(node, s.Call) and node.func == "add_days":
            ok, days = iv.single(ev.node(node.args[1]))
            return _solve(ev, node.args[0], iv.minus(target, days)) if ok else None
        if isinstance(node, s.Call) and node.func == "days_between" and isinstance(target, int):
            aok, start = iv.single(ev.node(node.args[0]))
            bok, end = iv.single(ev.node(node.args[1]))
            if aok:
                return _solve(ev, node.args[1], iv.plus(start, target))
            if bok:
                return _solve(ev, node.args[0], iv.minus(end, target))
    except (ArithmeticError, OverflowError, TypeError, ValueError):
        return None
    return None


def analyse(compiled: CompiledPolicy, kind: CompiledKind, facts: dict[str, Any],
            bounds: dict[str, iv.Abstract]) -> Analysis:
    """Partition the completions of a case's missing facts by the decision they give."""
    relations, domains = case_domains(compiled, facts, bounds)
    search = _Search(compiled, kind, facts, relations)
    boxes = search.explore(domains)
    rank = {id(r): (i, _reads(compiled, r)) for i, r in enumerate(kind.ranked)}
    relevant = _relevant(boxes, search.order, domains, rank)
    ranges = {name: _range(boxes, name, relevant) for name in relevant}
    root = Evaluator(compiled, facts, domains)
    always = tuple(w for w in {id(b.winner): b.winner for b in boxes}.values()
                   if w is not None and root.cond(w.cond) == iv.TRUE)
    return Analysis(tuple(boxes), tuple(relevant), ranges, always)


def _overlap(a: iv.Abstract, b: iv.Abstract) -> bool:
    return not iv.is_empty(iv.meet(a, b))


def _relevant(boxes: list[Box], order: list[str], root: dict[str, iv.Abstract],
              rank: dict[int, tuple[int, frozenset[str]]]) -> list[str]:
    """Facts with a witness pair: boxes deciding differently that differ only in that fact."""
    out: list[str] = []
    for box in boxes:
        for name in box.stuck:
            if name not in out:
                out.append(name)
    if len(boxes) > PAIRS:  # too many to compare: every fact split on may matter (never a guess)
        return [*out, *(n for n in order if n not in out)]
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            if a.signature is not None and a.signature == b.signature:
                continue
            # Only the domains a split or its propagation narrowed can differ.
            names = {n for n in a.domains if a.domains[n] is not root[n]} | \
                {n for n in b.domains if b.domains[n] is not root[n]}
            differing = [n for n in names if a.domains[n] != b.domains[n]
                         and not _overlap(a.domains[n], b.domains[n])]
            if len(differing) == 1 and differing[0] not in out and not (
                    _apart(a, b, differing[0], rank) or _apart(b, a, differing[0], rank)):
                out.append(differing[0])
    return sorted(out, key=lambda n: order.index(n) if n in order else len(order))


def _apart(undecided: Box, other: Box, name: str, rank: dict[int, tuple[int, frozenset[str]]]) -> bool:
    """No witness pair here: ``other`` lies where the undecided box's rule does not apply.

    The undecided box stands for completions where its rule applies; a box
    won by a rule ranked below it holds only completions where that rule
    does not. Changing ``name``, which the rule's condition does not read at
    all, cannot move a completion from one to the other. (A fact the
    condition reads — even one settled inside the box — may.)
    """
    if not undecided.stuck or undecided.winner is None:
        return False
    position, reads = rank[id(undecided.winner)]
    if name in reads:
        return False
    below = rank[id(other.winner)][0] if other.winner is not None else len(rank)
    return below > position


def _reads(compiled: CompiledPolicy, rule: CompiledRule) -> frozenset[str]:
    """The declared facts a rule's condition reads, through derived and condition fields."""
    return frozenset(f for leaf in ir.leaves(rule.cond) for f in compiled.depends.get(leaf.field, {leaf.field}))


def _range(boxes: list[Box], name: str, relevant: list[str]) -> dict[str, Any] | None:
    """The bound that decides, when the fact alone splits the decision in two.

    Given as a bounded fact (``at_most``, ``at_least`` or ``one_of``): the
    values inside lead to one decision, the values outside to the other.
    None when other facts matter too, or the fact's values split three ways.
    """
    if len(relevant) != 1 or any(b.signature is None or b.stuck for b in boxes):
        return None
    groups: dict[Any, list[iv.Abstract]] = {}
    for box in boxes:
        groups.setdefault(box.signature, []).append(box.domains[name])
    if len(groups) != 2:
        return None
    first, second = groups.values()
    if all(isinstance(d, iv.Choice) for d in first):
        values: set[Any] = set().union(*(d.values for d in first))  # type: ignore[union-attr]
        if all(isinstance(v, bool) for v in values):
            return None  # the question is the value itself
        return {"one_of": sorted(bd.json_value(v) for v in values)}
    if not all(isinstance(d, iv.Span) for d in (*first, *second)):
        return None
    low, high = (first, second) if min(d.lo for d in first) <= min(d.lo for d in second) else (second, first)
    if not all(iv.compare(a, "<", b) == iv.TRUE for a in low for b in high):
        return None  # interleaved: not one threshold
    top = max(low, key=lambda d: (d.hi, not d.hi_open))  # type: ignore[union-attr]
    bottom = min(high, key=lambda d: (d.lo, d.lo_open))  # type: ignore[union-attr]
    if not top.hi_open:  # type: ignore[union-attr]
        return {"at_most": bd.json_value(top.hi)}  # type: ignore[union-attr]
    if not bottom.lo_open:  # type: ignore[union-attr]
        return {"at_least": bd.json_value(bottom.lo)}  # type: ignore[union-attr]
    return None


__all__ = ["Analysis", "Box", "analyse"]
