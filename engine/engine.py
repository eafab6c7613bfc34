"""The Engine: load policies once, decide many cases (the public entry point)."""

from __future__ import annotations

import decimal
from collections.abc import Mapping
from datetime import date, datetime
from pathlib import Path
from types import MappingProxyType
from zoneinfo import ZoneInfo
from typing import TYPE_CHECKING, Any, Callable

from engine._resources import default_policies_dir
from engine.bounds import check as check_bounds
from engine.bounds import split_case
from engine import fastpath
from engine.case import Case, case_head, coerce_facts
from engine.compiler import CompiledPolicy, compile_policy
from engine.currency import CURRENCY_FACT, case_currency
from engine.decide import decide as build_decision
from engine.errors import CaseError, Diagnostic, EngineError, EvaluationError, PolicyError
from engine.expressions.functions import EvalFailure
from engine.explain import Step, explain
from engine.loader import load_policy
from engine.money import CONTEXT

if TYPE_CHECKING:
    from engine.model import Decision, Policy

MATCHERS = ("python", "rete")


def policy_files(path: Path) -> list[Path]:
    """Policy files under ``path``: the file itself, or ``policy*.yaml`` one level down."""
    if path.is_file():
        return [path]
    direct = sorted(path.glob("policy*.yaml"))
    return direct or sorted(path.glob("*/policy*.yaml"))


def _make_matcher(name: str, compiled: CompiledPolicy) -> Any:
    if name == "python":
        from engine.match.python import PythonMatcher  # noqa: PLC0415
        return PythonMatcher(compiled)
    if name == "rete":
        from engine.match.rete import ReteMatcher  # noqa: PLC0415
        return ReteMatcher(compiled)
    raise ValueError(f"unknown matcher {name!r}; choose one of {', '.join(MATCHERS)}")


class Engine:
    """Compiled policies of several vendors, ready to decide cases.

    An Engine holds no global state and may be shared between threads;
    several Engines with different policies can live in one process.
    """

    def __init__(self, compiled: list[CompiledPolicy], matcher: str = "python",
                 today: Callable[[], date] | None = None) -> None:
        self.matcher_name = matcher
        self._today = today
        self._versions: dict[str, list[tuple[CompiledPolicy, Any]]] = {}
        self._fast: dict[str, list[tuple[Policy, dict[str, fastpath.Fast]]]] = {}
        for c in sorted(compiled, key=lambda c: c.policy.effective_from):
            m = _make_matcher(matcher, c)
            self._versions.setdefault(c.policy.vendor, []).append((c, m))
            self._fast.setdefault(c.policy.vendor, []).append((c.policy, fastpath.build(c, m)))
        self._vendors = MappingProxyType({v: tuple(c.policy for c, _ in cs) for v, cs in self._versions.items()})
        self._largest = {v: max((len(k.rules) for c, _ in cs for k in c.kinds.values()), default=0)
                         for v, cs in self._versions.items()}

    @classmethod
    def load(cls, path: str | Path | None = None, *, matcher: str = "python",
             today: Callable[[], date] | None = None) -> Engine:
        """Load, check and compile every policy under ``path`` (default: the bundled ones).

        Raises:
            PolicyError: every problem in every policy file, with locations.
            MatcherUnavailable: when ``matcher="rete"`` cannot run here.
        """
        root = Path(path) if path is not None else default_policies_dir()
        files = policy_files(root)
        if not files:
            raise PolicyError([Diagnostic("file", f"no policy files (policy*.yaml) under {root}")])
        compiled, problems = [], []
        for file in files:
            try:
                compiled.append(compile_policy(load_policy(file)))
            except PolicyError as err:
                problems.extend(err.diagnostics)
        if problems:
            raise PolicyError(problems)
        return cls(compiled, matcher, today)

    @property
    def vendors(self) -> Mapping[str, tuple[Policy, ...]]:
        """Loaded policy versions by vendor, oldest first (built once: the service reads it per request)."""
        return self._vendors

    def largest_kind(self, vendor: str) -> int:
        """Rules in the vendor's largest kind, any version (0 for an unknown vendor): a bound on
        how much one decision may cost, which the service uses to keep big ones off its event loop."""
        return self._largest.get(vendor, 0)

    def policy(self, vendor: str, as_of: date | None = None) -> Policy:
        return self._select(vendor, as_of or self._default_as_of(vendor))[0].policy

    def _default_as_of(self, vendor: str) -> date:
        """Today — in the vendor's time zone, so a deadline is never a day off on a UTC server."""
        if self._today is not None:
            return self._today()
        versions = self._versions.get(vendor)
        if not versions:
            return date.today()
        return datetime.now(ZoneInfo(versions[-1][0].policy.timezone)).date()

    def _select(self, vendor: str, as_of: date, case: Case | None = None) -> tuple[CompiledPolicy, Any]:
        def where(key: str) -> Any:
            return case.document.loc((key,)) if case is not None and case.document else None

        versions = self._versions.get(vendor)
        if not versions:
            raise CaseError([Diagnostic("case", f"unknown vendor {vendor!r}; known: "
                                        + ", ".join(sorted(self._versions)), where("vendor"), "/vendor")])
        for c, m in reversed(versions):
            if _in_force(c.policy, as_of):
                return c, m
        raise CaseError([Diagnostic("case", f"no {vendor} policy is in force on {as_of}", where("as_of"),
                                    "/as_of")])

    def _version_date(self, case: Case, as_of: date) -> date:
        versions = self._versions.get(case.vendor)
        return _version_day(versions[-1][0].policy.version_by if versions else None, case.facts, as_of)

    def _prepare(self, case: Case | Mapping[str, Any]) -> tuple[Case, date, CompiledPolicy, Any, dict[str, Any],
                                                                dict[str, Any]]:
        if not isinstance(case, Case):
            case = Case.from_mapping(case)
        as_of = case.as_of or self._default_as_of(case.vendor)
        compiled, matcher = self._select(case.vendor, self._version_date(case, as_of), case)
        if case.kind not in compiled.kinds:
            raise CaseError([Diagnostic(
                "case", f"unknown kind {case.kind!r} for {case.vendor}; kinds: "
                + ", ".join(compiled.kinds), case.document.loc(("kind",)) if case.document else None,
                "/kind")])
        case, bounds = split_case(case, compiled.policy)  # bounded facts stay out of the match
        facts = coerce_facts(case, compiled.policy, compiled.readers)
        check_bounds(compiled.policy, facts, bounds, case.document, compiled.relations)
        facts["as_of"] = as_of  # readable by expressions as the decision date
        facts[CURRENCY_FACT] = case_currency(case, compiled.policy)  # the decision's currency
        return case, as_of, compiled, matcher, facts, bounds

    def _run(self, case: Case | Mapping[str, Any], lang: str) -> tuple[Decision, CompiledPolicy, dict[str, Any]]:
        case, as_of, compiled, matcher, facts, bounds = self._prepare(case)
        with decimal.localcontext(CONTEXT):
            run_checks(compiled, facts)
            kind = compiled.kinds[case.kind]
            missed: dict[str, str] = {}
            kind.derive(facts, missed)
            matched = matcher.match(case.kind, facts)
            decision = build_decision(compiled, case.kind, facts, matched, missed,
                                      case_id=case.id, as_of=as_of, lang=lang, bounds=bounds)
        return decision, compiled, facts

    def decide(self, case: Case | Mapping[str, Any], *, lang: str = "en") -> Decision:
        """Decide one case (a :class:`Case` or a mapping shaped like the case schema).

        A plain dict goes first to its kind's generated decide path
        (:mod:`engine.fastpath`); what that path does not take, the generic
        one decides — the same Decision either way.

        Raises:
            CaseError: the case is malformed or a fact has the wrong name or type.
            EvaluationError: an expression failed on this case (e.g. division by zero).
        """
        if type(case) is dict:
            decision = self._decide_fast(case, lang)
            if decision is not None:
                return decision
        return self._run(case, lang)[0]

    def _decide_fast(self, data: dict[str, Any], lang: str) -> Decision | None:
        """The generated path's Decision for ``data``, or None to take the generic path.

        Any exception also means None: the generic path decides the case
        again and reports what went wrong with its full context.
        """
        try:
            head = case_head(data)
            if head is None:
                return None
            vendor, kind, facts, case_id, as_of = head
            versions = self._fast.get(vendor)
            if versions is None:
                return None
            as_of = as_of or self._default_as_of(vendor)
            day = _version_day(versions[-1][0].version_by, facts, as_of)
            for p, kinds in reversed(versions):
                if _in_force(p, day):
                    fn = kinds.get(kind)
                    return None if fn is None else fn(facts, case_id, as_of, lang)
            return None
        except Exception:  # noqa: BLE001 - the generic path decides and reports it
            return None

    def explain(self, case: Case | Mapping[str, Any], *, lang: str = "en") -> tuple[Decision, list[Step]]:
        """Decide ``case`` and say, for every rule of its kind, why it did or did not decide."""
        decision, compiled, facts = self._run(case, lang)
        return decision, explain(compiled, compiled.kinds[decision.kind], facts, decision)

    def policy_by_digest(self, vendor: str, digest: str) -> Policy:
        """The loaded policy version of ``vendor`` with ``digest`` (KeyError if none)."""
        for compiled, _ in self._versions.get(vendor, ()):
            if compiled.policy.digest == digest:
                return compiled.policy
        raise KeyError(digest)

    def compiled(self, vendor: str, as_of: date | None = None) -> CompiledPolicy:
        return self._select(vendor, as_of or self._default_as_of(vendor))[0]

    def close(self) -> None:
        """Release back-end resources (the Rete rulesets)."""
        for versions in self._versions.values():
            for _, matcher in versions:
                matcher.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _in_force(policy: Policy, day: date) -> bool:
    """Whether ``policy`` is the version in force on ``day`` (its effective dates include it)."""
    return policy.effective_from <= day and (policy.effective_until is None or day <= policy.effective_until)


def _version_day(by: str | None, facts: Mapping[str, Any], as_of: date) -> date:
    """The day that picks the policy version: the ``version_by`` fact, else ``as_of``."""
    raw = facts.get(by) if by else None
    if isinstance(raw, datetime):  # a moment given by a Python caller: its day
        return raw.date()
    if isinstance(raw, date):
        return raw
    if isinstance(raw, str):
        try:
            return date.fromisoformat(raw)
        except ValueError:
            pass  # coercion reports it against the fact
    return as_of


def run_checks(compiled: CompiledPolicy, facts: dict[str, Any]) -> None:
    """The policy's checks on the case's facts (a check whose facts are not all given is skipped).

    Raises:
        CaseError: every check the facts fail.
        EvaluationError: a check failed to evaluate on these facts.
    """
    problems = []
    for needed, derive, fn, message, expr in compiled.checks:
        if not needed <= facts.keys():
            continue  # the check's facts are not all given: nothing to check
        try:
            derive(facts, {})
            ok = fn(facts)
        except KeyError:
            continue  # the check's facts are not all given: nothing to check
        except (EvalFailure, ArithmeticError, ValueError, OverflowError) as err:
            raise EvaluationError([Diagnostic("evaluation", f"checking {message!r}: {err}",
                                              expr.location)]) from err
        if not ok:
            problems.append(Diagnostic("case_check", message, None, "/facts", f"policy check: {expr.text}"))
    if problems:
        raise CaseError(problems)


__all__ = ["Engine", "EngineError"]
