"""Try a policy change without shipping it: check edited YAML text, run the
policy's tests against it, and show what it would change (``clause diff``).

The edited text lives only in memory: it is parsed from the request, never
written anywhere. Its ``source.file`` may only name a file inside the served
policy's own directory (so an edit cannot make the server read elsewhere).
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine import schemas
from engine._yaml import parse_yaml
from engine.compiler import CompiledPolicy, compile_policy
from engine.diff import compare, generated_cases
from engine.engine import Engine
from engine.errors import Diagnostic, EngineError, PolicyError
from engine.loader import _Builder
from engine.testing import find_test_files, load_tests, run_test
from engine.trace import check_trace

if TYPE_CHECKING:
    from engine._yaml import Document
    from engine.model import Policy


class _TextBuilder(_Builder):
    """The loader's builder, reading the source text only from inside the policy directory."""

    def __init__(self, doc: Document, path: Path, original: Policy) -> None:
        super().__init__(doc, path)
        self.original = original

    def source(self) -> str:
        name = self.data["source"]["file"]
        if name == self.original.source_file:
            return self.original.source_text
        home = self.path.parent.resolve()
        target = (home / name).resolve()
        if not target.is_relative_to(home) or not target.is_file():
            self.error("file", f"source.file must name a file in the policy's directory, found {name!r}",
                       ("source", "file"))
            return ""
        return super().source()


def load_text(text: str, original: Policy) -> Policy:
    """A Policy from edited YAML ``text``, located as the original file.

    Raises:
        PolicyError: every problem found, with line and column.
    """
    doc, problems = parse_yaml(text, original.file)
    if doc is None or problems:
        raise PolicyError(problems)
    if not isinstance(doc.data, dict):
        raise PolicyError([Diagnostic("schema", "a policy must be a mapping", doc.loc(()))])
    problems = schemas.check(doc, "policy.schema.json")
    if problems:
        raise PolicyError(problems)
    return _TextBuilder(doc, Path(original.file), original).build()


def _others(engine: Engine, vendor: str, digest: str) -> list[CompiledPolicy]:
    """The vendor's other loaded versions (the edit replaces one of them)."""
    return [c for c, _ in engine._versions.get(vendor, ()) if c.policy.digest != digest]  # noqa: SLF001


def check(engine: Engine, original: CompiledPolicy, text: str) -> tuple[CompiledPolicy | None, list[dict[str, Any]]]:
    """(the compiled edit or None, its diagnostics as JSON, errors then trace warnings)."""
    try:
        compiled = compile_policy(load_text(text, original.policy))
    except EngineError as err:
        return None, [dict(d.to_dict(), severity="error") for d in err.diagnostics]
    return compiled, [dict(d.to_dict(), severity="warning") for d in check_trace(compiled.policy)]


def run_tests(engine: Engine, original: CompiledPolicy, edited: CompiledPolicy) -> list[dict[str, Any]]:
    """The original policy's tests, decided by the edited policy."""
    files = find_test_files(Path(original.policy.file).parent)
    trial = Engine([edited, *_others(engine, original.policy.vendor, original.policy.digest)],
                   engine.matcher_name)
    out = []
    try:
        for file in files:
            for test in load_tests(file):
                r = run_test(trial, test)
                out.append({"name": test.name, "file": file.name, "line": test.location.line,
                            "passed": r.passed, "error": r.error,
                            "diffs": [{"field": f, "want": _j(w), "got": _j(g)} for f, w, g in r.diffs]})
    except PolicyError as err:
        out.append({"name": "(test files)", "passed": False, "error": "; ".join(d.render() for d in err.diagnostics),
                    "diffs": []})
    finally:
        trial.close()
    return out


def _j(value: Any) -> Any:
    """A diff value in JSON form (Decimals and dates as text)."""
    if isinstance(value, dict):
        return {k: _j(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_j(v) for v in value]
    return value if value is None or isinstance(value, (str, int, float, bool)) else str(value)


def what_if(original: CompiledPolicy, edited: CompiledPolicy,
            cases: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """``cases`` (or generated ones) decided by both versions: groups of changes, money moved."""
    old, new = Engine([original]), Engine([edited])
    try:
        generated = cases is None
        cases = generated_cases(old, new) if cases is None else cases
        groups, moved = compare(old, new, cases)
    finally:
        old.close()
        new.close()
    return {"cases": len(cases), "generated": generated, "changed": sum(g.count for g in groups),
            "groups": [{"change": g.change, "count": g.count, "amount_delta": _money(g.amount_delta),
                        "customer_delta": _money(g.customer_delta), "examples": g.examples}
                       for g in groups],
            "moved": _money(moved)}


def _money(values: dict[str, Decimal]) -> dict[str, str]:
    return {c: f"{v:f}" for c, v in sorted(values.items()) if v}


def try_change(engine: Engine, original: CompiledPolicy, text: str, with_what_if: bool,
               cases: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Diagnostics, test results and (on request) the what-if of an edited policy text.

    The what-if decides ``cases`` when given (an uploaded corpus), else
    cases generated from both versions' facts.
    """
    edited, diagnostics = check(engine, original, text)
    if edited is None:
        return {"ok": False, "diagnostics": diagnostics, "tests": None, "what_if": None}
    if edited.policy.vendor != original.policy.vendor:
        diagnostics.insert(0, {**Diagnostic("policy", f"the edit names vendor {edited.policy.vendor!r}; "
                                            f"this editor holds {original.policy.vendor!r}").to_dict(),
                               "severity": "error"})
        return {"ok": False, "diagnostics": diagnostics, "tests": None, "what_if": None}
    tests = run_tests(engine, original, edited)
    return {"ok": True, "diagnostics": diagnostics, "tests": tests,
            "what_if": what_if(original, edited, cases) if with_what_if else None}
