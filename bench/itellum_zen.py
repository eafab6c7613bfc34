"""Clause against GoRules zen-engine on the Itellum policy's heaviest kind (not a test).

    python bench/itellum_zen.py                      # heaviest kind, 6,000 cases, best of 5
    python bench/itellum_zen.py --kind warranty --cases 20000 --repeat 7
    python bench/itellum_zen.py --show-jdm           # print the generated JDM graph and stop
    pip install -e '.[bench]'                        # the anchor: zen-engine (GoRules, Rust)

Issue 11's done-when: the full decision (``Engine.decide(case).to_dict()``
from a plain dict, default back end) ≤ 1.0× zen-engine on the Itellum
policy's heaviest kind. "Heaviest" is measured, not assumed: by default the
kind whose Clause decision takes longest on bench_itellum's generated cases
(today ``compensation``: an interval union over a list of datetimes, money
arithmetic, two deadlines; ``warranty`` and ``service_failure`` have the
most rules, five each).

The JDM (GoRules JSON Decision Model) graph is GENERATED from the compiled
Clause policy, so it follows the policy when it changes:

* input -> one expression node -> one decision table (hit policy "first") -> output;
* the expression node computes, in dependency order, every derived fact and
  synthetic field the kind's conditions read, translated from the Clause
  expression trees into zen expression syntax (``days_between`` ->
  ``d(b).diff(d(a), 'day')``, ``add_months`` -> ``.add(n, 'month')``,
  ``date_of`` -> ``.tz(<policy zone>)``, ``where`` -> ``filter(.. as r, ..)``,
  ``x.field`` on a list -> ``map``, ``interval_minutes`` -> a sweep over the
  events written as one zen expression, money facts -> ``number()``, dates ->
  ``d()``), plus the policy's checks (each guarded, like Clause's, by the
  presence of its facts);
* the table has one row per rule in Clause's decision order (overrides
  first, then priority / file order: ``Kind.ranked``), a first row that
  answers ``invalid`` when a check fails, and a last row for ``otherwise``;
  conditions come from the condition IR (``engine/match/ir.py``): flat
  ``All`` of leaves become one cell per field (unary tests), anything else a
  full-expression cell;
* output cells (evaluated for the hit row only, as Clause computes results
  only for the winner): outcome, rule, amount and customer_pays (rounded
  half-up to the currency's minor unit), alternatives, and the kind's
  declared deadlines; derived facts only results need are inlined there.

What is NOT ported, and so neither compared nor paid for by zen: localized
reason/action/deadline texts, deadline status against ``as_of``, fees and
per-rule deadlines (Itellum has none), ``missing_facts`` / ``needs_info``
blocking (the cases are complete), the decision's metadata. Any Clause
expression the translator cannot express in zen (today: ``add_business_days``
— it needs Costa Rica's holiday calendar; duration arithmetic) is listed in
the output; a kind whose *conditions* need one cannot be benchmarked, and a
result that needs one is left out of the port and of the comparison.

Correctness first: every case's outcome, deciding rule, amount,
customer_pays, alternatives and deadlines from zen must equal Clause's, or
the run stops. Timing like bench/compare.py: each engine over all cases,
repetitions interleaved in a shuffled order, best repetition kept, ratios
against zen-engine measured in the same run. zen-engine's Python binding
pays a fixed cost per ``evaluate`` (a hand-off to its tokio runtime: on a
2-core VM ~180 µs even for an empty input->output graph), printed as its own
line ("zen-engine empty graph") so a reader can see the binding's floor.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import time
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_itellum import POLICIES, generate  # noqa: E402
from compare import _version, timed  # noqa: E402 - the same interleaved timing as the side-by-side table

from engine import Engine, MatcherUnavailable  # noqa: E402
from engine.expressions import syntax as s  # noqa: E402
from engine.match import ir  # noqa: E402

VENDOR = "itellum"
AS_OF = date(2025, 12, 31)
KINDS = ("warranty", "return", "service_failure", "delivery", "compensation")


class Untranslatable(Exception):
    """A Clause expression with no zen equivalent here."""


# --- Clause expression -> zen expression -------------------------------------------------------

class Translator:
    """Turns checked Clause expression trees of one kind into zen expression text.

    ``emitted`` holds the derived / synthetic fields the expression node has
    computed so far (in dependency order); a name read in the node is
    ``$.name`` if emitted, in a table cell plain ``name``; a derived fact not
    emitted is inlined. Facts are read raw and converted at use (``d()``,
    ``number()``), as a hand-written JDM would.
    """

    def __init__(self, compiled: Any) -> None:
        self.compiled = compiled
        self.policy = compiled.policy
        self.types: dict[int, Any] = {}
        for expr in self._exprs():
            self.types.update(expr.checked.types)
        self.nodes: dict[str, Any] = {n: d.expr.checked.node for n, d in self.policy.derived.items()}
        self.nodes.update({n: syn.node for n, syn in compiled.synthetics.items()})
        self.field_types = compiled.field_types
        self.emitted: dict[str, str] = {}       # name -> zen text, in order
        self.aliases = 0
        self.tz = self.policy.timezone
        places = -compiled.quantum.as_tuple().exponent
        self.places = places

    def _exprs(self) -> list[Any]:
        p = self.policy
        out = [d.expr for d in p.derived.values()] + [c.expr for c in p.checks]
        for kind in p.kinds.values():
            for d in kind.deadlines:
                out += [d.date] + ([d.when] if d.when else [])
            for r in kind.rules:
                out += [r.when] + [e for e in (r.amount, r.customer_pays) if e is not None]
                out += [e for _, e in (*r.fees, *r.deadlines)]
                for a in r.alternatives:
                    out += [e for e in (a.amount, a.customer_pays) if e is not None]
        return out

    def kind_of(self, node: Any) -> str:
        return self.types[id(node)].kind

    # fields computed in the expression node
    def emit(self, name: str) -> None:
        if name in self.emitted or name not in self.nodes:
            return
        text = self.gen(self.nodes[name], [], node_ctx=True)
        self.emitted[name] = text

    def ref(self, name: str, typ: str, node_ctx: bool) -> str:
        if name in self.nodes:  # derived or synthetic
            if node_ctx:
                self.emit(name)
            if name in self.emitted:
                return f"$.{name}" if node_ctx else self.wrap(name, typ)
            return f"({self.gen(self.nodes[name], [], node_ctx)})"
        if name in ("as_of",) or name.startswith("__"):
            raise Untranslatable(f"reads {name}")
        return self.wrap(name, typ)

    @staticmethod
    def wrap(text: str, typ: str) -> str:
        if typ in ("date", "datetime"):
            return f"d({text})"
        if typ in ("money", "decimal"):
            return f"number({text})"
        return text

    def literal(self, value: Any) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (int, Decimal)):
            return format(value, "f") if isinstance(value, Decimal) else str(value)
        if isinstance(value, datetime):
            return f"d('{value.isoformat()}')"
        if isinstance(value, date):
            return f"d('{value.isoformat()}')"
        if isinstance(value, str):
            if "'" in value or "\\" in value:
                raise Untranslatable(f"string literal {value!r}")
            return f"'{value}'"
        raise Untranslatable(f"literal {value!r}")

    def gen(self, node: Any, scopes: list[tuple[str, frozenset[str], dict[str, str]]], node_ctx: bool) -> str:
        if isinstance(node, s.Literal):
            return self.literal(node.value)
        if isinstance(node, s.Name):
            for alias, fields, ftypes in reversed(scopes):
                if node.name in fields:
                    return self.wrap(f"{alias}.{node.name}", ftypes[node.name])
            return self.ref(node.name, self.kind_of(node), node_ctx)
        if isinstance(node, s.Attr):
            obj = self.gen(node.obj, scopes, node_ctx)
            typ = self.kind_of(node)
            if self.kind_of(node.obj) == "list":
                a = self.alias()
                item = self.types[id(node.obj)].item
                ftyp = item.fields[node.name].kind if item is not None else ""
                return f"map({obj} as {a}, {self.wrap(f'{a}.{node.name}', ftyp)})"
            return self.wrap(f"({obj}).{node.name}", typ)
        if isinstance(node, s.Unary):
            inner = self.gen(node.operand, scopes, node_ctx)
            return f"(not ({inner}))" if node.op == "not" else f"(-({inner}))"
        if isinstance(node, s.IfElse):
            return (f"(({self.gen(node.cond, scopes, node_ctx)}) ? ({self.gen(node.then, scopes, node_ctx)})"
                    f" : ({self.gen(node.other, scopes, node_ctx)}))")
        if isinstance(node, s.Where):
            items = self.gen(node.items, scopes, node_ctx)
            item = self.types[id(node.items)].item
            ftypes = {k: t.kind for k, t in (item.fields.items() if item is not None else ())}
            a = self.alias()
            cond = self.gen(node.cond, [*scopes, (a, frozenset(ftypes), ftypes)], node_ctx)
            return f"filter({items} as {a}, {cond})"
        if isinstance(node, s.ListLit):
            return "[" + ", ".join(self.gen(i, scopes, node_ctx) for i in node.items) + "]"
        if isinstance(node, s.Binary):
            return self.binary(node, scopes, node_ctx)
        if isinstance(node, s.Call):
            return self.call(node, scopes, node_ctx)
        raise Untranslatable(type(node).__name__)

    def alias(self) -> str:
        self.aliases += 1
        return f"_a{self.aliases}"

    def binary(self, node: Any, scopes: Any, node_ctx: bool) -> str:
        a, b = self.gen(node.left, scopes, node_ctx), self.gen(node.right, scopes, node_ctx)
        kinds = (self.kind_of(node.left), self.kind_of(node.right))
        if "duration" in kinds:
            raise Untranslatable("duration arithmetic")
        if node.op in ("in", "not in"):
            test = f"(({a}) in ({b}))"
            return f"(not {test})" if node.op == "not in" else test
        if node.op == "+" and "date" in kinds:
            return f"({a}).add({b}, 'day')" if kinds[0] == "date" else f"({b}).add({a}, 'day')"
        if node.op == "-" and kinds == ("date", "integer"):
            return f"({a}).add(-({b}), 'day')"
        if node.op == "-" and kinds == ("date", "date"):
            return f"({a}).diff({b}, 'day')"
        if node.op in ("and", "or", "==", "!=", "<", "<=", ">", ">=", "+", "-", "*", "/"):
            return f"({a} {node.op} {b})"
        raise Untranslatable(f"operator {node.op}")

    def call(self, node: Any, scopes: Any, node_ctx: bool) -> str:
        f = node.func
        if f == "has":
            return f"({self.gen(node.args[0], scopes, node_ctx)} != null)"
        if f in ("date", "datetime", "money"):
            return self.literal(self.compiled_constant(node))
        args = [self.gen(x, scopes, node_ctx) for x in node.args]
        if f == "days_between":
            return f"({args[1]}).diff({args[0]}, 'day')"
        if f == "add_days":
            return f"({args[0]}).add({args[1]}, 'day')"
        if f == "add_months":
            return f"({args[0]}).add({args[1]}, 'month')"
        if f == "date_of":
            return f"d(({args[0]}).tz('{self.tz}').format('%Y-%m-%d'))"
        if f == "count":
            return f"len({args[0]})"
        if f == "sum":
            return f"sum({args[0]})"
        if f == "abs":
            return f"abs({args[0]})"
        if f in ("min", "max"):
            return f"{f}({args[0]})" if len(args) == 1 and self.kind_of(node.args[0]) == "list" \
                else f"{f}([{', '.join(args)}])"
        if f == "coalesce":
            return "(" + " ?? ".join(args) + ")"
        if f == "round" and self.policy.rounding == "half_up":
            if self.kind_of(node.args[0]) == "money":
                return f"round({args[0]}, {self.places})"
            return f"round({', '.join(args)})"
        if f == "interval_minutes":
            return self.interval_minutes(args[0], node_ctx)
        raise Untranslatable(f"{f}()")

    def compiled_constant(self, node: Any) -> Any:
        for expr in self._exprs():
            if id(node) in expr.checked.constants:
                return expr.checked.constants[id(node)]
        raise Untranslatable("constant")

    def interval_minutes(self, xs: str, node_ctx: bool) -> str:
        """Minutes of the union of [start, end) events, a started minute counting whole.

        A sweep in start order: event i adds max(0, end_i - max(start_i, the
        latest end of the events before it)); "before" = earlier start, or the
        same start and a lower index. Written with index ranges and aliases
        because zen's expression language has no sort and no reduce.
        """
        i, j = self.alias(), self.alias()
        s_i, e_i = f"date({xs}[{i}].start)", f"date({xs}[{i}].end)"
        s_j, e_j = f"date({xs}[{j}].start)", f"date({xs}[{j}].end)"
        before = f"({s_j} < {s_i} or ({s_j} == {s_i} and {j} < {i}))"
        latest = f"max(map([0..len({xs})) as {j}, {before} ? {e_j} : {s_i}))"
        return f"ceil(sum(map([0..len({xs})) as {i}, max([0, {e_i} - {latest}]))) / 60)"


# --- the JDM graph ----------------------------------------------------------------------------

def _cell(leaf: Any, typ: str, tr: Translator) -> str:
    """A unary-test cell for one IR leaf (``$`` is the column's field)."""
    dollar = tr.wrap("$", typ)
    if isinstance(leaf, ir.Exists):
        return "$ != null" if leaf.present else "$ == null"
    if isinstance(leaf, ir.In):
        test = f"{dollar} in [{', '.join(tr.literal(v) for v in leaf.values)}]"
        return f"not ({test})" if leaf.negated else test
    return f"{dollar} {leaf.op} {tr.literal(leaf.value)}"


def _expr_cell(cond: Any, tr: Translator) -> str:
    """A full-expression cell (a column with an empty field) for any IR condition."""
    if isinstance(cond, (ir.All, ir.Any)):
        if not cond.items:
            return "true" if isinstance(cond, ir.All) else "false"
        joiner = " and " if isinstance(cond, ir.All) else " or "
        return "(" + joiner.join(_expr_cell(c, tr) for c in cond.items) + ")"
    typ = tr.field_types[cond.field].kind
    return "(" + _cell(cond, typ, tr).replace("$", tr.wrap(cond.field, "")) + ")"


def build_jdm(compiled: Any, kind_name: str) -> tuple[str, list[str], dict[str, Any]]:
    """The kind as a JDM graph; notes on what is not ported; what the port outputs."""
    tr = Translator(compiled)
    ck = compiled.kinds[kind_name]
    kind = ck.kind
    notes: list[str] = []
    # 1. every field the conditions read, computed in the expression node
    for rule in ck.ranked:
        for leaf in ir.leaves(rule.cond):
            try:
                tr.ref(leaf.field, tr.field_types[leaf.field].kind, node_ctx=True)
            except Untranslatable as err:
                raise SystemExit(f"cannot port kind {kind_name!r}: condition of {rule.rule.id} {err}") from err
    # 2. the policy's checks, each guarded by the presence of its facts
    checks = []
    for i, (needed, _derive, _fn, message, expr) in enumerate(compiled.checks):
        try:
            body = tr.gen(expr.checked.node, [], node_ctx=True)
        except Untranslatable as err:
            notes.append(f"check {message!r} not ported ({err})")
            continue
        guard = " and ".join(f"{f} != null" for f in sorted(needed)) or "true"
        tr.emitted[f"__check{i}"] = f"({guard}) ? ({body}) : true"
        checks.append(f"__check{i}")
    expressions = [{"id": f"x{n}", "key": k, "value": v} for n, (k, v) in enumerate(tr.emitted.items())]

    # 3. the table: decision order, conditions from the IR
    def flat(cond: Any) -> list[Any] | None:
        items = cond.items if isinstance(cond, ir.All) else (cond,)
        return list(items) if all(isinstance(c, (ir.Cmp, ir.In, ir.Exists)) for c in items) else None

    columns: list[str] = []
    for rule in ck.ranked:
        for leaf in flat(rule.cond) or []:
            if leaf.field not in columns:
                columns.append(leaf.field)
    inputs = [{"id": f"i_{f}", "name": f, "field": f} for f in columns]
    inputs.append({"id": "i_expr", "name": "expression", "field": ""})

    def result(expr: Any, what: str, money: bool = True) -> str:
        if expr is None:
            return "null"
        try:
            text = tr.gen(expr.checked.node, [], node_ctx=False)
        except Untranslatable as err:
            notes.append(f"{what} not ported ({err})")
            return "null"
        return f"round({text}, {tr.places})" if money and tr.policy.rounding == "half_up" else text

    deadline_cells = {}
    for d in kind.deadlines:
        date_text = result(d.date, f"deadline {d.name}", money=False)
        if date_text == "null":
            continue
        when = result(d.when, f"deadline {d.name}", money=False) if d.when else "true"
        if when == "null":
            continue
        deadline_cells[f"deadline_{d.name}"] = f"({when}) ? ({date_text}).format('%Y-%m-%d') : null"
    outputs = ["outcome", "rule", "amount", "customer_pays", "alternatives", *deadline_cells]
    rows = []
    if checks:
        rows.append({"_id": "checks", "i_expr": "not (" + " and ".join(checks) + ")",
                     "o_outcome": "'invalid'", "o_rule": "'(policy check)'"})
    for rule in ck.ranked:
        r = rule.rule
        if r.fees or r.deadlines:
            notes.append(f"{r.id}: fees / rule deadlines not ported")
        row = {"_id": r.id, "o_outcome": tr.literal(r.outcome), "o_rule": tr.literal(r.id),
               "o_amount": result(r.amount, f"{r.id} amount"),
               "o_customer_pays": result(r.customer_pays, f"{r.id} customer_pays")}
        if r.alternatives:
            row["o_alternatives"] = "[" + ", ".join(
                f"{{outcome: {tr.literal(a.outcome)}, amount: {result(a.amount, f'{r.id} alternative')}, "
                f"customer_pays: {result(a.customer_pays, f'{r.id} alternative')}}}" for a in r.alternatives) + "]"
        leaves = flat(rule.cond)
        if leaves is None:
            row["i_expr"] = _expr_cell(rule.cond, tr)
        else:
            by_field: dict[str, list[str]] = {}
            for leaf in leaves:
                by_field.setdefault(leaf.field, []).append(_cell(leaf, tr.field_types[leaf.field].kind, tr))
            for f, cells in by_field.items():
                row[f"i_{f}"] = " and ".join(cells)
        rows.append(row)
    rows.append({"_id": "otherwise", "o_outcome": tr.literal(kind.otherwise_outcome),
                 "o_rule": tr.literal(f"{kind.name}:otherwise")})
    for row in rows:
        row.update({k: v for k, v in ((f"o_{k}", v) for k, v in deadline_cells.items())})
        for col in inputs:
            row.setdefault(col["id"], "")
        for out in outputs:
            row.setdefault(f"o_{out}", "null")
    table = {"hitPolicy": "first", "inputs": inputs,
             "outputs": [{"id": f"o_{o}", "name": o, "field": o} for o in outputs], "rules": rows}
    pos = {"x": 0, "y": 0}
    nodes = [{"id": "in", "type": "inputNode", "name": "Case facts", "position": pos},
             {"id": "derive", "type": "expressionNode", "name": "Derived facts and checks", "position": pos,
              "content": {"expressions": expressions, "passThrough": True, "inputField": None,
                          "outputPath": None, "executionMode": "single"}},
             {"id": "rules", "type": "decisionTableNode", "name": kind.title, "position": pos, "content": table},
             {"id": "out", "type": "outputNode", "name": "Decision", "position": pos}]
    edges = [("in", "derive"), ("derive", "rules"), ("rules", "out")]
    graph = {"nodes": nodes, "edges": [{"id": f"e{i}", "sourceId": a, "targetId": b, "type": "edge"}
                                       for i, (a, b) in enumerate(edges)]}
    info = {"derived": [k for k in tr.emitted if not k.startswith("__check")], "checks": len(checks),
            "rows": len(rows), "deadlines": sorted(d.removeprefix("deadline_") for d in deadline_cells)}
    return json.dumps(graph), notes, info


EMPTY_GRAPH = json.dumps({"nodes": [{"id": "in", "type": "inputNode", "name": "in", "position": {"x": 0, "y": 0}},
                                    {"id": "out", "type": "outputNode", "name": "out", "position": {"x": 1, "y": 0}}],
                          "edges": [{"id": "e", "sourceId": "in", "targetId": "out", "type": "edge"}]})


# --- cases --------------------------------------------------------------------------------------

def compensation_cases(n: int, seed: int) -> list[dict[str, Any]]:
    """Valid compensation cases with 0-4 events: overlaps, equal starts, seconds, UTC and local times."""
    rng = random.Random(seed)
    cr = timezone(timedelta(hours=-6))
    out = []
    for i in range(n):
        year, month = rng.choice([(2024, m) for m in range(1, 13)] + [(2025, m) for m in range(1, 12)])
        start = date(year, month, 1)
        end = (date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1))
        events = []
        for _ in range(rng.choice([0, 1, 1, 1, 2, 2, 3, 4])):
            if events and rng.random() < 0.3:  # overlap or share a start with an earlier event
                begin = datetime.fromisoformat(events[-1]["start"]).astimezone(cr) \
                    + timedelta(minutes=rng.choice([0, 0, 5, 30]))
            else:
                day = rng.randrange((end - start).days + 1)
                begin = datetime(year, month, 1, rng.randrange(24), rng.randrange(60), tzinfo=cr) + timedelta(days=day)
            finish = begin + timedelta(minutes=rng.randrange(0, 600), seconds=rng.choice([0, 0, 1, 20, 59]))
            if finish.date() > end + timedelta(days=1):
                finish = datetime(end.year, end.month, end.day, 23, 59, tzinfo=cr)
            utc = rng.random() < 0.3
            fmt = (lambda t: t.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")) if utc \
                else (lambda t: t.isoformat())
            events.append({"start": fmt(begin), "end": fmt(finish),
                           "compliance_pct": rng.choice([0, 0, 20, 40, "40.5", "39.99", 41, 80, 100])})
        plan = rng.choice(["postpaid", "postpaid", "prepaid"])
        facts: dict[str, Any] = {"service_plan": plan, "period_start": start.isoformat(),
                                 "period_end": end.isoformat(), "exempt_from_liability": rng.random() < 0.1,
                                 "interruptions": events}
        rate = f"{rng.randrange(5000, 90000)}.{rng.randrange(100):02d}"
        facts["last_recharge" if plan == "prepaid" else "monthly_rate"] = rate
        if rng.random() < 0.3:  # the other rate too: must not be read
            facts["monthly_rate" if plan == "prepaid" else "last_recharge"] = "1.00"
        out.append({"id": f"Z-{i}", "vendor": VENDOR, "kind": "compensation", "as_of": AS_OF.isoformat(),
                    "facts": facts})
    return out


def cases_for(kind: str, n: int, seed: int = 11) -> list[dict[str, Any]]:
    if kind == "compensation":
        return compensation_cases(n, seed)
    return [c for c in generate(n * len(KINDS), seed) if c["kind"] == kind][:n]


def heaviest(engine: Engine) -> tuple[str, dict[str, float]]:
    """The kind whose full Clause decision takes longest (best of 3 over 300 cases each)."""
    cost = {}
    for kind in KINDS:
        sample = cases_for(kind, 300, seed=5)
        best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            for case in sample:
                engine.decide(case).to_dict()
            best = min(best, (time.perf_counter() - start) / len(sample) * 1e6)
        cost[kind] = best
    return max(cost, key=cost.__getitem__), cost


# --- comparison and timing ----------------------------------------------------------------------

def _money(value: Any) -> Decimal | None:
    if value is None:
        return None
    return Decimal(value["value"]) if isinstance(value, dict) else Decimal(str(value))


def clause_view(d: dict[str, Any], deadlines: list[str]) -> tuple[Any, ...]:
    rule = d["reasons"][0]["rule"] if d["reasons"] else None
    alts = tuple((a["outcome"], _money(a.get("amount")), _money(a.get("customer_pays")))
                 for a in d.get("alternatives", []))
    dls = tuple(sorted((x["name"], x["date"]) for x in d["deadlines"] if x["rule"] is None and x["name"] in deadlines))
    return d["outcome"], rule, _money(d["amount"]), _money(d["customer_pays"]), alts, dls


def zen_view(r: dict[str, Any]) -> tuple[Any, ...]:
    alts = tuple((a["outcome"], _money(a.get("amount")), _money(a.get("customer_pays")))
                 for a in r.get("alternatives") or [])
    dls = tuple(sorted((k.removeprefix("deadline_"), v) for k, v in r.items() if k.startswith("deadline_")))
    return r["outcome"], r.get("rule"), _money(r.get("amount")), _money(r.get("customer_pays")), alts, dls


def machine() -> str:
    versions = ", ".join(f"{p} {_version(p)}" for p in ("clause-engine", "zen-engine", "durable-rules"))
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    return (f"Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs, "
            f"load average {load}; {versions}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kind", default="heaviest", help=f"one of {', '.join(KINDS)}, or heaviest (default)")
    parser.add_argument("--cases", type=int, default=6_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--show-jdm", action="store_true", help="print the generated JDM graph and stop")
    args = parser.parse_args()
    try:
        import zen  # noqa: PLC0415 - optional anchor
    except ImportError:
        sys.exit("zen-engine is not installed: pip install -e '.[bench]'")

    python = Engine.load(POLICIES)
    closing = [python]
    try:
        kind = args.kind
        if kind == "heaviest":
            kind, cost = heaviest(python)
            why = ", ".join(f"{k} {v:.1f}" for k, v in sorted(cost.items(), key=lambda kv: -kv[1]))
            print(f"kind: {kind} — the heaviest Itellum kind (Clause µs/decision, 300 cases each: {why})")
        elif kind not in KINDS:
            sys.exit(f"unknown kind {kind!r}")
        compiled = python.compiled(VENDOR, AS_OF)
        graph, notes, info = build_jdm(compiled, kind)
        if args.show_jdm:
            print(json.dumps(json.loads(graph), indent=1, ensure_ascii=False))
            return
        n_rules = len(compiled.kinds[kind].ranked)
        print(f"JDM port generated from the compiled policy: {len(info['derived'])} derived/synthetic fields "
              f"in one expression node ({', '.join(info['derived'])}), {info['checks']} policy checks, "
              f"a {info['rows']}-row decision table (hit policy first: checks, {n_rules} rules in decision "
              f"order, otherwise), results: outcome, rule, amount, customer_pays, alternatives, deadlines "
              f"({', '.join(info['deadlines']) or 'none'})")
        print("not ported (not compared, not paid for by zen): localized texts, deadline status, "
              "missing-fact analysis" + "".join(f"; {n}" for n in notes))

        engine = zen.ZenEngine()
        decision = engine.create_decision(graph)
        empty = engine.create_decision(EMPTY_GRAPH)
        runners: dict[str, Callable[[dict[str, Any]], Any]] = {
            "clause (python)": lambda c: python.decide(c).to_dict()}
        try:
            rete = Engine.load(POLICIES, matcher="rete")
            closing.append(rete)
            runners["clause (rete)"] = lambda c: rete.decide(c).to_dict()
        except MatcherUnavailable as err:
            print(f"not measured: clause (rete): {err.diagnostics[0].message}")
        runners["zen-engine (Rust)"] = lambda c: decision.evaluate(c["facts"])
        runners["zen-engine empty graph"] = lambda c: empty.evaluate(c["facts"])

        # correctness: every case, every Clause back end, before any timing
        raw = cases_for(kind, args.cases)
        sample, skipped = [], 0
        deadlines = info["deadlines"]
        outcomes: dict[str, int] = {}
        for case in raw:
            decided = python.decide(case).to_dict()
            if decided["missing_facts"]:
                skipped += 1
                continue
            want = clause_view(decided, deadlines)
            got = zen_view(decision.evaluate(case["facts"])["result"])
            if got != want:
                sys.exit(f"zen-engine disagrees with Clause on case {case['id']} {json.dumps(case['facts'])}:\n"
                         f"  zen    {got}\n  clause {want}")
            if "clause (rete)" in runners:
                other = clause_view(rete.decide(case).to_dict(), deadlines)
                if other != want:
                    sys.exit(f"clause (rete) disagrees with clause (python) on case {case['id']} "
                             f"{json.dumps(case['facts'])}:\n  rete   {other}\n  python {want}")
            sample.append(case)
            outcomes[f"{want[0]}/{want[1]}"] = outcomes.get(f"{want[0]}/{want[1]}", 0) + 1
        best = timed(runners, sample, args.repeat)
    finally:
        for item in closing:
            item.close()

    zen_us = best["zen-engine (Rust)"]
    print(f"\n{len(sample):,} generated {kind} cases (skipped {skipped} with missing facts), best of {args.repeat} "
          f"interleaved repetitions; zen-engine agreed with Clause on every case (outcome, rule, amount, "
          f"customer_pays, alternatives, deadlines).")
    print("winners: " + ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items(), key=lambda kv: -kv[1])))
    print(machine())
    floor = best["zen-engine empty graph"]
    net = zen_us - floor
    print("\n| engine | µs / decision | × zen-engine | × zen-engine net of its binding floor |\n"
          "| --- | ---: | ---: | ---: |")
    for name, us in sorted(best.items(), key=lambda kv: kv[1]):
        print(f"| {name} | {us:.2f} | {us / zen_us:.2f} | "
              + (f"{us / net:.2f} |" if name.startswith("clause") and net > 0 else "— |"))
    print(f"\nzen-engine's binding floor: {floor:.1f} µs per evaluate() of an empty input->output graph "
          f"({floor / zen_us:.0%} of its decision here); zen's decision net of that floor: "
          f"{max(zen_us - floor, 0):.1f} µs.")


if __name__ == "__main__":
    main()
