"""Issue 9, hostile or careless policies: refused at load with a location, never a crash later.

Items 6 (policies that validated but crashed every decision), 7 (lint stays
near-linear in the number of rules), 13 (files stay inside the policy's
directory), 14 (``clause diff`` revisions never reach git as options) and 16
(Unicode digits in expressions).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from hardening_policy import HARD, write_policy
from test_robustness import ACME

from cli import main
from conftest import MATCHERS, ROOT
from engine import Engine, PolicyError
from engine.contained import FileRefused, read_inside
from engine.lint import lint_files
from engine.sample import FORCE_WINDOW, Sampler
from engine.compiler import compile_policy
from engine.loader import load_policy


def load_error(home: Path, matcher: str = "python") -> PolicyError:
    with pytest.raises(PolicyError) as info:
        Engine.load(home, matcher=matcher).close()
    return info.value


# --- item 6: refused at load, where written ------------------------------------------------

@pytest.mark.parametrize("matcher", MATCHERS)
@pytest.mark.parametrize(("old", "new", "line", "fragment"), [
    ("r: {type: decimal, meaning: r}", "r: {type: decimal, meaning: r, minimum: .nan}", 15,
     "minimum must be a finite number"),
    ("r: {type: decimal, meaning: r}", "r: {type: decimal, meaning: r, maximum: !!float -.inf}", 15,
     "maximum must be a finite number"),
    ("n: {type: integer, meaning: n}", "n: {type: integer, meaning: n, maximum: 1.0e+999999}", 14,
     "maximum must be a finite number below 10**15"),
    ('version: "1"', 'version: "1\\0x"', 4, "no control characters"),
    ('version: "1"', 'version: "1\\ud800"', 4, "invalid Unicode character"),  # libyaml refuses the escape itself
    ("money('100')", "money('1e999999')", 24, "out of range"),
    ("money('100')", "money('1e-999999')", 24, "decimal places"),
    ("money('100')", "money('١٠٠')", 24, "decimal number"),
    ("n > 2251799", "n > ٣", 26, "unexpected character"),
])
def test_policy_values_are_refused_at_their_line(tmp_path: Path, matcher: str, old: str, new: str, line: int,
                                                 fragment: str) -> None:
    assert old in ACME
    home = write_policy(tmp_path / "acme", ACME.replace(old, new, 1))
    (d,) = load_error(home, matcher).diagnostics
    assert fragment in d.message and d.location is not None and d.location.line == line
    d.to_dict()["message"].encode("utf-8")  # printable, even for a surrogate


def test_date_literals_are_bounded(tmp_path: Path) -> None:
    text = ACME.replace("datetime('2025-01-01T00:00:00.5+00:00')", "datetime('9999-12-31T00:00:00+00:00')")
    (d,) = load_error(write_policy(tmp_path / "acme", text)).diagnostics
    assert "years 1900-2999" in d.message


def test_lint_and_validate_survive_a_nan_minimum(tmp_path: Path, runner: CliRunner) -> None:
    home = write_policy(tmp_path / "acme", ACME.replace("r: {type: decimal, meaning: r}",
                                                         "r: {type: decimal, meaning: r, minimum: .nan}"))
    for verb in ("validate", "lint"):
        result = runner.invoke(main, [verb, str(home / "policy.yaml")])
        assert result.exit_code == 1 and "Traceback" not in result.output
        assert "policy.yaml:15:" in result.output


# --- item 7: lint's work grows linearly with the rules -------------------------------------------

def _many_rules(count: int) -> str:
    head = HARD[:HARD.index("    rules:\n") + len("    rules:\n")]
    return head + "".join(
        f"      - {{id: r{i}, clause: Refunds apply., when: \"n > {i} and r < {i}.5\", outcome: refund,"
        f" reason: {{en: x}}}}\n" for i in range(count))


def test_aimed_cases_force_a_bounded_number_of_conditions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    compiled = compile_policy(load_policy(write_policy(tmp_path / "acme", _many_rules(300)) / "policy.yaml"))
    sampler = Sampler(compiled)
    ranked = [r.cond for r in compiled.kinds["k"].ranked]
    calls = []
    real = Sampler.forcing
    monkeypatch.setattr(Sampler, "forcing", lambda self, cond, rng=None: calls.append(1) or real(self, cond, rng))
    for i in range(len(ranked)):
        sampler.cases("k", ["n", "r"], 3, sampler.aiming(ranked[:i], ranked[i]), salt=str(i))
    # each case forces at most the window plus its target; the rest is merged once per rule
    assert len(calls) <= len(ranked) * (3 * (FORCE_WINDOW + 1) + 1)
    assert len(calls) >= len(ranked) * 3  # and every case is still aimed


def test_lint_on_many_rules_still_finds_shadowed_rules(tmp_path: Path) -> None:
    text = _many_rules(60) + ("      - {id: late, clause: Refunds apply., when: n > 5 and r < 0.25,"
                               " outcome: refund, reason: {en: x}}\n")
    findings, _ = lint_files([write_policy(tmp_path / "acme", text) / "policy.yaml"])
    shadowed = {f.target for f in findings if f.code == "shadowed_rule"}
    assert "late" in shadowed  # wherever it matches, r0 (n > 0 and r < 0.5), 60 rules above, does


# --- item 13: files stay inside the policy's directory ------------------------------------------

@pytest.mark.parametrize("source", ["../../../../etc/hostname", "/etc/hostname", "/dev/zero", "../outside.txt"])
def test_source_outside_the_directory_is_refused(tmp_path: Path, source: str) -> None:
    (tmp_path / "outside.txt").write_text("Refunds apply. Big ones too.\n", encoding="utf-8")
    home = write_policy(tmp_path / "acme", ACME.replace("source: {file: source.txt}", f"source: {{file: {source}}}"))
    (d,) = load_error(home).diagnostics
    assert d.code == "file" and "outside the policy's directory" in d.message
    assert d.location is not None and d.location.line == 11


def test_a_symlinked_source_outside_is_refused(tmp_path: Path) -> None:
    home = write_policy(tmp_path / "acme", ACME)
    (home / "source.txt").unlink()
    (home / "source.txt").symlink_to("/etc/passwd")
    (d,) = load_error(home).diagnostics
    assert "outside the policy's directory" in d.message and "root:" not in d.message


def test_a_symlinked_policy_outside_is_refused_and_not_quoted(tmp_path: Path, runner: CliRunner) -> None:
    (tmp_path / "acme").mkdir()
    (tmp_path / "acme" / "policy.yaml").symlink_to("/etc/passwd")
    result = runner.invoke(main, ["validate", str(tmp_path / "acme" / "policy.yaml")])
    assert result.exit_code == 1 and "outside the policy's directory" in result.output
    assert "root:" not in result.output


def test_a_symlink_inside_the_directory_is_followed(tmp_path: Path) -> None:
    home = write_policy(tmp_path / "acme", ACME)
    (home / "terms.txt").write_text((home / "source.txt").read_text(encoding="utf-8"), encoding="utf-8")
    (home / "source.txt").unlink()
    (home / "source.txt").symlink_to("terms.txt")
    Engine.load(home).close()


def test_only_regular_files_of_bounded_size_are_read(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(FileRefused, match="not a regular file"):
        read_inside(tmp_path / "fifo", tmp_path)  # would block for ever if opened for reading
    (tmp_path / "big.txt").write_text("x" * 101, encoding="utf-8")
    with pytest.raises(FileRefused, match="larger than 100 bytes"):
        read_inside(tmp_path / "big.txt", tmp_path, limit=100)
    (tmp_path / "latin.txt").write_bytes(b"caf\xe9")
    with pytest.raises(FileRefused, match="not UTF-8"):
        read_inside(tmp_path / "latin.txt", tmp_path)
    assert read_inside(tmp_path / "big.txt", tmp_path) == "x" * 101


# --- item 14: diff revisions --------------------------------------------------------------------

@pytest.mark.parametrize("spec", ["--output=OUT.tar:HEAD", "-h", "HEAD:../../etc", "HEAD:/etc", "a b:policies",
                                  "HEAD\n:policies"])
def test_diff_revisions_never_reach_git_as_options(tmp_path: Path, spec: str) -> None:
    spec = spec.replace("OUT", str(tmp_path / "x"))
    result = subprocess.run([str(ROOT / ".venv" / "bin" / "python"), str(ROOT / "cli.py"), "diff", "--", spec,
                             "policies"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1, result.stderr
    assert "neither a path nor a git revision" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "x.tar").exists()


def test_diff_against_a_git_revision_still_works(runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    result = runner.invoke(main, ["diff", "HEAD:policies/itellum", "policies/itellum", "--cases",
                                  "policies/itellum/cases", "--format", "json"])
    assert result.exit_code == 0, result.output

