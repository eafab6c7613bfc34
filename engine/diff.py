"""Impact of a policy change: decide the same cases under two versions (``clause diff``).

Each side is a policy file, a directory, or a git revision of ``policies/``
(``REV`` or ``REV:path``). Cases come from ``--cases`` (case files, test
files, JSON Lines, or a directory of them) or, without a corpus, are
generated from the declared facts of both sides with :mod:`engine.sample`,
so that every rule's boundaries are exercised and a change is never "no
differences" only because no corpus was given.

Each group of changes names the rule on both sides and shows, for its
examples, every changed value before → after. Money is totalled only over
a given corpus: generated cases draw each money and count fact on its own
from a fixed list (up to 100,000, e.g. 25,000 units × 100,000 per unit), so
a total over them would measure the generator, not the change — for them
the per-case range of the change is reported instead.
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import tarfile
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path, PurePosixPath
from typing import Any

from engine import jsonread
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
    commit = _resolve(spec, rev, sub)
    try:
        data = subprocess.run(["git", "archive", "--format=tar", commit, "--", sub],
                              capture_output=True, check=True).stdout
        dest = tmp / commit
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            tar.extractall(dest, filter="data")
    except (OSError, subprocess.CalledProcessError, tarfile.TarError) as err:
        raise CaseError([Diagnostic("file", f"cannot read {sub!r} at git revision {rev!r}: "
                                    f"{_detail(err)}")]) from err
    return Engine.load(dest / sub, matcher=matcher)


# A revision name git would read as a name, never as an option: no leading '-',
# no spaces, control characters or git's own forbidden ref characters.
_REVISION = re.compile(r"[A-Za-z0-9_.@/{}^~+][A-Za-z0-9_.@/{}^~+-]{0,199}")


def _resolve(spec: str, rev: str, sub: str) -> str:
    """The commit id ``rev`` names, checked before git sees it as anything but a revision."""
    subpath = PurePosixPath(sub)
    if not _REVISION.fullmatch(rev) or ".." in rev.split("/") or subpath.is_absolute() or ".." in subpath.parts \
            or sub.startswith("-"):
        raise CaseError([Diagnostic("file", f"{spec!r} is neither a path nor a git revision (REV or "
                                    "REV:path, with a relative path inside the repository)")])
    try:
        out = subprocess.run(["git", "rev-parse", "--verify", "--quiet", "--end-of-options",
                              f"{rev}^{{commit}}"], capture_output=True, check=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError) as err:
        raise CaseError([Diagnostic("file", f"{spec!r} is neither a path nor a git revision: "
                                    f"{_detail(err) or 'unknown revision'}")]) from err
    return out.strip()


def _detail(err: Exception) -> str:
    if isinstance(err, subprocess.CalledProcessError):
        return (err.stderr.decode(errors="replace") if isinstance(err.stderr, bytes) else err.stderr or "").strip()
    return str(err)


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
                out += [jsonread.loads(line)] if line.strip() else []
            except jsonread.JSONInputError as err:
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
    rule_before: str | None = None
    rule_after: str | None = None
    # per example: field -> (before, after), as display strings
    example_changes: list[dict[str, tuple[str, str]]] = field(default_factory=list)
    # per currency: the smallest and largest change of what the vendor pays, per case
    per_case: dict[str, list[Decimal]] = field(default_factory=dict)

    def note(self, case_id: str, a: dict[str, Any], b: dict[str, Any]) -> None:
        """Count one changed case: money deltas, its range, and (for the first three) the values."""
        self.count += 1
        _delta(self.amount_delta, a["amount"], b["amount"])
        _delta(self.customer_delta, a["customer_pays"], b["customer_pays"])
        for name in {*a["fees"], *b["fees"]}:  # fees are billed to the customer
            _delta(self.customer_delta, a["fees"].get(name), b["fees"].get(name))
        one: dict[str, Decimal] = defaultdict(Decimal)
        _delta(one, a["amount"], b["amount"])
        for currency, value in one.items():
            span = self.per_case.setdefault(currency, [value, value])
            span[0], span[1] = min(span[0], value), max(span[1], value)
        if len(self.examples) < 3:
            self.examples.append(case_id)
            self.example_changes.append(changed_values(a, b))


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


_COMPARED = ("amount", "customer_pays", "fees", "deadlines", "actions", "missing_facts")


def rule_label(rule: str | None) -> str:
    """A rule id for display; an input error has none."""
    return rule or "none (input error)"


def _describe(a: dict[str, Any], b: dict[str, Any]) -> str | None:
    """The group a changed case belongs to, naming the deciding rule on both sides."""
    if a["outcome"] != b["outcome"] or a["rule"] != b["rule"]:
        rules = (f"rule {rule_label(a['rule'])} → {rule_label(b['rule'])}" if a["rule"] != b["rule"]
                 else f"rule {rule_label(b['rule'])} on both sides")
        return f"{a['outcome']} → {b['outcome']}; {rules}"
    parts = [name for name in _COMPARED if a[name] != b[name]]
    return f"{', '.join(parts)} changed; rule {rule_label(b['rule'])} on both sides" if parts else None


def _show(value: Any) -> str:
    if value is None:
        return "none"
    if hasattr(value, "currency"):
        return f"{value.value} {value.currency}"
    return str(value)


def changed_values(a: dict[str, Any], b: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """Every value that differs between the two decisions, as (before, after) display strings."""
    out: dict[str, tuple[str, str]] = {}
    if a["outcome"] != b["outcome"]:
        out["outcome"] = (a["outcome"], b["outcome"])
    for name in ("amount", "customer_pays"):
        if a[name] != b[name]:
            out[name] = (_show(a[name]), _show(b[name]))
    for name in ("fees", "deadlines"):
        for key in dict.fromkeys([*a[name], *b[name]]):
            if a[name].get(key) != b[name].get(key):
                out[f"{name[:-1]} {key}"] = (_show(a[name].get(key)), _show(b[name].get(key)))
    if a["missing_facts"] != b["missing_facts"]:
        out["missing_facts"] = (", ".join(a["missing_facts"]) or "none", ", ".join(b["missing_facts"]) or "none")
    if a["actions"] != b["actions"]:
        out["actions"] = (f"{len(a['actions'])} action(s)", f"{len(b['actions'])} action(s), text changed"
                          if len(a["actions"]) == len(b["actions"]) else f"{len(b['actions'])} action(s)")
    return out


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
        group = groups.setdefault(change, Group(change, rule_before=a["rule"], rule_after=b["rule"]))
        group.note(str(case.get("id") or f"#{i + 1}"), a, b)
        _delta(moved, a["amount"], b["amount"])
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


def _signed(deltas: dict[str, Decimal]) -> dict[str, str]:
    return {c: f"{v:+f}" for c, v in sorted(deltas.items()) if v}


def report_json(total: int, groups: list[Group], moved: dict[str, Decimal], generated: bool) -> dict[str, Any]:
    """The stable JSON form of a diff; ``money_moved`` is null for generated cases (see the module doc)."""
    return {"cases": total, "generated": generated, "changed": sum(g.count for g in groups),
            "groups": [{"change": g.change, "count": g.count,
                        "rule_before": g.rule_before, "rule_after": g.rule_after,
                        "amount_delta": _signed(g.amount_delta),
                        "customer_pays_delta": _signed(g.customer_delta),
                        "amount_delta_per_case": {c: {"min": f"{lo:+f}", "max": f"{hi:+f}"}
                                                  for c, (lo, hi) in sorted(g.per_case.items()) if lo or hi},
                        "examples": g.examples,
                        "example_changes": [{"case": case, "changes": {k: {"before": x, "after": y}
                                                                       for k, (x, y) in ch.items()}}
                                            for case, ch in zip(g.examples, g.example_changes, strict=True)]}
                       for g in groups],
            "money_moved": None if generated else _signed(moved)}


def report_text(total: int, groups: list[Group], moved: dict[str, Decimal], generated: bool) -> list[str]:
    """Lines for people: each group with the rule on both sides and its examples' values before → after."""
    lines = [f"{total} {'generated' if generated else 'given'} cases, {sum(g.count for g in groups)} changed"]
    for g in groups:
        line = f"  {g.count} case(s): {g.change}"
        if generated:
            spans = [f"{lo:+f} to {hi:+f} {c}" if lo != hi else f"{lo:+f} {c}"
                     for c, (lo, hi) in sorted(g.per_case.items()) if lo or hi]
            line += "; vendor pays per case " + ", ".join(spans) if spans else ""
        else:
            for label, deltas in (("vendor pays", g.amount_delta), ("customer pays", g.customer_delta)):
                if _signed(deltas):
                    line += f"; {label} " + ", ".join(f"{v} {c}" for c, v in _signed(deltas).items())
        lines.append(line)
        for case, changes in zip(g.examples, g.example_changes, strict=True):
            shown = "; ".join(f"{k} {x} → {y}" for k, (x, y) in changes.items()) or "no value changed"
            lines.append(f"      {case}: {shown}")
    if generated:
        if groups:
            lines.append("Money is not totalled over generated cases; give --cases to total real cases.")
    elif _signed(moved):
        lines.append("Money moved (vendor pays): " + ", ".join(f"{v} {c}" for c, v in _signed(moved).items()))
    return lines
