"""Mutation testing of a policy's own tests (``clause test --mutate``).

A mutant is the policy with one small change to one expression — a rule's
``when``, a derived fact's ``expr``, or a rule's amount, customer_pays,
fee or deadline:

* a comparison flipped at its boundary (``<``↔``<=``, ``>``↔``>=``) or
  negated (``==``↔``!=``), ``and``↔``or``;
* an integer or decimal literal plus one, a ``date('…')`` literal one day
  earlier and one day later;
* one operand of an ``and`` chain dropped.

Each mutant is rebuilt from the parsed document (its expression text edited
at exact positions, then type-checked and compiled like any policy) and the
policy's tests run against it in process. A mutant is *killed* when some
test fails on it, *survives* when every test passes, is *invalid* when it
does not type-check (not counted), and is *equivalent* when the policy marks
it so under ``mutation.equivalent`` (not counted; a mark that matches no
mutant is reported). Score = killed / (killed + survived).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from engine._yaml import Document
from engine.compiler import compile_policy
from engine.engine import Engine, policy_files
from engine.errors import Diagnostic, PolicyError
from engine.expressions import syntax as s
from engine.loader import build_policy, expression_location, read_document
from engine.testing import run_test

if TYPE_CHECKING:
    from engine.compiler import CompiledPolicy
    from engine.location import SourceLocation
    from engine.testing import PolicyTest

SWAP = {"<": "<=", "<=": "<", ">": ">=", ">=": ">", "==": "!=", "!=": "==", "and": "or", "or": "and"}
_COMPARISONS = frozenset({"<", "<=", ">", ">=", "==", "!=", "in", "not in"})


@dataclass(frozen=True, slots=True)
class Edit:
    """One change to an expression's text and the fragment that shows it."""

    operator: str          # relational, logical, literal, date, drop_operand
    start: int             # replaced span of the expression text
    end: int
    replacement: str
    site: int              # offset reported as the mutant's position
    context: s.Node        # the fragment shown before -> after


@dataclass(frozen=True, slots=True)
class Mutant:
    """A policy with one expression changed."""

    path: tuple[Any, ...]  # document path of the expression
    at: str                # rule id, RULE/amount, RULE/fees/NAME, derived/NAME ...
    operator: str
    text: str              # the whole mutated expression
    before: str            # the changed fragment, as written
    after: str             # ... and as mutated
    location: SourceLocation

    @property
    def label(self) -> str:
        """How reports and ``mutation.equivalent`` name the mutant."""
        return f"{_squash(self.before)} -> {_squash(self.after)}"


@dataclass(slots=True)
class Result:
    mutant: Mutant
    status: str            # killed, survived, equivalent, invalid
    detail: str = ""       # the killing test, the equivalence reason, or the compile error


@dataclass(slots=True)
class PolicyReport:
    """The mutants of one policy file and what the tests made of them."""

    file: str
    vendor: str
    version: str
    results: list[Result] = field(default_factory=list)
    unused: list[tuple[str, str, str]] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.results)

    @property
    def score(self) -> float:
        killed, survived = self.count("killed"), self.count("survived")
        return 100.0 * killed / (killed + survived) if killed + survived else 100.0


def _squash(text: str) -> str:
    return " ".join(text.split())


# --- where to mutate ---------------------------------------------------------

def _walk(node: s.Node, parents: tuple[s.Node, ...] = ()) -> Iterator[tuple[s.Node, tuple[s.Node, ...]]]:
    yield node, parents
    for f in node.__dataclass_fields__:
        value = getattr(node, f)
        children = value if isinstance(value, tuple) else (value,)
        for child in children:
            if isinstance(child, s.Node):
                yield from _walk(child, (*parents, node))


def _parenthesized(node: s.Binary) -> bool:
    return node.left.start != node.start


def _chain(node: s.Node) -> list[s.Node]:
    """Operands of the ``and`` chain rooted at ``node`` (a parenthesized ``and`` is one operand)."""
    if isinstance(node, s.Binary) and node.op == "and":
        return [*_operand(node.left), *_operand(node.right)]
    return [node]


def _operand(node: s.Node) -> list[s.Node]:
    inner = isinstance(node, s.Binary) and node.op == "and" and not _parenthesized(node)
    return _chain(node) if inner else [node]


def _context(parents: tuple[s.Node, ...], node: s.Node) -> s.Node:
    """The innermost comparison around ``node``, else its innermost operation."""
    for p in reversed(parents):
        if isinstance(p, s.Binary) and p.op in _COMPARISONS:
            return p
    for p in reversed(parents):
        if isinstance(p, (s.Binary, s.Call)):
            return p
    return node


def _token(op: str) -> re.Pattern[str]:
    """The operator as a token: a whole word, or ``<`` that is not part of ``<=``."""
    return re.compile(rf"\b{op}\b" if op.isalpha() else rf"(?<![<>=!]){re.escape(op)}(?![<>=])")


def _operator_edits(text: str, node: s.Binary, parents: tuple[s.Node, ...]) -> Iterator[Edit]:
    new = SWAP[node.op]
    pos = _token(node.op).search(text, node.left.end).start()  # type: ignore[union-attr]
    operator = "logical" if node.op in ("and", "or") else "relational"
    span = text[node.start:node.end]
    mutated = span[:pos - node.start] + new + span[pos - node.start + len(node.op):]
    inside_and = bool(parents) and isinstance(parents[-1], s.Binary) and parents[-1].op == "and"
    if new == "or" and inside_and and not _parenthesized(node):
        mutated = f"({mutated})"  # keep the mutant's tree: (a or b) and c
    yield Edit(operator, node.start, node.end, mutated, pos, node)


def _drop_edits(text: str, node: s.Binary) -> Iterator[Edit]:
    operands = _chain(node)
    for i, dropped in enumerate(operands):
        kept = " and ".join(text[o.start:o.end] for j, o in enumerate(operands) if j != i)
        yield Edit("drop_operand", node.start, node.end, f"({kept})" if _parenthesized(node) else kept,
                   dropped.start, node)


def _literal_edits(text: str, node: s.Literal, parents: tuple[s.Node, ...]) -> Iterator[Edit]:
    value = node.value
    if isinstance(value, (int, Decimal)) and not isinstance(value, bool):
        yield Edit("literal", node.start, node.end, str(value + 1), node.start, _context(parents, node))
        return
    call = parents[-1] if parents else None
    if isinstance(value, str) and isinstance(call, s.Call) and call.func == "date" and call.args == (node,):
        try:
            day = date.fromisoformat(value)
            days = [day - timedelta(days=1), day + timedelta(days=1)]
        except (ValueError, OverflowError):
            return  # the checker refuses it; nothing to mutate
        quote = text[node.start]
        for other in days:
            yield Edit("date", node.start, node.end, f"{quote}{other.isoformat()}{quote}", node.start,
                       _context(parents, node))


def edits(text: str, root: s.Node) -> list[Edit]:
    """Every mutation of the expression ``text`` (parsed as ``root``)."""
    out: list[Edit] = []
    for node, parents in _walk(root):
        if isinstance(node, s.Binary) and node.op in SWAP:
            out.extend(_operator_edits(text, node, parents))
        if isinstance(node, s.Binary) and node.op == "and":
            parent = parents[-1] if parents else None
            in_chain = isinstance(parent, s.Binary) and parent.op == "and" and not _parenthesized(node)
            if not in_chain:
                out.extend(_drop_edits(text, node))
        if isinstance(node, s.Literal):
            out.extend(_literal_edits(text, node, parents))
    return out


def expression_paths(data: dict[str, Any]) -> Iterator[tuple[tuple[Any, ...], str]]:
    """(document path, target name) of every mutated expression of a policy document."""
    for name, spec in (data.get("derived") or {}).items():
        if isinstance(spec, dict) and isinstance(spec.get("expr"), str):
            yield ("derived", name, "expr"), f"derived/{name}"
    for kind, kspec in (data.get("kinds") or {}).items():
        for i, rule in enumerate(kspec.get("rules") or ()):
            base, rid = ("kinds", kind, "rules", i), rule["id"]
            yield (*base, "when"), rid
            for key in ("amount", "customer_pays"):
                if key in rule:
                    yield (*base, key), f"{rid}/{key}"
            for j, fee in enumerate(rule.get("fees") or ()):
                yield (*base, "fees", j, "value"), f"{rid}/fees/{fee['name']}"
            for j, deadline in enumerate(rule.get("deadlines") or ()):
                yield (*base, "deadlines", j, "date"), f"{rid}/deadlines/{deadline['name']}"


def _get(data: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        data = data[part]
    return data


def mutants(doc: Document) -> list[Mutant]:
    """Every distinct mutant of the policy document ``doc``, in file order."""
    out: list[Mutant] = []
    seen: set[tuple[tuple[Any, ...], str]] = set()
    for path, at in expression_paths(doc.data):
        text = _get(doc.data, path)
        try:
            root = s.parse(text)
        except s.ExprError:
            continue  # the loader reports it
        for e in edits(text, root):
            mutated = text[:e.start] + e.replacement + text[e.end:]
            if (path, mutated) in seen or mutated == text:
                continue
            seen.add((path, mutated))
            delta = len(mutated) - len(text)
            before = text[e.context.start:e.context.end]
            after = mutated[e.context.start:e.context.end + delta]
            out.append(Mutant(path, at, e.operator, mutated, before, after,
                              expression_location(doc, path, e.site)))
    return out


# --- running -----------------------------------------------------------------

def _with(data: Any, path: tuple[Any, ...], value: str) -> Any:
    """A copy of ``data`` with ``value`` at ``path`` (only the path is copied)."""
    if not path:
        return value
    head, rest = path[0], path[1:]
    copy: Any = list(data) if isinstance(data, list) else dict(data)
    copy[head] = _with(data[head], rest, value)
    return copy


def _killer(engine: Engine, tests: list[PolicyTest]) -> str | None:
    """The first test that fails on ``engine``, or None when all pass."""
    for test in tests:
        try:
            passed = run_test(engine, test).passed
        except Exception as err:  # noqa: BLE001 - a crash on a mutant is a changed decision
            return f"{test.name} ({type(err).__name__})"
        if not passed:
            return test.name
    return None


def _run_one(mutant: Mutant, doc: Document, file: Path, others: list[CompiledPolicy],
             tests: list[PolicyTest], matcher: str) -> Result:
    changed = Document(_with(doc.data, mutant.path, mutant.text), doc.file, doc.text,
                       doc.locations, doc.styles, doc.spans)
    try:
        compiled = compile_policy(build_policy(changed, file))
    except PolicyError as err:
        return Result(mutant, "invalid", err.diagnostics[0].message if err.diagnostics else "")
    engine = Engine([*others, compiled], matcher)
    try:
        killer = _killer(engine, tests)
    finally:
        engine.close()
    return Result(mutant, "killed", killer) if killer else Result(mutant, "survived")


def _equivalent(mutant: Mutant, marks: tuple[tuple[str, str, str], ...]) -> tuple[str, str, str] | None:
    label = mutant.label
    return next((m for m in marks if m[0] == mutant.at and _squash(m[1]) == label), None)


def mutate_file(file: Path, others: list[CompiledPolicy], tests: list[PolicyTest],
                matcher: str = "python") -> PolicyReport:
    """Run ``tests`` against every mutant of the policy ``file``.

    ``others`` are the compiled other versions of the same vendor, which
    stay as they are while this file is mutated.
    """
    doc, problems = read_document(file)
    if doc is None or problems:
        raise PolicyError(problems)
    policy = build_policy(doc, file)
    report = PolicyReport(str(file), policy.vendor, policy.version)
    used: set[tuple[str, str, str]] = set()
    for mutant in mutants(doc):
        mark = _equivalent(mutant, policy.equivalent)
        if mark:
            used.add(mark)
            report.results.append(Result(mutant, "equivalent", mark[2]))
            continue
        report.results.append(_run_one(mutant, doc, file, others, tests, matcher))
    report.unused = [m for m in policy.equivalent if m not in used]
    return report


def mutate_dir(root: Path, tests: list[PolicyTest], matcher: str = "python") -> list[PolicyReport]:
    """Mutation-test every policy file under ``root`` with ``tests``.

    Raises:
        PolicyError: a policy does not load, or a test fails on the policies
            as they are (mutation testing needs a passing suite).
    """
    files = policy_files(root)
    compiled = {f: compile_policy(build_policy(_read(f), f)) for f in files}
    with Engine(list(compiled.values()), matcher) as engine:
        failing = [t for t in tests if not run_test(engine, t).passed]
    if failing:
        raise PolicyError([Diagnostic("mutation", f"test {t.name!r} fails on the unmutated policy; "
                                      "mutation testing needs a passing suite", t.location)
                           for t in failing])
    return [mutate_file(f, [c for g, c in compiled.items() if g != f], tests, matcher) for f in files]


def _read(file: Path) -> Document:
    doc, problems = read_document(file)
    if doc is None or problems:
        raise PolicyError(problems)
    return doc


# --- reporting ---------------------------------------------------------------

def total_score(reports: list[PolicyReport]) -> float:
    killed = sum(r.count("killed") for r in reports)
    survived = sum(r.count("survived") for r in reports)
    return 100.0 * killed / (killed + survived) if killed + survived else 100.0


def summary(report: PolicyReport) -> str:
    counted = report.count("killed") + report.count("survived")
    return (f"{report.vendor} {report.version}: {len(report.results)} mutants, "
            f"{report.count('killed')}/{counted} killed ({report.score:.1f}%), "
            f"{report.count('equivalent')} equivalent, {report.count('invalid')} invalid")


def render_text(reports: list[PolicyReport]) -> list[str]:
    """Surviving mutants at FILE:LINE:COL, unused equivalence marks, and scores."""
    lines = ["Mutation testing:"]
    for report in reports:
        for r in report.results:
            if r.status == "survived":
                loc = r.mutant.location
                lines.append(f"{loc.file}:{loc.line}:{loc.column}: survived [{r.mutant.at}] {r.mutant.label}")
        lines += [f"{report.file}: unused mutation.equivalent mark at {at!r}: {m!r} matches no mutant"
                  for at, m, _ in report.unused]
        lines.append("  " + summary(report))
    lines.append(f"  mutation score {total_score(reports):.1f}%")
    return lines


def to_dict(reports: list[PolicyReport]) -> dict[str, Any]:
    """The JSON form of the reports (stable keys)."""
    def result(r: Result) -> dict[str, Any]:
        loc = r.mutant.location
        return {"file": loc.file, "line": loc.line, "column": loc.column, "at": r.mutant.at,
                "operator": r.mutant.operator, "mutant": r.mutant.label, "status": r.status,
                "detail": r.detail}

    return {"score": round(total_score(reports), 2), "policies": [{
        "file": rep.file, "vendor": rep.vendor, "version": rep.version, "score": round(rep.score, 2),
        **{k: rep.count(k) for k in ("killed", "survived", "equivalent", "invalid")},
        "mutants": [result(r) for r in rep.results],
        "unused_equivalent": [{"at": a, "mutant": m, "reason": why} for a, m, why in rep.unused],
    } for rep in reports]}
