"""The ``clause`` command line: flags -> engine call -> render -> exit code.

Exit codes: 0 the command did its job (a ``deny`` or ``needs_info`` decision
is a job done); 1 invalid input (policy or case), with diagnostics; 2 usage
error (click's default). The serving verbs (``serve``, ``batch``, ``log``)
are in ``engine/cliserve.py``; the options and error reporting they share
with these in ``engine/cliutil.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from engine import CaseError, EngineError, Engine
from engine.cliserve import batch, log, render_decision, serve
from engine.cliutil import (FORMAT, MATCHER, POLICIES, check_lang, fail, languages, load_engine, policy_dir, report,
                            resolve_policies)
from engine.cliutil import echo_json as _echo_json
from engine.cliutil import open_log as _open_log
from engine.cliutil import source_lines as _source_lines
from engine._yaml import parse_yaml
from engine.case import Case
from engine.compiler import compile_policy
from engine.engine import policy_files
from engine.errors import Diagnostic, PolicyError
from engine.explain import render_text
from engine.factschema import facts_schema, kind_facts, template
from engine import reports
from engine.diff import report_json, report_text, run_diff
from engine.lint import lint_files
from engine.testing import Coverage, find_test_files, load_tests, policy_dir_of, run_test
from engine.loader import load_policy
from engine.match.python import PythonMatcher
from engine.mutate import mutate_dir, render_text as mutation_text, to_dict as mutation_dict
from engine.mutate import total_score as mutation_score
from engine.trace import check_trace


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="clause-engine")
def main() -> None:
    """Clause: decide what a vendor owes a customer, and why, from the vendor's terms."""


for _verb in (serve, batch, log):  # the serving verbs live in engine/cliserve.py
    main.add_command(_verb)


@main.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@FORMAT
@POLICIES
@MATCHER
def validate(paths: tuple[Path, ...], fmt: str, policies: Path | None, matcher: str) -> None:
    """Check policy files (default: every policy under --policies).

    Reports YAML and schema errors, unknown facts and type errors in
    expressions, each at FILE:LINE:COL. Exits 1 when any is found.
    """
    roots = list(paths) or [policy_dir(policies, fmt == "json")]
    files = [f for root in roots for f in (policy_files(root) if root.exists() else [root])]
    problems: list[Diagnostic] = []
    checked = []
    if not files:
        problems.append(Diagnostic("file", f"no policy files (policy*.yaml) under {', '.join(map(str, roots))}"))
    for file in files:
        try:
            compiled = compile_policy(load_policy(file))
            problems.extend(check_trace(compiled.policy))
            PythonMatcher(compiled).close()
            if matcher == "rete":
                from engine.match.rete import ReteMatcher  # noqa: PLC0415
                ReteMatcher(compiled).close()
            p = compiled.policy
            checked.append({"file": str(file), "vendor": p.vendor, "version": p.version,
                            "kinds": list(p.kinds), "rules": sum(len(k.rules) for k in p.kinds.values()),
                            "digest": p.digest})
        except EngineError as err:
            problems.extend(err.diagnostics)
    if problems:
        fail(PolicyError(problems), fmt)
    if fmt == "json":
        _echo_json({"ok": True, "policies": checked, "diagnostics": []})
        return
    for c in checked:
        click.echo(f"{c['file']}: ok ({c['vendor']} {c['version']}: {len(c['kinds'])} kinds, "
                   f"{c['rules']} rules)")


@main.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["text", "json", "sarif"]), default="text",
              show_default=True, help="text for people; json (stable codes) or SARIF 2.1.0 for CI.")
@POLICIES
def lint(paths: tuple[Path, ...], fmt: str, policies: Path | None) -> None:
    """Find shadowed rules, overlaps, gaps, unused facts and version conflicts.

    Exits 1 when a finding is an error. Suppress a finding kept on purpose
    in the policy (lint.suppress: code, target, reason).
    """
    roots = list(paths) or [policy_dir(policies, fmt != "text")]
    files = list(dict.fromkeys(f.resolve() for root in roots
                               for f in (policy_files(root) if root.is_dir() else [root])))
    if not files:
        fail(PolicyError([Diagnostic("file", "no policy files (policy*.yaml) under "
                                     + ", ".join(map(str, roots)))]), "text" if fmt == "text" else "json")
    findings, suppressed = lint_files(files)
    errors = sum(f.severity == "error" for f in findings)
    if fmt == "json":
        _echo_json(reports.lint_json(findings, suppressed, files))
    elif fmt == "sarif":
        _echo_json(reports.lint_sarif(findings, Path.cwd()))
    else:
        cache: dict[str, list[str] | None] = {}
        for f in findings:
            click.echo(f.render())
            lines = _source_lines(f.location.file, cache) if f.location and f.location.line else None
            if lines and 0 < f.location.line <= len(lines):
                click.echo(f"  {lines[f.location.line - 1].rstrip()}")
        click.echo(f"{len(files)} file(s): {errors} error(s), {len(findings) - errors} warning(s), "
                   f"{suppressed} suppressed")
    if errors:
        sys.exit(1)


@main.command("test")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--coverage", is_flag=True, help="Report the rules and condition branches the tests exercise.")
@click.option("--min-coverage", type=click.FloatRange(0, 100), default=None,
              help="Fail when rule coverage is below this percentage (implies --coverage).")
@click.option("--mutate", is_flag=True, help="Also run the tests against every mutant of the policies.")
@click.option("--min-mutation-score", type=click.FloatRange(0, 100), default=None,
              help="Fail when the mutation score is below this percentage (implies --mutate).")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "junit"]), default="text",
              show_default=True, help="text for people; json (stable) or JUnit XML for CI.")
@POLICIES
@MATCHER
def test_command(paths: tuple[Path, ...], coverage: bool, min_coverage: float | None, mutate: bool,
                 min_mutation_score: float | None, fmt: str, policies: Path | None, matcher: str) -> None:
    """Run policy tests (default: every policies/<vendor>/tests/*.yaml).

    Each test decides a case and compares the fields it expects; failures
    show expected and actual field by field with the test's FILE:LINE.
    With --mutate, each surviving mutant is shown at FILE:LINE:COL.
    """
    machine = fmt != "text"
    efmt = "json" if machine else "text"  # how diagnostics are reported
    fallback = policy_dir(policies, machine) if not paths else resolve_policies(policies).path
    roots = list(paths) or [fallback]
    files = [f for root in roots for f in find_test_files(root)]
    if not files:
        fail(CaseError([Diagnostic("file", "no test files (tests/*.yaml) under "
                                   + ", ".join(map(str, roots)))]), efmt)
    cov = Coverage() if coverage or min_coverage is not None else None
    engines: dict[Path | None, Engine] = {}
    results = []
    by_home: dict[Path | None, list[Any]] = {}
    for file in files:
        home = policy_dir_of(file)
        if home not in engines:
            engines[home] = load_engine(home or fallback, matcher, efmt)
            if cov is not None:
                for versions in engines[home]._versions.values():  # noqa: SLF001
                    for compiled, _ in versions:
                        cov.add_policy(compiled)
        try:
            tests = load_tests(file)
        except EngineError as err:
            fail(err, efmt)
        results += [run_test(engines[home], t, cov) for t in tests]
        by_home.setdefault(home, []).extend(tests)
    passed = sum(r.passed for r in results)
    below = cov is not None and min_coverage is not None and cov.rule_percent() < min_coverage
    mutation = None
    if (mutate or min_mutation_score is not None) and passed == len(results):
        mutation = _mutation(by_home, policies, matcher, fmt)
        below = below or (min_mutation_score is not None and mutation_score(mutation) < min_mutation_score)
    if fmt == "json":
        _echo_json({**reports.tests_json(results, cov),
                    **({"mutation": mutation_dict(mutation)} if mutation is not None else {})})
    elif fmt == "junit":
        click.echo(reports.tests_junit(results), nl=False)
        if below:
            click.echo(f"rule coverage {cov.rule_percent():.1f}% is below --min-coverage {min_coverage}%",
                       err=True)
    else:
        for r in results:
            if not r.passed:
                loc = r.test.location
                click.echo(f"{loc.file}:{loc.line}: FAIL {r.test.name}")
                for line in reports.failure_lines(r):
                    click.echo(f"    {line}")
        if cov is not None:
            click.echo("Coverage:")
            click.echo("\n".join(cov.report()))
            if below:
                click.echo(f"rule coverage {cov.rule_percent():.1f}% is below --min-coverage {min_coverage}%")
        if (mutate or min_mutation_score is not None) and mutation is None:
            click.echo("mutation testing skipped: the tests must pass first")
        if mutation is not None:
            click.echo("\n".join(mutation_text(mutation)))
            if min_mutation_score is not None and mutation_score(mutation) < min_mutation_score:
                click.echo(f"mutation score {mutation_score(mutation):.1f}% is below "
                           f"--min-mutation-score {min_mutation_score}%")
        click.echo(f"{passed} passed, {len(results) - passed} failed")
    for eng in engines.values():
        eng.close()
    if passed < len(results) or below:
        sys.exit(1)


def _mutation(by_home: dict[Path | None, list[Any]], policies: Path | None, matcher: str,
              fmt: str) -> list[Any]:
    """Mutation reports for the policies of each tested directory."""
    try:
        return [r for home, tests in by_home.items()
                for r in mutate_dir(home or resolve_policies(policies).path, tests, matcher)]
    except EngineError as err:
        fail(err, fmt)


@main.command()
@click.argument("old")
@click.argument("new")
@click.option("--cases", "cases_path", type=click.Path(exists=True, path_type=Path), default=None,
              help="Case files, test files, JSON Lines, or a directory of them "
                   "[default: cases generated to exercise every rule's boundaries].")
@FORMAT
@MATCHER
def diff(old: str, new: str, cases_path: Path | None, fmt: str, matcher: str) -> None:
    """Show which decisions change between two versions of a policy.

    OLD and NEW are policy files, directories, or git revisions of policies/
    (REV or REV:path). Changes are grouped (e.g. "42 case(s): refund → deny;
    rule X → Y"), with examples' values before → after and, for given cases,
    the money they move.
    """
    try:
        total, groups, moved, generated = run_diff(old, new, cases_path, matcher)
    except EngineError as err:
        fail(err, fmt)
    if fmt == "json":
        _echo_json(report_json(total, groups, moved, generated))
        return
    click.echo("\n".join(report_text(total, groups, moved, generated)))


def read_case(source: str, fmt: str) -> tuple[Case, dict[str, list[str] | None]]:
    """Read a case file (YAML or JSON; '-' for stdin)."""
    name = "<stdin>" if source == "-" else source
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        fail(CaseError([Diagnostic("file", f"cannot read case {source}: {err}")]), fmt)
    doc, problems = parse_yaml(text, name)
    texts = {name: text.splitlines()}
    if doc is None or problems:
        fail(CaseError(problems), fmt, texts)
    try:
        return Case.from_mapping(doc.data, doc), texts
    except CaseError as err:
        fail(err, fmt, texts)


@main.command()
@click.argument("case", metavar="CASE|-")
@click.option("--lang", default="en", show_default=True, help="Language of reasons and actions (en, es, ...).")
@click.option("--explain", is_flag=True, help="Also show why each rule of the kind did or did not decide.")
@click.option("--log", "log_target", default=None, help="Record the decision in this log (SQLite file or URL).")
@FORMAT
@POLICIES
@MATCHER
def decide(case: str, lang: str, explain: bool, log_target: str | None, fmt: str, policies: Path | None,
           matcher: str) -> None:
    """Decide one case file (YAML or JSON; '-' reads stdin)."""
    parsed, texts = read_case(case, fmt)
    engine = load_engine(policy_dir(policies, fmt == "json"), matcher, fmt)
    try:
        check_lang(lang, languages(engine), parsed.vendor)
        decision, steps = engine.explain(parsed, lang=lang) if explain else (engine.decide(parsed, lang=lang), None)
    except EngineError as err:
        fail(err, fmt, texts)
    finally:
        engine.close()
    if log_target:
        record = {"id": parsed.id, "vendor": parsed.vendor, "kind": parsed.kind,
                  "as_of": parsed.as_of.isoformat() if parsed.as_of else None, "facts": dict(parsed.facts)}
        log = _open_log(log_target, fmt)
        log.write(record, decision, engine.policy_by_digest(decision.vendor, decision.policy["digest"]),
                  "decide", lang)
        log.close()
    data = decision.to_dict()
    if fmt == "json":
        if steps is not None:
            data["explanation"] = [s.to_dict() for s in steps]
        _echo_json(data)
        return
    click.echo(render_decision(data))
    if steps is not None:
        click.echo(render_text(steps))


@main.command()
@click.argument("vendor")
@click.option("--source", "source", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True,
              help="The vendor's published terms (plain text), copied to source.txt.")
@click.option("--name", default=None, help="The vendor's name [default: VENDOR].")
@click.option("--currency", default="USD", show_default=True, help="ISO 4217 code of every amount.")
@click.option("--country", default="US", show_default=True, help="ISO 3166 country whose holidays count.")
@click.option("--timezone", default="UTC", show_default=True, help="IANA time zone of the vendor.")
@click.option("--languages", default="en", show_default=True, help="Comma-separated; en is required.")
@click.option("--kind", default="refund", show_default=True, help="The first kind of decision.")
@click.option("--policies", "policies", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where to create VENDOR/ [default: $CLAUSE_POLICIES, else ./policies].")
def init(vendor: str, source: Path, name: str | None, currency: str, country: str, timezone: str,
         languages: str, kind: str, policies: Path | None) -> None:
    """Start a policy for a new VENDOR from its terms: it validates and its test passes at once.

    Each deciding sentence of the source is listed under out_of_scope;
    replace those entries by rules one sentence at a time.
    """
    from engine.authoring.scaffold import create_vendor, skeleton  # noqa: PLC0415

    found = resolve_policies(policies)
    root = found.path if found.origin != "bundled" else Path("policies")
    try:
        written = create_vendor(root, source, skeleton(vendor, name, currency, country, timezone, languages,
                                                       kind))
    except EngineError as err:
        fail(err, "text")
    for path in written:
        click.echo(f"created {path}")
    click.echo(f"next: clause validate {written[1]} && clause test {written[2].parent}")


@main.command()
@click.argument("vendor")
@click.argument("kind", required=False)
@click.option("--template", "as_template", is_flag=True, help="Print a blank case to fill in.")
@click.option("--schema", "as_schema", is_flag=True, help="Print the JSON Schema of the vendor's facts.")
@FORMAT
@POLICIES
def facts(vendor: str, kind: str | None, as_template: bool, as_schema: bool, fmt: str,
          policies: Path | None) -> None:
    """List the facts a vendor's policy (or one KIND of it) reads."""
    engine = load_engine(policy_dir(policies, fmt == "json" or as_schema or as_template), "python", fmt)
    try:
        compiled = engine.compiled(vendor, _latest(engine, vendor, fmt))
    except EngineError as err:
        fail(err, fmt)
    policy = compiled.policy
    if kind is not None and kind not in policy.kinds:
        fail(CaseError([Diagnostic("case", f"unknown kind {kind!r} for {vendor}; kinds: "
                                   + ", ".join(policy.kinds))]), fmt)
    names = kind_facts(compiled, kind) if kind else list(policy.facts)
    if as_schema:
        _echo_json(facts_schema(policy, kind, names if kind else None))
        return
    if as_template:
        blank = template(policy, kind or next(iter(policy.kinds)), names)
        if fmt == "json":
            _echo_json(blank)
        else:
            click.echo(_yaml_template(blank, policy))
        return
    if fmt == "json":
        _echo_json({"vendor": vendor, "version": policy.version, "kind": kind,
                    "facts": [_fact_json(n, policy.facts[n]) for n in names]})
        return
    money_in = policy.currency if policy.currency_named else (
        ", ".join(policy.currencies) or "any ISO 4217 currency")
    click.echo(f"{policy.name} ({vendor} {policy.version}); money in {money_in}")
    for n in names:
        decl = policy.facts[n]
        click.echo(f"  {n}: {_type_label(decl)}")
        click.echo(f"      {decl.meaning}")


def _latest(engine: Engine, vendor: str, fmt: str) -> Any:
    versions = engine.vendors.get(vendor)
    if not versions:
        fail(CaseError([Diagnostic("case", f"unknown vendor {vendor!r}; known: "
                                   + ", ".join(sorted(engine.vendors)))]), fmt)
    return versions[-1].effective_from


def _type_label(decl: Any) -> str:
    t = decl.type
    if t.kind == "enum":
        return "enum: " + " | ".join(t.values)
    if t.kind == "list":
        return "list of {" + ", ".join(f"{k}: {_type_label(f)}" for k, f in decl.fields.items()) + "}"
    return t.kind


def _fact_json(name: str, decl: Any) -> dict[str, Any]:
    out = {"name": name, "type": decl.type.kind, "meaning": decl.meaning}
    if decl.type.kind == "enum":
        out["values"] = list(decl.type.values)
    if decl.type.kind == "list":
        out["fields"] = [_fact_json(k, f) for k, f in decl.fields.items()]
    return out


def _yaml_template(blank: dict[str, Any], policy: Any) -> str:
    lines = [f"# A blank {policy.vendor} case: fill in the facts you know, delete the others.",
             "id: ", f"vendor: {blank['vendor']}", f"kind: {blank['kind']}",
             "as_of:            # YYYY-MM-DD; empty = today", "facts:"]
    for name, value in blank["facts"].items():
        decl = policy.facts[name]
        lines.append(f"  # {decl.meaning} ({_type_label(decl)})")
        if isinstance(value, list):
            lines.append(f"  {name}:")
            for field_name in value[0]:
                lines.append(f"    - {field_name}: " if field_name == next(iter(value[0]))
                             else f"      {field_name}: ")
        else:
            lines.append(f"  {name}: ")
    return "\n".join(lines)


@main.command("fmt")
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option("--check", is_flag=True, help="Write nothing; list the files that would change and exit 1 if any.")
def fmt_command(paths: tuple[Path, ...], check: bool) -> None:
    """Lay out policy, test and case files canonically, keeping comments.

    PATHS are files or directories (every *.yaml under them); default
    ./policies. Key order, indentation and flow collections are normalised;
    every value is kept exactly as written.
    """
    from engine.fmt import run  # noqa: PLC0415 - ruamel is imported only to format
    roots = list(paths) or [Path("policies")]
    if not paths and not roots[0].is_dir():
        raise click.UsageError("no ./policies here: name the files or directories to format")
    lines, problems, failed = run(roots, check)
    for line in lines[:-1]:
        click.echo(line)
    click.echo(lines[-1], err=True)  # the summary
    if problems:
        report(problems, "text")
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()

