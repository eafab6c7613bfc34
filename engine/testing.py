"""Policy tests: decision cases with their expected results, and coverage.

A test file (``policies/<vendor>/tests/*.yaml``, schema
``schemas/test-case.schema.json``) lists cases, each with a ``note`` (its
name), an ``input`` case, and either ``want_decision`` — any subset of
outcome, amount, customer_pays, fees, deadlines, missing_facts and reasons'
rule ids — or ``want_error_code``. ``clause test`` and the project's pytest
suite both run them through :func:`run_test`, so they cannot disagree.

Coverage counts a rule as exercised when it decided some test, and each
operand of an ``and``/``or`` (or a whole one-part condition) as a branch
exercised *both ways* when it was seen true in one test and false in
another.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine import schemas
from engine._yaml import parse_yaml
from engine.case import Case
from engine.errors import Diagnostic, EngineError, PolicyError
from engine.location import SourceLocation
from engine.match import ir

if TYPE_CHECKING:
    from engine.compiler import CompiledPolicy
    from engine.engine import Engine

FIELDS = ("outcome", "amount", "customer_pays", "fees", "deadlines", "missing_facts", "reasons",
          "alternatives")


@dataclass(frozen=True, slots=True)
class PolicyTest:
    name: str
    input: dict[str, Any]
    want: dict[str, Any]
    location: SourceLocation
    lang: str = "en"
    want_error_code: str | None = None
    want_error_fact: str | None = None


@dataclass(slots=True)
class CaseResult:
    test: PolicyTest
    diffs: list[tuple[str, Any, Any]] = field(default_factory=list)
    error: str | None = None

    @property
    def passed(self) -> bool:
        return not self.diffs and self.error is None


def load_tests(path: Path) -> list[PolicyTest]:
    """Read one test file, checking it against the test-case schema.

    Raises:
        PolicyError: the file is not valid YAML or does not match the schema.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise PolicyError([Diagnostic("file", f"cannot read the test file {path}: {err}",
                                      SourceLocation(str(path)))]) from err
    doc, problems = parse_yaml(text, str(path))
    if doc is None or problems:
        raise PolicyError(problems)
    problems = schemas.check(doc, "test-case.schema.json")
    if problems:
        raise PolicyError(problems)
    return [PolicyTest(name=c["note"], input=c["input"], want=c.get("want_decision", {}),
                       location=doc.loc(("cases", i)), lang=c.get("lang", "en"),
                       want_error_code=c.get("want_error_code"), want_error_fact=c.get("want_error_fact"))
            for i, c in enumerate(doc.data["cases"])]


def actual_fields(decision: Any) -> dict[str, Any]:
    """A decision in the shape of ``want_decision``."""
    d = decision.to_dict()
    return {
        "outcome": d["outcome"],
        "amount": d["amount"]["value"] if d["amount"] else None,
        "customer_pays": d["customer_pays"]["value"] if d["customer_pays"] else None,
        "fees": {f["name"]: f["value"] for f in d["fees"]},
        "deadlines": {x["name"]: {"date": x["date"], "status": x["status"]} for x in d["deadlines"]},
        "alternatives": [{"outcome": a["outcome"],
                          "amount": a["amount"]["value"] if a["amount"] else None,
                          "customer_pays": a["customer_pays"]["value"] if a["customer_pays"] else None}
                         for a in d["alternatives"]],
        "missing_facts": [m["fact"] for m in d["missing_facts"]],
        "reasons": [r["rule"] for r in d["reasons"]],
    }


def run_test(engine: Engine, test: PolicyTest, coverage: Coverage | None = None) -> CaseResult:
    """Decide the test's case and compare every expected field."""
    result = CaseResult(test)
    try:
        decision, compiled, facts = engine._run(Case.from_mapping(test.input), test.lang)  # noqa: SLF001
    except EngineError as err:
        codes = [d.code for d in err.diagnostics]
        if test.want_error_code is None:
            result.error = "; ".join(d.render() for d in err.diagnostics)
        elif test.want_error_code not in codes:
            result.diffs.append(("error code", test.want_error_code, ", ".join(codes)))
        elif test.want_error_fact is not None:
            paths = [d.path for d in err.diagnostics if d.code == test.want_error_code]
            if not any(p == f"/facts/{test.want_error_fact}" or p.startswith(f"/facts/{test.want_error_fact}/")
                       for p in paths):
                result.diffs.append(("error fact", test.want_error_fact, ", ".join(paths)))
        return result
    if test.want_error_code is not None:
        result.diffs.append(("error code", test.want_error_code, f"a decision ({decision.outcome})"))
        return result
    if coverage is not None:
        coverage.record(compiled, decision.kind, facts, decision.reasons[0].rule)
    want = dict(test.want)
    contains = want.pop("reason_contains", None)
    actual = actual_fields(decision)
    if "deadlines" in want:  # a bare date checks the date; {date, status} checks the keys it gives
        wanted = want["deadlines"]
        actual["deadlines"] = {
            name: {k: got[k] for k in wanted[name]} if isinstance(wanted.get(name), dict) else got["date"]
            for name, got in actual["deadlines"].items()}
    if "alternatives" in want:  # an outcome alone checks the outcome; a mapping checks its keys
        wanted_alts = want["alternatives"]
        actual["alternatives"] = [
            got["outcome"] if i < len(wanted_alts) and isinstance(wanted_alts[i], str)
            else {k: got[k] for k in (wanted_alts[i] if i < len(wanted_alts) else got)}
            for i, got in enumerate(actual["alternatives"])]
    result.diffs = [(k, v, actual[k]) for k, v in want.items() if actual[k] != v]
    if contains and not any(contains in r.text for r in decision.reasons):
        result.diffs.append(("reason text", f"contains {contains!r}", [r.text for r in decision.reasons]))
    return result


def _branches(rule_id: str, cond: ir.Cond, path: str = "") -> list[tuple[str, ir.Cond]]:
    """Every operand of every and/or, or the whole condition when it has none."""
    if isinstance(cond, (ir.All, ir.Any)) and cond.items:
        out = []
        for i, item in enumerate(cond.items):
            out.append((f"{rule_id}{path}/{i}", item))
            out.extend(_branches(rule_id, item, f"{path}/{i}") if isinstance(item, (ir.All, ir.Any)) else [])
        return out
    return [(f"{rule_id}{path}", cond)]


@dataclass(slots=True)
class _PolicyCoverage:
    label: str
    rules: dict[str, bool]
    branches: dict[str, tuple[str, set[str]]]   # id -> (condition text, values seen)


@dataclass(slots=True)
class Coverage:
    """Rules and branches exercised by tests, per policy version."""

    policies: dict[str, _PolicyCoverage] = field(default_factory=dict)

    def add_policy(self, compiled: CompiledPolicy) -> _PolicyCoverage:
        p = compiled.policy
        key = f"{p.vendor} {p.version}"
        if key not in self.policies:
            rules = {r.rule.id: False for k in compiled.kinds.values() for r in k.rules}
            branches = {bid: (node.text, set()) for k in compiled.kinds.values() for r in k.rules
                        for bid, node in _branches(r.rule.id, r.cond)}
            self.policies[key] = _PolicyCoverage(key, rules, branches)
        return self.policies[key]

    def record(self, compiled: CompiledPolicy, kind: str, facts: dict[str, Any], decided: str) -> None:
        cov = self.add_policy(compiled)
        if decided in cov.rules:  # a rule counts when it decides, not merely when it matches
            cov.rules[decided] = True
        for r in compiled.kinds[kind].rules:
            for bid, node in _branches(r.rule.id, r.cond):
                cov.branches[bid][1].add(ir.evaluate3(node, facts))

    def totals(self, cov: _PolicyCoverage | None = None) -> tuple[int, int, int, int]:
        """(rules covered, rules, branch directions covered, branch directions)."""
        items = [cov] if cov else list(self.policies.values())
        rules = sum(sum(c.rules.values()) for c in items), sum(len(c.rules) for c in items)
        seen = sum(len(v & {ir.TRUE, ir.FALSE}) for c in items for _, v in c.branches.values())
        return rules[0], rules[1], seen, 2 * sum(len(c.branches) for c in items)

    def report(self) -> list[str]:
        lines = []
        for cov in self.policies.values():
            lines.append(_line(cov.label, *self.totals(cov)))
            lines += [f"    rule {r} is not exercised" for r, ok in cov.rules.items() if not ok]
            for bid, (text, seen) in cov.branches.items():
                missing = {ir.TRUE, ir.FALSE} - seen
                if missing:
                    lines.append(f"    branch {bid} `{text}` never {' or '.join(sorted(missing))}")
        lines.append(_line("total", *self.totals()))
        return lines

    def rule_percent(self) -> float:
        covered, total, _, _ = self.totals()
        return 100.0 * covered / total if total else 100.0


def _pct(a: int, b: int) -> str:
    return f"{100.0 * a / b:.1f}%" if b else "100.0%"


def _line(label: str, rc: int, rt: int, bc: int, bt: int) -> str:
    return f"  {label}: rules {rc}/{rt} ({_pct(rc, rt)}), branches {bc}/{bt} ({_pct(bc, bt)})"


def find_test_files(root: Path) -> list[Path]:
    """Test files under a policy directory tree (``*/tests/*.yaml``), or the file itself."""
    if root.is_file():
        return [root]
    direct = sorted((root / "tests").glob("*.yaml"))
    return direct or sorted(root.glob("*/tests/*.yaml"))


def policy_dir_of(test_file: Path) -> Path | None:
    """The policy directory a test file belongs to (the parent of its ``tests/``)."""
    parent = test_file.parent
    if parent.name == "tests" and any(parent.parent.glob("policy*.yaml")):
        return parent.parent
    return None
