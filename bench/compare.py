"""Clause against the engines people use, side by side in one process (not a test).

    python bench/compare.py                 # the side-by-side table (issue 11, item 1)
    python bench/compare.py --scaling       # 10 / 100 / 1,000 / 10,000 rules
    pip install -e '.[bench]'               # the anchors: zen-engine (GoRules, Rust)

One 10-rule refund policy, written once as a table (``RULES``) and turned
into each engine's own form: a Clause policy, a GoRules JDM decision table
(hit policy "first"), a durable_rules ruleset for its C core (the same
calls as Clause's rete back end, without Clause around them), and a
hand-written Python ``if`` chain (the floor: what no engine can beat).
Every engine decides the same generated cases; before timing, each case's
outcome and deciding rule must agree with Clause's, or the run stops.

Timing: every engine runs over all the cases, in a shuffled order, several
repetitions interleaved, best repetition kept (the one least disturbed by
other load). Results are ratios against zen-engine and against the floor,
measured in the same run, so a noisy machine still gives a stable answer.
Anchors that are not installed are skipped, and the table says so.

A second table times matching alone (issue 11: the rete back end's match
against the raw C core it wraps): both back ends' ``match`` on the facts
each case had once coerced and derived, interleaved with the C core runner.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine import Engine, MatcherUnavailable  # noqa: E402

# id, conditions (field, op, value), outcome, amount (a Clause expression, or None)
RULES: list[tuple[str, list[tuple[str, str, Any]], str, str | None]] = [
    ("grocery-final", [("category", "==", "grocery"), ("defect", "==", False)], "deny", None),
    ("defect-gold-year", [("defect", "==", True), ("tier", "==", "gold"), ("days", "<=", 365)], "refund", "price"),
    ("defect-90", [("defect", "==", True), ("days", "<=", 90)], "refund", "price"),
    ("defect-year-repair", [("defect", "==", True), ("days", "<=", 365)], "repair", None),
    ("no-receipt", [("receipt", "==", False)], "deny", None),
    ("unopened-30", [("opened", "==", False), ("days", "<=", 30)], "refund", "price"),
    ("gold-60", [("tier", "==", "gold"), ("days", "<=", 60)], "refund", "price"),
    ("electronics-14", [("category", "==", "electronics"), ("days", "<=", 14)], "partial_refund",
     "round(price * 0.85)"),
    ("apparel-30", [("category", "==", "apparel"), ("days", "<=", 30)], "exchange", None),
    ("silver-45", [("tier", "==", "silver"), ("days", "<=", 45)], "credit", "price"),
]
OTHERWISE = "refund:otherwise"
FACTS = """\
  category: {type: enum, values: [electronics, apparel, home, grocery], meaning: category}
  tier: {type: enum, values: [none, silver, gold], meaning: membership tier}
  days: {type: integer, minimum: 0, meaning: days since purchase}
  defect: {type: bool, meaning: the item is defective}
  opened: {type: bool, meaning: the box was opened}
  receipt: {type: bool, meaning: the customer has the receipt}
  price: {type: money, minimum: 0, meaning: price paid}
"""


def _literal(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else \
        f"'{value}'" if isinstance(value, str) else str(value)


def clause_policy(rules: list[tuple[str, list[tuple[str, str, Any]], str, str | None]], home: Path) -> Path:
    """A Clause policy directory for ``rules`` (each rule's clause is one sentence of source.txt)."""
    vendor = home / "benchco"
    vendor.mkdir(parents=True, exist_ok=True)
    lines = ["clause: 1", "vendor: benchco", "name: Bench Co", 'version: "1"', 'effective_from: "2020-01-01"',
             "currency: USD", "country: US", "timezone: America/New_York", "languages: [en]",
             "rounding: half_up", "source: {file: source.txt}", "facts:", FACTS.rstrip(), "kinds:", "  refund:",
             "    title: Refunds", "    combine: first_match",
             "    otherwise: {outcome: deny, reason: {en: No rule applies.}}", "    rules:"]
    for rid, conds, outcome, amount in rules:
        when = " and ".join(f"{f} {op} {_literal(v)}" for f, op, v in conds)
        lines.append(f"      - {{id: {rid}, clause: Rule {rid} applies., when: \"{when}\", outcome: {outcome},"
                     + (f" amount: \"{amount}\"," if amount else "") + f" reason: {{en: {rid}}}}}")
    (vendor / "policy.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (vendor / "source.txt").write_text(" ".join(f"Rule {r[0]} applies." for r in rules) + "\n", encoding="utf-8")
    return home


def jdm(rules: list[tuple[str, list[tuple[str, str, Any]], str, str | None]]) -> str:
    """The same rules as a GoRules JDM decision table, hit policy "first"."""
    fields = sorted({f for _, conds, _, _ in rules for f, _, _ in conds})
    inputs = [{"id": f"i_{f}", "name": f, "field": f} for f in fields]
    outputs = [{"id": "o_outcome", "name": "outcome", "field": "outcome"},
               {"id": "o_rule", "name": "rule", "field": "rule"}]
    rows = []
    for rid, conds, outcome, _ in [*rules, (OTHERWISE, [], "deny", None)]:
        row = {"_id": rid, "o_outcome": f"'{outcome}'", "o_rule": f"'{rid}'"}
        cells: dict[str, list[str]] = {}
        for f, op, v in conds:
            cells.setdefault(f, []).append(_literal(v) if op == "==" else f"{op} {_literal(v)}")
        row.update({f"i_{f}": ", ".join(cells.get(f, [])) if len(cells.get(f, [])) < 2 else
                    " and ".join(f"$ {c}" for c in cells[f]) for f in fields})
        rows.append(row)
    table = {"hitPolicy": "first", "inputs": inputs, "outputs": outputs, "rules": rows}
    graph = {"nodes": [{"id": "in", "type": "inputNode", "name": "Request", "position": {"x": 0, "y": 0}},
                       {"id": "dt", "type": "decisionTableNode", "name": "Refund", "position": {"x": 1, "y": 0},
                        "content": table},
                       {"id": "out", "type": "outputNode", "name": "Response", "position": {"x": 2, "y": 0}}],
             "edges": [{"id": "e1", "sourceId": "in", "targetId": "dt", "type": "edge"},
                       {"id": "e2", "sourceId": "dt", "targetId": "out", "type": "edge"}]}
    return json.dumps(graph)


def durable_ruleset(rules: list[tuple[str, list[tuple[str, str, Any]], str, str | None]]) -> str:
    """The rules for durable_rules' C core: as Clause's rete back end sends them (ints, 1/0 booleans)."""
    ops = {"<": "$lt", "<=": "$lte", ">": "$gt", ">=": "$gte"}
    out: dict[str, Any] = {}
    for i, (_, conds, _, _) in enumerate(rules):
        tests: list[dict[str, Any]] = [{"$nex": {"$s": 1}}]
        for f, op, v in conds:
            value = int(v) if isinstance(v, bool) else v
            tests.append({f: value} if op == "==" else {ops[op]: {f: value}})
        out[f"r{i}"] = {"all": [{"m": {"$and": tests}}]}
    out["guard"] = {"all": [{"m": {"$and": [{"$nex": {"$s": 1}}, {"k": 1}]}}]}
    return json.dumps(out)


def plain_python(facts: dict[str, Any]) -> tuple[str, str]:
    """The floor: the same ten rules as a hand-written if chain (outcome, rule)."""
    c, t, d = facts["category"], facts["tier"], facts["days"]
    defect, opened, receipt = facts["defect"], facts["opened"], facts["receipt"]
    if c == "grocery" and not defect:
        return "deny", "grocery-final"
    if defect and t == "gold" and d <= 365:
        return "refund", "defect-gold-year"
    if defect and d <= 90:
        return "refund", "defect-90"
    if defect and d <= 365:
        return "repair", "defect-year-repair"
    if not receipt:
        return "deny", "no-receipt"
    if not opened and d <= 30:
        return "refund", "unopened-30"
    if t == "gold" and d <= 60:
        return "refund", "gold-60"
    if c == "electronics" and d <= 14:
        Decimal(facts["price"]) * Decimal("0.85")  # the amount, as the engines compute one
        return "partial_refund", "electronics-14"
    if c == "apparel" and d <= 30:
        return "exchange", "apparel-30"
    if t == "silver" and d <= 45:
        return "credit", "silver-45"
    return "deny", OTHERWISE


def cases(n: int, seed: int = 7) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [{"vendor": "benchco", "kind": "refund", "as_of": "2025-06-01", "facts": {
        "category": rng.choice(["electronics", "apparel", "home", "grocery"]),
        "tier": rng.choice(["none", "silver", "gold"]), "days": rng.choice([0, 7, 14, 15, 30, 31, 45, 60, 90, 91,
                                                                             200, 365, 366, rng.randrange(800)]),
        "defect": rng.random() < 0.2, "opened": rng.random() < 0.6, "receipt": rng.random() < 0.9,
        "price": f"{rng.randrange(1, 2000)}.{rng.randrange(100):02d}"}} for _ in range(n)]


Runner = Callable[[dict[str, Any]], tuple[str, str]]


def runners(rules: list[Any], home: Path) -> tuple[dict[str, Runner], list[str], list[Any]]:
    """Each available engine as case -> (outcome, rule); the anchors that are missing; things to close."""
    out: dict[str, Runner] = {}
    missing: list[str] = []
    closing: list[Any] = []
    policies = clause_policy(rules, home)
    python = Engine.load(policies)
    closing.append(python)

    def clause_with(engine: Engine) -> Runner:
        def run(case: dict[str, Any]) -> tuple[str, str]:
            d = engine.decide(case).to_dict()
            return d["outcome"], d["reasons"][0]["rule"]
        return run

    out["clause (python)"] = clause_with(python)
    try:
        rete = Engine.load(policies, matcher="rete")
        closing.append(rete)
        out["clause (rete)"] = clause_with(rete)
    except MatcherUnavailable:
        missing.append("clause (rete): durable-rules does not import here")
    out["plain python"] = lambda case: plain_python(case["facts"])
    try:
        import zen  # noqa: PLC0415 - optional anchor
        decision = zen.ZenEngine().create_decision(jdm(rules))

        def run_zen(case: dict[str, Any]) -> tuple[str, str]:
            result = decision.evaluate(case["facts"])["result"]
            return result["outcome"], result["rule"]
        out["zen-engine (Rust)"] = run_zen
    except ImportError:
        missing.append("zen-engine: pip install -e '.[bench]'")
    try:
        import durable_rules_engine as core  # noqa: PLC0415 - optional anchor
        out["durable_rules C core"] = _durable_runner(core, rules, closing)
    except ImportError:
        missing.append("durable_rules C core: does not import here")
    return out, missing, closing


def _durable_runner(core: Any, rules: list[Any], closing: list[Any]) -> Runner:
    handle = core.create_ruleset(f"bench-{os.getpid()}-{time.monotonic_ns()}", durable_ruleset(rules))
    closing.append(lambda: core.delete_ruleset(handle))
    ids = [r[0] for r in rules]
    outcomes = [r[2] for r in rules]

    def run(case: dict[str, Any]) -> tuple[str, str]:
        f = case["facts"]
        fact = {"sid": "0", "k": 1, "category": f["category"], "tier": f["tier"], "days": f["days"],
                "defect": int(f["defect"]), "opened": int(f["opened"]), "receipt": int(f["receipt"])}
        _code, state = core.assert_fact(handle, json.dumps(fact))
        fired = []
        try:
            result = core.start_action_for_state(handle, state)
            message = result[1] if result else None
            while message:
                name = message[2:message.index('"', 2)]
                if name != "guard":
                    fired.append(int(name[1:]))
                message = core.complete_and_start_action(handle, state)
        finally:
            core.delete_state(handle, "0")
        if not fired:
            return "deny", OTHERWISE
        first = min(fired)
        return outcomes[first], ids[first]
    return run


def check(engines: dict[str, Runner], sample: list[dict[str, Any]]) -> None:
    """Every engine must decide every case as Clause does (outcome and rule), or the run stops."""
    reference = engines["clause (python)"]
    for case in sample:
        want = reference(case)
        for name, run in engines.items():
            got = run(case)
            if got != want:
                sys.exit(f"{name} disagrees with Clause on {json.dumps(case['facts'])}: {got} != {want}")


def timed(engines: dict[str, Runner], sample: list[dict[str, Any]], repeat: int) -> dict[str, float]:
    """Best µs per decision of each engine, repetitions interleaved in a shuffled order."""
    best = {name: float("inf") for name in engines}
    order = list(engines)
    rng = random.Random(1)
    for _ in range(repeat):
        rng.shuffle(order)
        for name in order:
            run = engines[name]
            start = time.perf_counter()
            for case in sample:
                run(case)
            best[name] = min(best[name], (time.perf_counter() - start) / len(sample) * 1e6)
    return best


def _matched_facts(home: Path, sample: list[dict[str, Any]]) -> list[tuple[dict[str, Any], str, dict[str, Any]]]:
    """Each case with its kind and the facts the rete back end matched (coerced, derived), recorded.

    The class's ``match`` is swapped for a recorder while an engine loads and
    decides (the engine binds its matchers when it loads), then put back.
    """
    from engine.match import rete  # noqa: PLC0415 - only with the core

    seen: list[tuple[str, dict[str, Any]]] = []
    original = rete._KindRuleset.match

    def record(self: Any, facts: dict[str, Any]) -> list[int]:
        seen.append((self.kind_name, dict(facts)))
        return original(self, facts)

    rete._KindRuleset.match = record  # type: ignore[method-assign]
    try:
        with Engine.load(home, matcher="rete") as engine:
            for case in sample:
                engine.decide(case)
    finally:
        rete._KindRuleset.match = original  # type: ignore[method-assign]
    if len(seen) != len(sample):
        sys.exit(f"match only: recorded {len(seen)} matches for {len(sample)} cases")
    return [(case, kind, facts) for case, (kind, facts) in zip(sample, seen)]


def match_only(home: Path, sample: list[dict[str, Any]], core: Runner, repeat: int) -> dict[str, float] | None:
    """µs per match of both back ends on already coerced facts, interleaved with the raw C core runner.

    Issue 11's criterion for the rete back end is its match against the
    core it wraps; every case's matches must equal the python matcher's.
    """
    from engine.match import rete  # noqa: PLC0415 - only with the core
    from engine.match.python import PythonMatcher  # noqa: PLC0415

    items = _matched_facts(home, sample)
    with Engine.load(home) as engine:
        compiled = engine.compiled("benchco")
    python, on_core = PythonMatcher(compiled), rete.ReteMatcher(compiled)
    try:
        for case, kind, facts in items:
            if on_core.match(kind, facts) != python.match(kind, facts):
                sys.exit(f"the rete matcher disagrees with the python matcher on {json.dumps(case['facts'])}")
        runs = {"clause (python): match": lambda it: python.match(it[1], it[2]),
                "clause (rete): match": lambda it: on_core.match(it[1], it[2]),
                "durable_rules C core": lambda it: core(it[0])}
        return timed(runs, items, repeat)  # type: ignore[arg-type]
    finally:
        on_core.close()


def _print_match_only(best: dict[str, float]) -> None:
    core = best["durable_rules C core"]
    print("\nMatching only — on facts already coerced and derived, the same cases; the C core runner as above "
          "(projection, json.dumps, assert, actions, delete_state); matches equal the python matcher's:")
    print("\n| match only | µs / case | × C core |\n| --- | ---: | ---: |")
    for name, us in sorted(best.items(), key=lambda kv: kv[1]):
        print(f"| {name} | {us:.2f} | {us / core:.2f} |")


def side_by_side(n: int, repeat: int) -> None:
    sample = cases(n)
    with tempfile.TemporaryDirectory(prefix="clause-bench-") as tmp:
        engines, missing, closing = runners(RULES, Path(tmp))
        try:
            check(engines, sample)
            best = timed(engines, sample, repeat)
            core = engines.get("durable_rules C core")
            matching = match_only(Path(tmp), sample, core, repeat) if core else None
        finally:
            for item in closing:
                item() if callable(item) and not isinstance(item, Engine) else item.close()
    zen = best.get("zen-engine (Rust)")
    floor = best["plain python"]
    print(f"{n:,} cases of a {len(RULES)}-rule refund policy, best of {repeat} interleaved repetitions; "
          f"every engine agreed with Clause on every case (outcome and rule).")
    print(_machine())
    print("\n| engine | µs / decision | × zen-engine | × plain python |\n| --- | ---: | ---: | ---: |")
    for name, us in sorted(best.items(), key=lambda kv: kv[1]):
        print(f"| {name} | {us:.2f} | {us / zen:.2f} | {us / floor:.1f} |" if zen else
              f"| {name} | {us:.2f} | — | {us / floor:.1f} |")
    for note in missing:
        print(f"\nnot measured: {note}")
    if matching:
        _print_match_only(matching)


def _band_rules(n: int, seed: int = 3) -> list[tuple[str, list[tuple[str, str, Any]], str, str | None]]:
    """``n`` generated rules: a category, a band of days and a price threshold each."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        lo = rng.randrange(400)
        out.append((f"band-{i}", [("category", "==", rng.choice(["electronics", "apparel", "home", "grocery"])),
                                  ("days", ">=", lo), ("days", "<", lo + rng.randrange(1, 60)),
                                  ("tier", "==", rng.choice(["none", "silver", "gold"]))],
                    rng.choice(["refund", "credit", "exchange", "deny"]), None))
    return out


def scaling_one(n: int, decisions: int) -> dict[str, Any]:
    """Load time, µs per decision and peak memory for ``n`` generated rules (run in its own process)."""
    import resource  # noqa: PLC0415 - Unix only, like the measurement

    with tempfile.TemporaryDirectory(prefix="clause-bench-") as tmp:
        home = clause_policy(_band_rules(n), Path(tmp))
        start = time.perf_counter()
        engine = Engine.load(home)
        load = time.perf_counter() - start
        sample = cases(decisions, seed=n)
        best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            for case in sample:
                engine.decide(case).to_dict()
            best = min(best, (time.perf_counter() - start) / len(sample) * 1e6)
        engine.close()
    return {"rules": n, "load_s": load, "us": best, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def scaling(sizes: list[int], decisions: int) -> None:
    rows = []
    for n in sizes:
        out = subprocess.run([sys.executable, __file__, "--scaling-one", str(n), "--cases", str(decisions)],
                             capture_output=True, text=True, check=True)
        rows.append(json.loads(out.stdout))
    base = rows[0]["us"]
    print(_machine())
    print(f"\n| rules | load (s) | µs / decision | × {rows[0]['rules']} rules | peak RSS (MB) |\n"
          "| ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['rules']:,} | {r['load_s']:.2f} | {r['us']:.1f} | {r['us'] / base:.1f} | {r['rss_mb']:.0f} |")


def _machine() -> str:
    versions = ", ".join(f"{p} {_version(p)}" for p in ("clause-engine", "zen-engine", "durable-rules"))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs, "
            f"load {load:.2f}; {versions}")


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--scaling", action="store_true", help="rules 10, 100, 1,000, 10,000")
    parser.add_argument("--sizes", default="10,100,1000,10000")
    parser.add_argument("--scaling-one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.scaling_one:
        print(json.dumps(scaling_one(args.scaling_one, args.cases)))
    elif args.scaling:
        scaling([int(s) for s in args.sizes.split(",")], min(args.cases, 2000))
    else:
        side_by_side(args.cases, args.repeat)


if __name__ == "__main__":
    main()
