"""Helpers the ``clause`` verbs share: which policy directory and saying so; the common
options (``--format``, ``--policies``, ``--matcher``); diagnostics and exit code 1.

Policy directory, first that applies: ``--policies DIR``; the environment
variable ``CLAUSE_POLICIES``; ``./policies`` when the current directory has
one (so an author editing a checkout sees the edit, as conftest reads
``./policy``); else the policies bundled with the package. Every verb that
reads policies names the directory it used in one line — on stdout next to
text output, on stderr when stdout carries a document for programs (JSON,
JUnit, SARIF, a template), so the document stays parseable.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from engine._resources import bundled_policies_dir
from engine.engine import MATCHERS, Engine
from engine.errors import Diagnostic, EngineError

if TYPE_CHECKING:
    from collections.abc import Iterator


ENV = "CLAUSE_POLICIES"


@dataclass(frozen=True, slots=True)
class PolicySource:
    """The policy directory a command uses, and why that one."""

    path: Path
    origin: str  # "--policies", "$CLAUSE_POLICIES", "./policies" or "bundled"

    def line(self) -> str:
        """One line naming the directory, e.g. ``policies: /x/policies (./policies)``."""
        return f"policies: {self.path} ({self.origin})"


def resolve_policies(given: Path | None, cwd: Path | None = None) -> PolicySource:
    """The policy directory for ``--policies`` value ``given`` (see the module docstring)."""
    if given is not None:
        return PolicySource(given, "--policies")
    env = os.environ.get(ENV)
    if env:
        return PolicySource(Path(env), f"${ENV}")
    local = (cwd or Path.cwd()) / "policies"
    if local.is_dir():
        return PolicySource(Path("policies").resolve() if cwd is None else local, "./policies")
    return PolicySource(bundled_policies_dir(), "bundled")


def announce(source: PolicySource, machine: bool) -> None:
    """Name the policy directory: stdout for text, stderr when stdout is for programs."""
    click.echo(source.line(), err=machine)


def policy_dir(given: Path | None, machine: bool) -> Path:
    """Resolve the policy directory and name it; the one call most verbs need."""
    source = resolve_policies(given)
    announce(source, machine)
    return source.path


def check_lang(lang: str, languages_by_vendor: dict[str, tuple[str, ...]], vendor: str | None = None) -> None:
    """A usage error (exit 2) when no policy concerned is written in ``lang``.

    ``vendor`` narrows the check to one vendor (``clause decide``); without
    it (``clause batch``) the language must be one some loaded policy has.
    An unknown vendor is left to the engine, which names the known ones.
    """
    if vendor is not None and vendor not in languages_by_vendor:
        return
    scope = {vendor: languages_by_vendor[vendor]} if vendor is not None else languages_by_vendor
    if any(lang in langs for langs in scope.values()):
        return
    listed = "; ".join(f"{v}: {', '.join(langs)}" for v, langs in sorted(scope.items()))
    raise click.BadParameter(f"{lang!r} is not a language of the policies ({listed})",
                             param_hint="'--lang'")


def languages(engine: Engine) -> dict[str, tuple[str, ...]]:
    """Languages of every loaded vendor (the union over its versions, in order)."""
    out: dict[str, tuple[str, ...]] = {}
    for vendor, versions in engine.vendors.items():
        out[vendor] = tuple(dict.fromkeys(lang for p in versions for lang in p.languages))
    return out


@contextmanager
def readable(source: Path) -> Iterator[Path]:
    """``source`` itself, or for ``-`` standard input spooled to a temporary file (removed after)."""
    if str(source) != "-":
        yield source
        return
    with tempfile.TemporaryDirectory(prefix="clause-stdin-") as tmp:
        yield spool_stdin(Path(tmp))


def spool_stdin(directory: Path) -> Path:
    """Copy standard input to a file in ``directory`` (batch reads its input twice: count, decide)."""
    target = directory / "stdin"
    stream = sys.stdin.buffer
    with target.open("wb") as out:
        while block := stream.read(1 << 16):
            out.write(block)
    return target


# --- shared by the command modules (cli.py, engine/cliserve.py) --------------------------

FORMAT = click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
                      show_default=True, help="text for people, json for programs (stable).")
POLICIES = click.option("--policies", "policies", type=click.Path(path_type=Path), default=None,
                        help="Policy directory [default: $CLAUSE_POLICIES, else ./policies if "
                             "there is one, else the bundled policies].")
MATCHER = click.option("--matcher", type=click.Choice(MATCHERS), default="python", show_default=True,
                       help="Matching back end: generated Python, or Rete on durable_rules.")


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


def source_lines(file: str, cache: dict[str, list[str] | None]) -> list[str] | None:
    if file not in cache:
        try:
            cache[file] = Path(file).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError):
            cache[file] = None
    return cache[file]


def report(diagnostics: tuple[Diagnostic, ...] | list[Diagnostic], fmt: str,
           texts: dict[str, list[str] | None] | None = None) -> None:
    """Print diagnostics: text to stderr with source line and caret, or JSON to stdout."""
    if fmt == "json":
        echo_json({"ok": False, "diagnostics": [d.to_dict() for d in diagnostics]})
        return
    cache: dict[str, list[str] | None] = dict(texts or {})
    for d in diagnostics:
        lines = source_lines(d.location.file, cache) if d.location and d.location.line else None
        click.echo(d.render(lines), err=True)
    click.echo(f"{len(diagnostics)} problem(s)", err=True)


def fail(err: EngineError, fmt: str, texts: dict[str, list[str] | None] | None = None) -> NoReturn:
    report(err.diagnostics, fmt, texts)
    sys.exit(1)


def load_engine(policies: Path, matcher: str, fmt: str) -> Engine:
    try:
        return Engine.load(policies, matcher=matcher)
    except EngineError as err:
        fail(err, fmt)


def open_log(target: str, fmt: str, read_only: bool = False) -> Any:
    from engine.log import DecisionLog  # noqa: PLC0415

    try:
        return DecisionLog(target, read_only=read_only)
    except EngineError as err:
        fail(err, fmt)
