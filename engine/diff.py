"""Impact of a policy change: decide the same cases under two versions (``clause diff``).

Each side is a policy file, a directory, or a git revision of ``policies/``
(``REV`` or ``REV:path``). Cases come from ``--cases`` (case files, test
files, JSON Lines, or a directory of them) or, without a corpus, are
generated from the declared facts of both sides with :mod:`engine.sample`,
so that every rule's boundaries are exercised and a change is never "no
differences" only because no corpus was given.
"""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from engine._yaml import parse_yaml
from engine.case import Case
from engine.engine import Engine
from engine.errors import CaseError, Diagnostic, EngineError
from engine.factschema import kind_facts
from engine.sample import Sampler

GENERATED_PER_KIND = 600


def load_side(spec: str, tmp: Path, matcher: str = "python") -> Engine:
    """An Engine for a path, or for a git revision (``REV`` or ``REV:path``)."""
    if Path(spec).exists():
        return Engine.load(spec, matcher=matcher)
    rev, _, sub = spec.partition(":")
    sub = sub or "policies"
    try:
        data = subprocess.run(["git", "archive", "--format=tar", rev, "--", sub],
                              capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as err:
        detail = err.stderr.decode(errors="replace").strip() if isinstance(err, subprocess.CalledProcessError) else str(err)
        raise CaseError([Diagnostic("file", f"{spec!r} is neither a path nor a git revision: {detail}")]) from err
    dest = tmp / rev.replace("/", "_")
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(dest, filter="data")
    return Engine.load(dest / sub, matcher=matcher)


def read_cases(path: Path) -> list[dict[str, Any]]:
    """Cases from a case file, a test file, JSON Lines, or a directory of them."""
    if path.is_dir():
        return [c for p in sorted(path.rglob("*")) if p.suffix in (".yaml", ".yml", ".json", ".jsonl")
                for c in read_cases(p)]
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise CaseError([Diagnostic("file", f"cannot read cases from {path}: {err}")]) from err
    if path.suffix == ".jsonl":
        out = []
        for number, line in enumerate(text.splitlines(), 1):
            try:
                out += [json.loads(line, parse_float=Decimal)] if line.strip() else []
            except (ValueError, RecursionError) as err:
                raise CaseError([Diagnostic("case", f"{path}:{number}: not a JSON case: {err}")]) from err
        return out
    doc, problems = parse_yaml(text, str(path))
    if doc is None or problems:
        raise CaseError(problems)
    if isinstance(doc.data, dict) and isinstance(doc.data.get("cases"), list):
        return [dict(c["input"], id=c["input"].get("id", c.get("note"))) for c in doc.data["cases"]
                if isinstance(c, dict) and isinstance(c.get("input"), dict)]
    return [doc.data] if isinstance(doc.data, dict) else []


def generated_cases(old: Engine, new: Engine) -> list[dict[str, Any]]:
    """Boundary-biased cases for every kind of every vendor on either side, each case once."""
    out: dict[str, dict[str, Any]] = {}
    for engine in (old, new):
        for versions in engine._versions.values():  # noqa: SLF001
            for compiled, _ in versions:
                sampler = Sampler(compiled)
                for kind in compiled.kinds:
                    for case in sampler.cases(kind, kind_facts(compiled, kind), GENERATED_PER_KIND):
                        key = json.dumps({k: v for k, v in case.items() if k != "id"}, sort_keys=True)
                        out.setdefault(key, case)
    return list(out.values())


@dataclass(slots=True)
class Group:
    change: str
    count: int = 0
    amount_delta: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    customer_delta: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    examples: list[str] = field(default_factory=list)


def _outcome(engine: Engine, case: dict[str, Any]) -> dict[str, Any]:
    try:
        d = engine.decide(Case.from_mapping(case))
    except EngineError as err:
        return {"outcome": "error:" + ",".join(x.code for x in err.diagnostics), "rule": None,
                "amount": None, "customer_pays": None, "fees": {}, "deadlines": {}, "actions": [],
                "missing_facts": []}
    return {"outcome": d.outcome, "rule": d.reasons[0].rule if d.reasons else None,
            "amount": d.amount, "customer_pays": d.customer_pays,
            "fees": {f.name: f.amount for f in d.fees},
            "deadlines": {x.name: x.date.isoformat() if x.date else None for x in d.deadlines},
            "actions": [(a.party, a.text) for a in d.actions],
            "missing_facts": [m.fact for m in d.missing_facts]}


def _describe(a: dict[str, Any], b: dict[str, Any]) -> str | None:
    if a["outcome"] != b["outcome"] or a["rule"] != b["rule"]:
        via = f"via rule {b['rule']}" + (f" (was {a['rule']})" if a["rule"] != b["rule"] else "")
        return f"{a['outcome']} → {b['outcome']} {via}"
    parts = [name for name in ("amount", "customer_pays", "fees", "deadlines", "actions", "missing_facts")
             if a[name] != b[name]]
    return f"{' and '.join(parts)} changed via rule {b['rule']}" if parts else None


def _delta(target: dict[str, Decimal], before: Any, after: Any) -> None:
    for money, sign in ((after, 1), (before, -1)):
        if money is not None:
            target[money.currency] += sign * money.value


def compare(old: Engine, new: Engine, cases: list[dict[str, Any]]) -> tuple[list[Group], dict[str, Decimal]]:
    """Groups of cases whose outcome, rule, amount or deadlines change, and the money moved."""
    groups: dict[str, Group] = {}
    moved: dict[str, Decimal] = defaultdict(Decimal)
    for i, case in enumerate(cases):
        a, b = _outcome(old, case), _outcome(new, case)
        change = _describe(a, b)
        if change is None:
            continue
        group = groups.setdefault(change, Group(change))
        group.count += 1
        _delta(group.amount_delta, a["amount"], b["amount"])
        _delta(group.customer_delta, a["customer_pays"], b["customer_pays"])
        for name in {*a["fees"], *b["fees"]}:  # fees are billed to the customer
            _delta(group.customer_delta, a["fees"].get(name), b["fees"].get(name))
        _delta(moved, a["amount"], b["amount"])
        if len(group.examples) < 3:
            group.examples.append(str(case.get("id") or f"#{i + 1}"))
    return sorted(groups.values(), key=lambda g: (-g.count, g.change)), dict(moved)


def run_diff(old_spec: str, new_spec: str, cases_path: Path | None,
             matcher: str = "python") -> tuple[int, list[Group], dict[str, Decimal], bool]:
    """Decide the corpus (or generated cases) under both sides; see :func:`compare`."""
    with tempfile.TemporaryDirectory(prefix="clause-diff-") as tmp:
        old = load_side(old_spec, Path(tmp), matcher)
        new = load_side(new_spec, Path(tmp), matcher)
    cases = read_cases(cases_path) if cases_path else generated_cases(old, new)
    groups, moved = compare(old, new, cases)
    old.close()
    new.close()
    return len(cases), groups, moved, cases_path is None
