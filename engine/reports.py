"""Machine-readable reports for CI: policy test results and lint findings.

``clause test --format json|junit`` and ``clause lint --format json|sarif``
render through here. The JSON shapes are stable (fields are added, never
renamed); JUnit XML follows the de-facto schema CI servers read (one
``testsuite`` per test file, one ``testcase`` per test, a ``failure`` with
the field-by-field differences); SARIF is version 2.1.0, with one
``reportingDescriptor`` per lint code so code scanning can group findings.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.lint import Finding
    from engine.testing import CaseResult, Coverage

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


def _version() -> str:
    try:
        return metadata.version("clause-engine")
    except metadata.PackageNotFoundError:
        return "0"


def failure_lines(result: CaseResult) -> list[str]:
    """A failed test's error and differences, one line each (as ``clause test`` prints them)."""
    lines = [f"error: {result.error}"] if result.error else []
    lines += [f"{name}: expected {json.dumps(want, ensure_ascii=False)}, "
              f"got {json.dumps(got, ensure_ascii=False)}" for name, want, got in result.diffs]
    return lines


def tests_json(results: list[CaseResult], cov: Coverage | None) -> dict[str, Any]:
    """The stable JSON report of a ``clause test`` run."""
    passed = sum(r.passed for r in results)
    return {"passed": passed, "failed": len(results) - passed, "results": [
        {"name": r.test.name, "file": r.test.location.file, "line": r.test.location.line,
         "passed": r.passed, "error": r.error,
         "diffs": [{"field": f, "expected": e, "actual": a} for f, e, a in r.diffs]}
        for r in results],
        "coverage": cov.report() if cov else None}


def tests_junit(results: list[CaseResult]) -> str:
    """JUnit XML: a ``testsuite`` per test file, a ``testcase`` per test."""
    root = ET.Element("testsuites", name="clause test", tests=str(len(results)),
                      failures=str(sum(not r.passed for r in results)), errors="0")
    by_file: dict[str, list[CaseResult]] = {}
    for r in results:
        by_file.setdefault(r.test.location.file, []).append(r)
    for file, items in by_file.items():
        suite = ET.SubElement(root, "testsuite", name=_suite_name(file), tests=str(len(items)),
                              failures=str(sum(not r.passed for r in items)), errors="0",
                              skipped="0", file=file)
        for r in items:
            case = ET.SubElement(suite, "testcase", name=r.test.name, classname=_suite_name(file),
                                 file=file, line=str(r.test.location.line))
            if not r.passed:
                lines = failure_lines(r)
                failure = ET.SubElement(case, "failure", message=lines[0] if lines else "failed",
                                        type="error" if r.error else "mismatch")
                failure.text = f"{file}:{r.test.location.line}\n" + "\n".join(lines)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _suite_name(file: str) -> str:
    """``vendor/tests/name`` for ``.../vendor/tests/name.yaml``: short and unique per vendor."""
    path = Path(file)
    parts = path.with_suffix("").parts
    return "/".join(parts[-3:]) if len(parts) >= 3 else path.stem


def lint_json(findings: list[Finding], suppressed: int, files: list[Path]) -> dict[str, Any]:
    """The stable JSON report of a ``clause lint`` run."""
    errors = sum(f.severity == "error" for f in findings)
    return {"ok": errors == 0, "findings": [f.to_dict() for f in findings],
            "suppressed": suppressed, "files": [str(f) for f in files]}


def lint_sarif(findings: list[Finding], base: Path | None = None) -> dict[str, Any]:
    """SARIF 2.1.0: one run, one rule per finding code, file URIs relative to ``base``."""
    codes = sorted({f.code for f in findings})
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "clause", "version": _version(), "informationUri":
                    "https://clause.dev/docs/reference",
                "rules": [{"id": code, "name": code,
                           "shortDescription": {"text": code.replace("_", " ")}} for code in codes],
            }},
            "results": [_sarif_result(f, codes.index(f.code), base) for f in findings],
        }],
    }


def _sarif_result(finding: Finding, rule_index: int, base: Path | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "ruleId": finding.code, "ruleIndex": rule_index,
        "level": "error" if finding.severity == "error" else "warning",
        "message": {"text": finding.message},
    }
    loc = finding.location
    if loc is not None:
        physical: dict[str, Any] = {"artifactLocation": {"uri": _uri(loc.file, base)}}
        if loc.line:
            physical["region"] = {"startLine": loc.line, "startColumn": max(loc.column, 1)}
        out["locations"] = [{"physicalLocation": physical}]
    if finding.target:
        out["properties"] = {"target": finding.target}
    return out


def _uri(file: str, base: Path | None) -> str:
    """A relative URI when the file is under ``base`` (as code scanning expects), else absolute."""
    path = Path(file)
    if base is not None:
        try:
            return path.resolve().relative_to(base.resolve()).as_posix()
        except ValueError:
            pass
    return path.resolve().as_uri() if path.is_absolute() or path.exists() else path.as_posix()
