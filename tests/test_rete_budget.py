"""The rete back end never hits the core's 64-true-tests limit (error 303), whatever the policy.

Policies with many overlapping ranges, or many facts true at once, are split
over several rulesets (engine/match/budget.py); these tests decide generated
cases on both back ends and compare every decision.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from engine import Engine
from engine.errors import EvaluationError, PolicyError
from engine.match import budget, ir

from conftest import needs_rete

HEAD = """\
clause: 1
vendor: bands
name: Bands
version: "1"
effective_from: "2020-01-01"
currency: USD
country: US
timezone: America/New_York
languages: [en]
rounding: half_up
source: {file: source.txt}
facts:
  x: {type: decimal, meaning: a measure}
  day: {type: date, meaning: a day}
FLAGS
kinds:
  bands:
    title: Bands
    combine: first_match
    otherwise: {outcome: deny, reason: {en: none}}
    rules:
BANDS
  flags:
    title: Flags
    combine: first_match
    otherwise: {outcome: deny, reason: {en: none}}
    rules:
FLAGRULES
"""
N_BANDS = 200
N_FLAGS = 70


def _policy() -> str:
    rng = random.Random(7)
    bands = []
    for i in range(N_BANDS):  # overlapping bands of x and of days, some open-ended
        lo, width = rng.randint(0, 900), rng.randint(5, 400)
        start = date(2025, 1, 1) + timedelta(days=rng.randint(0, 300))
        cond = [f"x >= {lo}.{i % 100:02d}", f"x < {lo + width}"]
        if i % 3 == 0:
            cond.append(f"day > date('{start.isoformat()}')")
        if i % 7 == 0:
            cond = cond[:1]
        bands.append(f"      - {{id: band-{i}, clause: Refunds apply., when: \"{' and '.join(cond)}\", "
                     f"outcome: {'refund' if i % 2 else 'credit'}, reason: {{en: b{i}}}}}")
    flags = "\n".join(f"  f{i}: {{type: bool, meaning: flag {i}}}" for i in range(N_FLAGS))
    flag_rules = [f"      - {{id: flag-{i}, clause: Refunds apply., when: f{i}, outcome: approve, "
                  f"reason: {{en: f{i}}}}}" for i in range(N_FLAGS)]
    return (HEAD.replace("FLAGS\n", flags + "\n").replace("BANDS\n", "\n".join(bands) + "\n")
            .replace("FLAGRULES\n", "\n".join(flag_rules) + "\n"))


def _write(home: Path, text: str) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    (home / "source.txt").write_text("Refunds apply.\n", encoding="utf-8")
    (home / "policy.yaml").write_text(text, encoding="utf-8")
    return home


def _cases() -> list[dict[str, Any]]:
    rng = random.Random(11)
    out: list[dict[str, Any]] = []
    for _ in range(150):
        x = Decimal(rng.randint(-50, 1400)) + Decimal(rng.choice([0, 1, 99])) / 100
        day = date(2025, 1, 1) + timedelta(days=rng.randint(-10, 320))
        out.append({"vendor": "bands", "kind": "bands", "as_of": "2025-06-01",
                    "facts": {"x": str(x), "day": day.isoformat()}})
    for k in range(40):  # all flags true, all false, and random mixes
        facts = {f"f{i}": (k == 0) or (k > 1 and rng.random() < 0.9) for i in range(N_FLAGS)}
        out.append({"vendor": "bands", "kind": "flags", "as_of": "2025-06-01", "facts": facts})
    return out


def test_the_policy_would_reach_the_core_limit_in_one_ruleset(tmp_path: Path) -> None:
    """Guard for the differential test below: without the split it would hit error 303."""
    with Engine.load(_write(tmp_path / "bands", _policy())) as engine:
        compiled = engine.compiled("bands", date(2025, 6, 1))
        for kind in ("bands", "flags"):
            assert budget.most_true(r.cond for r in compiled.kinds[kind].rules) >= budget.LIMIT


@needs_rete
def test_overlapping_ranges_and_many_true_facts_decide_identically_on_both_back_ends(tmp_path: Path) -> None:
    home = _write(tmp_path / "bands", _policy())
    with Engine.load(home) as python, Engine.load(home, matcher="rete") as rete:
        for case in _cases():
            assert rete.decide(case).to_dict() == python.decide(case).to_dict(), case


def _cmp(op: str, value: Any, name: str = "x") -> ir.Cmp:
    return ir.Cmp(name, op, value, f"{name} {op} {value}")


def test_most_true_sweeps_a_fields_values() -> None:
    bands = [ir.All((_cmp(">=", lo), _cmp("<", lo + 10)), "band") for lo in range(0, 100, 10)]
    assert budget.most_true(bands) == 11  # at 95: ten lower bounds and the last upper bound
    assert budget.most_true([_cmp("==", i) for i in range(100)]) == 1  # one value at a time
    assert budget.most_true([_cmp("!=", i) for i in range(5)]) == 5  # any other value
    assert budget.most_true([_cmp(">=", 5), _cmp("<", 5)]) == 1  # never both
    assert budget.most_true([_cmp(">", 5), _cmp("<=", 5), _cmp("==", 5)]) == 2
    assert budget.most_true([ir.Exists("x", False, "not has(x)"), _cmp(">", 1)]) == 1
    flags = [_cmp("==", True, f"f{i}") for i in range(10)]
    assert budget.most_true(flags) == 10  # fields add up


def test_split_keeps_order_and_every_group_under_the_budget() -> None:
    conds = [ir.All((_cmp(">=", i), _cmp("<", i + 500)), "band") for i in range(200)]
    groups, too_wide = budget.split(conds)
    assert too_wide == []
    assert [i for g in groups for i in g] == list(range(200))
    assert len(groups) > 1
    assert all(budget.most_true(conds[i] for i in g) <= budget.BUDGET for g in groups)


@needs_rete
def test_a_rule_too_wide_alone_is_refused_at_the_rule(tmp_path: Path) -> None:
    flags = "\n".join(f"  f{i}: {{type: bool, meaning: flag {i}}}" for i in range(60))
    wide = " and ".join(f"f{i}" for i in range(60))
    text = (HEAD.replace("FLAGS\n", flags + "\n").replace("  day: {type: date, meaning: a day}\n", "")
            .replace("BANDS\n", "      - {id: plain, clause: Refunds apply., when: x > 1, outcome: refund, "
                                "reason: {en: p}}\n")
            .replace("FLAGRULES\n", f"      - {{id: wide, clause: Refunds apply., when: \"{wide}\", "
                                    "outcome: approve, reason: {en: w}}\n"))
    home = _write(tmp_path / "bands", text)
    Engine.load(home).close()  # fine on the python back end
    with pytest.raises(PolicyError) as err:
        Engine.load(home, matcher="rete")
    (diag,) = err.value.diagnostics
    assert diag.code == "limit" and "'wide'" in diag.message and diag.location is not None
    assert diag.location.line == text.splitlines().index(next(
        line for line in text.splitlines() if "id: wide" in line)) + 1


@needs_rete
def test_a_core_failure_is_an_evaluation_error_and_the_ruleset_recovers(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    home = _write(tmp_path / "bands", _policy())
    case = _cases()[0]
    with Engine.load(home, matcher="rete") as engine:
        want = engine.decide(case).to_dict()
        from engine.match import rete  # noqa: PLC0415
        core = rete.load_core()
        real = core.assert_fact
        calls = {"n": 0}

        def failing(handle: Any, text: str) -> Any:
            # Every assert fails while patched: a plain dict goes first to the generated
            # decide path, which gives any failure to the generic path to decide and report.
            calls["n"] += 1
            raise core.error("Could not assert fact, error code: 303")

        monkeypatch.setattr(core, "assert_fact", failing)
        with pytest.raises(EvaluationError) as err:
            engine.decide(case)
        assert "303" in str(err.value) and calls["n"] >= 1
        monkeypatch.setattr(core, "assert_fact", real)
        assert engine.decide(case).to_dict() == want


@needs_rete
@pytest.mark.parametrize("step", ["start_action_for_state", "complete_and_start_action", "delete_state"])
def test_a_core_failure_after_the_assert_is_an_evaluation_error_too(step: str, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Not only the assert: any call into the core that fails becomes an EvaluationError,
    and the ruleset is replaced so that the next case decides normally."""
    home = _write(tmp_path / "bands", _policy())
    cases = _cases()[:20]
    with Engine.load(home, matcher="rete") as engine:
        want = [engine.decide(c).to_dict() for c in cases]
        from engine.match import rete  # noqa: PLC0415
        core = rete.load_core()

        def failing(*args: Any) -> Any:
            raise core.error("Could not do it, error code: 301")

        monkeypatch.setattr(core, step, failing)
        failed = 0
        for case in cases:
            try:
                engine.decide(case)
            except EvaluationError as err:
                assert "301" in str(err)
                failed += 1
        assert failed >= 1  # complete_and_start_action is reached only by cases where a rule fires
        monkeypatch.undo()
        assert [engine.decide(c).to_dict() for c in cases] == want
