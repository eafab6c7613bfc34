"""Benchmark: Itellum decisions per second, per back end (not a test).

    python bench/bench_itellum.py [--cases 10000] [--repeat 5]

Measures, on one core, over generated valid cases of every Itellum kind:

* match  — the back end alone, on facts already coerced and derived;
* decide — the full decision from a case mapping: coercion, checks, derived
  facts, matching, combination, amounts, deadlines and localized reasons.

Reports the best of ``--repeat`` runs (the least disturbed by other load).
"""

from __future__ import annotations

import argparse
import decimal
import platform
import random
import sys
import time
from datetime import date, timedelta
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine import Engine, MatcherUnavailable  # noqa: E402
from engine.case import Case, coerce_facts  # noqa: E402
from engine.money import CONTEXT  # noqa: E402

POLICIES = Path(__file__).resolve().parent.parent / "policies"


def _day(rng: random.Random, start: date, span: int) -> str:
    return (start + timedelta(days=rng.randrange(span))).isoformat()


def generate(n: int, seed: int = 7) -> list[dict[str, Any]]:
    """``n`` valid, fully specified Itellum cases spread over the five kinds."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        kind = ("warranty", "return", "service_failure", "delivery", "compensation")[i % 5]
        yes = lambda: rng.random() < 0.8  # noqa: E731
        if kind == "warranty":
            installed = date(2025, 1, 1) + timedelta(days=rng.randrange(365))
            facts: dict[str, Any] = {
                "installed_on": installed.isoformat(),
                "failed_on": (installed + timedelta(days=rng.choice([0, 3, 7, 8, 9, 60, 180, 250]))).isoformat(),
                "damage_cause": rng.choice(["factory", "customer_misuse", "other"]),
                "shipping_cost": f"{rng.randrange(1000, 20000)}.00", "repair_cost": "45000.00"}
        elif kind in ("return", "service_failure"):
            facts = {"install_impossible_report": yes(), "ticket_opened": yes(),
                     "equipment_undamaged": yes(), "original_packaging": yes(), "all_accessories": yes(),
                     "equipment_price": f"{rng.randrange(50000, 250000)}.{rng.randrange(100):02d}",
                     "first_monthly_fee": "25000.00", "equipment_returned_on": _day(rng, date(2025, 1, 1), 365),
                     "failure_source": rng.choice(["satellite_equipment", "beyond_equipment"]),
                     "no_repair_possible": yes()}
            if kind == "return":
                for k in ("failure_source", "no_repair_possible"):
                    del facts[k]
            else:
                del facts["install_impossible_report"]
        elif kind == "delivery":
            facts = {"defect_at_delivery": yes()}
        else:
            day = rng.randrange(1, 27)
            facts = {"service_plan": "postpaid", "monthly_rate": f"{rng.randrange(15000, 60000)}",
                     "period_start": "2025-04-01", "period_end": "2025-04-30",
                     "exempt_from_liability": rng.random() < 0.1,
                     "interruptions": [{"start": f"2025-04-{day:02d}T10:00:00-06:00",
                                        "end": f"2025-04-{day:02d}T{rng.randrange(10, 23)}:{rng.randrange(60):02d}:00-06:00",
                                        "compliance_pct": rng.choice([0, 20, 40, 41, 80])}]}
        out.append({"id": f"B-{i}", "vendor": "itellum", "kind": kind, "as_of": "2025-12-31", "facts": facts})
    return out


def best_of(repeat: int, fn: Callable[[], int]) -> float:
    """Best seconds per item over ``repeat`` runs of ``fn`` (which returns its item count)."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        count = fn()
        best = min(best, (time.perf_counter() - start) / count)
    return best


def bench(matcher: str, raw: list[dict[str, Any]], repeat: int) -> dict[str, float]:
    engine = Engine.load(POLICIES, matcher=matcher)
    cases = [Case.from_mapping(c) for c in raw]
    compiled = engine.compiled("itellum", date(2025, 12, 31))
    _, backend = engine._select("itellum", date(2025, 12, 31))  # noqa: SLF001 - measuring internals
    prepared = []
    with decimal.localcontext(CONTEXT):
        for case in cases:
            facts = coerce_facts(case, compiled.policy)
            compiled.kinds[case.kind].derive(facts, {})
            prepared.append((case.kind, facts))
    # Complete cases: nothing missing (a rule may still answer needs_info, e.g. "open a ticket").
    assert not any(engine.decide(c).missing_facts for c in cases), "benchmark cases must be complete"

    def match_only() -> int:
        for kind, facts in prepared:
            backend.match(kind, facts)
        return len(prepared)

    def full_decision() -> int:
        for case in cases:
            engine.decide(case)
        return len(cases)

    def from_mapping() -> int:
        for case in raw:
            engine.decide(case)
        return len(raw)

    result = {"match": best_of(repeat, match_only), "decide": best_of(repeat, full_decision),
              "decide_from_dict": best_of(repeat, from_mapping)}
    engine.close()
    return result


def versions() -> str:
    parts = [f"Python {platform.python_version()} ({platform.machine()})"]
    for pkg in ("clause-engine", "durable-rules", "PyYAML", "jsonschema", "holidays", "click"):
        try:
            parts.append(f"{pkg} {metadata.version(pkg)}")
        except metadata.PackageNotFoundError:
            parts.append(f"{pkg} (not installed)")
    return ", ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    raw = generate(args.cases)
    print(versions())
    print(f"{args.cases} generated Itellum cases (5 kinds, 18 rules), best of {args.repeat} runs, one core\n")
    print(f"{'back end':<8} {'stage':<18} {'µs/decision':>12} {'decisions/s':>12}")
    for matcher in ("python", "rete"):
        try:
            result = bench(matcher, raw, args.repeat)
        except MatcherUnavailable as err:
            print(f"{matcher:<8} unavailable: {err.diagnostics[0].message}")
            continue
        for stage, seconds in result.items():
            print(f"{matcher:<8} {stage:<18} {seconds * 1e6:>12.2f} {1 / seconds:>12,.0f}")


if __name__ == "__main__":
    main()
