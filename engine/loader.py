"""Load a policy file: YAML → schema check → typed model with checked expressions.

Every problem is collected as a :class:`Diagnostic` with its file, line and
column; :func:`load_policy` raises one :class:`PolicyError` carrying all of
them, sorted by location.
"""

from __future__ import annotations

import hashlib
import re
from datetime import date
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Any

from engine import schemas
from engine._yaml import Document, json_path, parse_yaml, scalar_position
from engine.contained import FileRefused, read_inside
from engine.errors import Diagnostic, PolicyError
from engine.expressions import syntax
from engine.expressions import types as t
from engine.expressions.checker import check
from engine.expressions.syntax import ExprError
from engine.limits import bad_text, shown_text
from engine.location import SourceLocation
from engine.model import (Action, AlternativeDecl, Check, DeadlineDecl, Derived, Expr, FactDecl, Kind,
                          OutOfScope, Policy, Rule)
from engine import currency as currencies
from engine.bounds import fact_relation_errors

# Names every expression can read besides the declared facts.
RESERVED = {"as_of": t.DATE}
PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_]*)\}")
_SCALAR_TYPES = {
    "bool": t.BOOL, "integer": t.INTEGER, "decimal": t.DECIMAL, "money": t.MONEY,
    "date": t.DATE, "datetime": t.DATETIME, "duration": t.DURATION, "string": t.STRING,
}
# Result fields and the type each must have.
_RESULT_TYPES = {"amount": "money", "customer_pays": "money"}


def expression_location(doc: Document, path: tuple[Any, ...], offset: int) -> SourceLocation:
    """File position of character ``offset`` of the expression scalar at ``path``."""
    return scalar_position(doc, path, str(_get(doc.data, path)), offset)


def placeholders(rule: Rule) -> set[str]:
    """Names the rule's reason and action texts insert (``{name}``)."""
    return {n for text in rule.texts() for n in PLACEHOLDER.findall(text)}


def _get(data: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        data = data[part]
    return data


class _Builder:
    """Builds a Policy from a schema-valid document, collecting diagnostics."""

    def __init__(self, doc: Document, path: Path) -> None:
        self.doc = doc
        self.path = path
        self.data: dict[str, Any] = doc.data
        self.problems: list[Diagnostic] = []
        self.env: dict[str, t.Type] = {}

    def error(self, code: str, message: str, path: tuple[Any, ...], hint: str | None = None) -> None:
        self.problems.append(Diagnostic(code, message, self.doc.loc(path), json_path(path), hint))

    # --- facts ---------------------------------------------------------------
    def fact(self, name: str, spec: dict[str, Any], path: tuple[Any, ...]) -> FactDecl:
        kind = spec["type"]
        fields: dict[str, FactDecl] = {}
        if kind == "enum":
            typ = t.enum(tuple(spec["values"]))
        elif kind == "list":
            fields = {k: self.fact(k, v, (*path, "fields", k)) for k, v in spec["fields"].items()}
            typ = t.list_of(t.record({k: f.type for k, f in fields.items()}))
        else:
            typ = _SCALAR_TYPES[kind]
        bounds = {k: self.bound(spec[k], (*path, k)) for k in ("minimum", "maximum") if k in spec}
        question = self.text(spec["question"], (*path, "question")) if "question" in spec else None
        return FactDecl(name, typ, spec["meaning"], self.doc.loc(path), fields=MappingProxyType(fields),
                        example=spec.get("example"), clause=spec.get("clause"),
                        clause_location=self.doc.loc((*path, "clause")), **bounds,
                        **({"question": question} if question else {}),
                        at_most=spec.get("at_most"), at_least=spec.get("at_least"))

    def bound(self, raw: Any, path: tuple[Any, ...]) -> Decimal | None:
        """A ``minimum``/``maximum``: a finite number in the range cases may use."""
        value = Decimal(str(raw)) if not isinstance(raw, bool) and isinstance(raw, (int, float, Decimal)) else None
        if value is None or not value.is_finite() or (value and value.adjusted() >= 15):
            self.error("schema", f"{path[-1]} must be a finite number below 10**15, found {raw}", path)
            return None
        return value

    # --- expressions -----------------------------------------------------------
    def expr(self, path: tuple[Any, ...], want: str | None = None) -> Expr | None:
        text = _get(self.data, path)
        try:
            checked = check(syntax.parse(text), self.env)
        except ExprError as err:
            if err.code == "cascade":
                return None  # the real error was reported where the name is defined
            loc = expression_location(self.doc, path, err.start)
            self.problems.append(Diagnostic(err.code, err.message, loc, json_path(path), err.hint))
            return None
        if not self.data.get("currency") and any(
                type(v) is Decimal and v != 0 for v in checked.constants.values()):
            loc = expression_location(self.doc, path, 0)
            self.problems.append(Diagnostic(
                "money_literal", "a money literal needs the currency the source text names; "
                "this policy accepts several currencies (`currencies:`) and names none",
                loc, json_path(path), "declare `currency:` if the text names one, or read the "
                "amount from a fact; only money(0) is currency-free"))
            return None
        if want and checked.type.kind != want and not (want == "decimal" and checked.type.numeric):
            loc = expression_location(self.doc, path, 0)
            self.problems.append(Diagnostic(
                "expr_type", f"expected {want}, found {checked.type}", loc, json_path(path)))
            return None
        return Expr(text, expression_location(self.doc, path, 0), checked, json_path(path))

    def derived(self) -> dict[str, Derived]:
        """Check derived facts in dependency order, reporting cycles."""
        specs = self.data.get("derived") or {}
        deps: dict[str, set[str]] = {}
        for name, spec in specs.items():
            try:
                deps[name] = syntax.names(syntax.parse(spec["expr"])) & set(specs)
            except ExprError:
                deps[name] = set()
        out: dict[str, Derived] = {}
        in_cycle: set[str] = set()

        def on_cycle(cycle: list[str]) -> None:
            in_cycle.update(cycle)
            self.error("policy", "derived facts form a cycle: " + " -> ".join(cycle),
                       ("derived", cycle[0], "expr"))

        for name in _topological(deps, on_cycle):
            spec = specs[name]
            if name in in_cycle:
                self.env[name] = t.Type("error")  # reported once, as the cycle
                continue
            if name in self.env:
                self.error("policy", f"derived fact {name!r} has the name of a declared fact",
                           ("derived", name))
                continue
            expr = self.expr(("derived", name, "expr"))
            if expr is None:
                self.env[name] = t.Type("error")  # silences errors that only repeat this one
                continue
            self.env[name] = expr.type
            out[name] = Derived(name, expr, spec["meaning"], spec.get("interpretation"),
                                spec.get("clause"), self.doc.loc(("derived", name, "clause")))
        return out

    # --- rules -------------------------------------------------------------------
    def text(self, value: dict[str, str], path: tuple[Any, ...]) -> MappingProxyType[str, str]:
        for lang in self.data["languages"]:
            if lang not in value:
                self.error("policy", f"missing the {lang!r} text (the policy declares languages "
                           f"{', '.join(self.data['languages'])})", path)
        for lang, text in value.items():
            if lang not in self.data["languages"]:
                self.error("policy", f"text in {lang!r}, which 'languages' does not declare",
                           (*path, lang))
            for name in PLACEHOLDER.findall(text):
                if name not in self.env and name not in ("amount", "customer_pays"):
                    self.error("unknown_fact", f"placeholder {{{name}}} names no fact", (*path, lang))
        return MappingProxyType(dict(value))

    def rule(self, kind: str, index: int, spec: dict[str, Any]) -> Rule | None:
        path: tuple[Any, ...] = ("kinds", kind, "rules", index)
        when = self.expr((*path, "when"), "bool")
        results = {k: self.expr((*path, k), w) for k, w in _RESULT_TYPES.items() if k in spec}
        fees = tuple((f["name"], self.expr((*path, "fees", i, "value"), "money"))
                     for i, f in enumerate(spec.get("fees", ())))
        deadlines = tuple((d["name"], self.expr((*path, "deadlines", i, "date"), "date"))
                          for i, d in enumerate(spec.get("deadlines", ())))
        actions = tuple(Action(a["party"], self.text(a["text"], (*path, "actions", i, "text")))
                        for i, a in enumerate(spec.get("actions", ())))
        reason = self.text(spec["reason"], (*path, "reason"))
        deadline_texts = {d["name"]: self.text(d["text"], (*path, "deadlines", i, "text"))
                          for i, d in enumerate(spec.get("deadlines", ())) if "text" in d}
        alternatives = [self.alternative(a, (*path, "alternatives", i))
                        for i, a in enumerate(spec.get("alternatives", ()))]
        if when is None or None in results.values() or any(e is None for _, e in (*fees, *deadlines)) \
                or None in alternatives:
            return None
        return Rule(
            id=spec["id"], kind=kind, index=index, clause=spec["clause"], when=when,
            outcome=spec["outcome"], reason=reason, location=self.doc.loc(path),
            clause_location=self.doc.loc((*path, "clause")),
            interpretation=spec.get("interpretation"), override=spec.get("override", False),
            priority=spec.get("priority", 0), amount=results.get("amount"),
            customer_pays=results.get("customer_pays"),
            fees=fees, deadlines=deadlines, actions=actions,  # type: ignore[arg-type]
            deadline_texts=MappingProxyType(deadline_texts),
            alternatives=tuple(alternatives))  # type: ignore[arg-type]

    def alternative(self, spec: dict[str, Any], path: tuple[Any, ...]) -> AlternativeDecl | None:
        money = {k: self.expr((*path, k), "money") for k in ("amount", "customer_pays") if k in spec}
        text = self.text(spec["text"], (*path, "text"))
        if None in money.values():
            return None
        return AlternativeDecl(spec["outcome"], text, **money)

    def kind_deadline(self, kind: str, i: int, spec: dict[str, Any]) -> DeadlineDecl | None:
        path: tuple[Any, ...] = ("kinds", kind, "deadlines", i)
        day = self.expr((*path, "date"), "date")
        when = self.expr((*path, "when"), "bool") if "when" in spec else None
        text = self.text(spec["text"], (*path, "text"))
        if day is None or ("when" in spec and when is None):
            return None
        return DeadlineDecl(spec["name"], day, text, spec["clause"], self.doc.loc(path),
                            self.doc.loc((*path, "clause")), when)

    def kind(self, name: str, spec: dict[str, Any], seen_ids: dict[str, str]) -> Kind:
        rules = []
        for i, rspec in enumerate(spec["rules"]):
            if rspec["id"] in seen_ids:
                self.error("policy", f"rule id {rspec['id']!r} is already used in kind "
                           f"{seen_ids[rspec['id']]!r}", ("kinds", name, "rules", i, "id"))
            seen_ids[rspec["id"]] = name
            rule = self.rule(name, i, rspec)
            if rule:
                rules.append(rule)
        if spec["combine"] == "first_match" and any("priority" in r for r in spec["rules"]):
            self.error("policy", "'priority' has no effect with combine: first_match",
                       ("kinds", name, "combine"), "use combine: priority, or remove the priorities")
        reason = self.text(spec["otherwise"]["reason"], ("kinds", name, "otherwise", "reason"))
        deadlines = [self.kind_deadline(name, i, d) for i, d in enumerate(spec.get("deadlines", ()))]
        names = [d["name"] for d in spec.get("deadlines", ())]
        for i, dup in enumerate(names):
            if dup in names[:i]:
                self.error("policy", f"kind {name!r} declares deadline {dup!r} twice",
                           ("kinds", name, "deadlines", i, "name"))
        return Kind(name, spec["title"], spec["combine"], spec["otherwise"]["outcome"], reason,
                    tuple(rules), self.doc.key_loc(("kinds", name)),
                    tuple(d for d in deadlines if d is not None))

    def metadata(self) -> None:
        named = [("currency",)] if "currency" in self.data else []
        listed = self.data.get("currencies")
        named += [("currencies", i) for i in range(len(listed))] if isinstance(listed, list) else []
        for path in named:
            code = _get(self.data, path)
            if not currencies.known(code):
                self.error("schema", f"unknown currency {code!r}: not an ISO 4217 code", path)
        for key in ("effective_from", "effective_until", ):
            if key in self.data:
                try:
                    date.fromisoformat(self.data[key])
                except ValueError as err:
                    self.error("schema", f"{key}: {err}", (key,))
        try:
            from engine.calendar import Calendar
            Calendar(self.data["country"], self.data["timezone"], self.data.get("subdivision"))
        except Exception as err:  # noqa: BLE001 - holidays/zoneinfo raise assorted types
            self.error("schema", f"bad country, subdivision or timezone: {err}", ("country",))

    def source(self) -> str:
        source_path = self.path.parent / self.data["source"]["file"]
        try:
            return read_inside(source_path, self.path.parent)
        except FileRefused as err:
            self.error("file", f"cannot read the source text {source_path}: {err.reason}", ("source", "file"))
            return ""

    def names(self) -> None:
        """Names must match their pattern exactly (a JSON Schema ``$`` accepts a final newline)."""
        ident = re.compile(r"[a-z][a-z0-9_]*")
        checks: list[tuple[tuple[Any, ...], str, re.Pattern[str]]] = [
            (("vendor",), self.data["vendor"], re.compile(r"[a-z0-9][a-z0-9-]*"))]
        for section in ("facts", "derived", "kinds"):
            checks += [((section, k), k, ident) for k in self.data.get(section) or {}]
        for k, spec in self.data["facts"].items():
            checks += [(("facts", k, "fields", f), f, ident) for f in spec.get("fields", {})]
        for k, spec in self.data["kinds"].items():
            checks += [(("kinds", k, "rules", i, "id"), r["id"], re.compile(r"[a-z][a-z0-9-]*"))
                       for i, r in enumerate(spec["rules"])]
        for path, name, pattern in checks:
            if not pattern.fullmatch(name):
                self.error("schema", f"{name!r} is not a valid name (expected {pattern.pattern})", path)
        version = self.data["version"]
        if not re.fullmatch(r"[^\x00-\x1f\x7f]{1,100}", version) or bad_text(version):
            self.error("schema", f"version {shown_text(version)} must be at most 100 printable "
                       "characters (no control characters)", ("version",))

    def build(self) -> Policy:
        self.names()
        self.metadata()
        facts = {k: self.fact(k, v, ("facts", k)) for k, v in self.data["facts"].items()}
        for name in RESERVED:
            if name in facts:
                self.error("policy", f"{name!r} is reserved: it is the decision date of the case",
                           ("facts", name))
        self.env.update({k: f.type for k, f in facts.items()})
        self.env.update(RESERVED)
        for name, path, message in fact_relation_errors(facts):
            self.error("policy", message, ("facts", name, path))
        derived = self.derived()
        checks = tuple(Check(e, c["message"]) for i, c in enumerate(self.data.get("checks", ()))
                       if (e := self.expr(("checks", i, "expr"), "bool")))
        seen: dict[str, str] = {}
        kinds = {k: self.kind(k, v, seen) for k, v in self.data["kinds"].items()}
        version_by = self.data.get("version_by")
        if version_by and (version_by not in facts or facts[version_by].type.kind != "date"):
            self.error("policy", f"version_by must name a declared date fact, found {version_by!r}",
                       ("version_by",))
        source_text = self.source()
        if self.problems:
            raise PolicyError(self.problems)
        digest = hashlib.sha256(self.doc.text.encode() + b"\0" + source_text.encode()).hexdigest()
        until = self.data.get("effective_until")
        return Policy(
            vendor=self.data["vendor"], name=self.data["name"], version=self.data["version"],
            effective_from=date.fromisoformat(self.data["effective_from"]),
            effective_until=date.fromisoformat(until) if until else None,
            currency=self._default_currency(), country=self.data["country"],
            subdivision=self.data.get("subdivision"), timezone=self.data["timezone"],
            languages=tuple(self.data["languages"]), rounding=self.data["rounding"],
            file=str(self.path), source_file=self.data["source"]["file"], source_text=source_text,
            digest=digest, facts=MappingProxyType(facts), derived=MappingProxyType(derived),
            checks=checks, kinds=MappingProxyType(kinds),
            out_of_scope=tuple(OutOfScope(o["clause"], o["reason"], self.doc.loc(("out_of_scope", i, "clause")))
                               for i, o in enumerate(self.data.get("out_of_scope", ()))),
            source_path=str(self.path.parent / self.data["source"]["file"]),
            version_by=self.data.get("version_by"),
            suppress=tuple((x["code"], x["target"], x["reason"])
                           for x in self.data.get("lint", {}).get("suppress", ())),
            equivalent=tuple((x["at"], x["mutant"], x["reason"])
                             for x in self.data.get("mutation", {}).get("equivalent", ())),
            location=SourceLocation(str(self.path), 1, 1), text=self.doc.text,
            currencies=self._accepted(), currency_named="currency" in self.data)

    def _accepted(self) -> tuple[str, ...]:
        """The currencies cases may use: the named one, the listed ones, or () for any."""
        if "currency" in self.data:
            return (self.data["currency"],)
        listed = self.data["currencies"]
        return () if listed == currencies.ANY else tuple(listed)

    def _default_currency(self) -> str:
        """The decision's currency when a case gives no money fact."""
        accepted = self._accepted()
        return accepted[0] if accepted else currencies.NO_CURRENCY


def _topological(deps: dict[str, set[str]], on_cycle: Any) -> list[str]:
    """Order names so each comes after its dependencies; report each cycle once."""
    order: list[str] = []
    state: dict[str, int] = {}  # 1 = visiting, 2 = done

    def visit(name: str, trail: list[str]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            on_cycle([*trail[trail.index(name):], name])
            return
        state[name] = 1
        for dep in sorted(deps[name]):
            visit(dep, [*trail, name])
        state[name] = 2
        order.append(name)

    for name in deps:
        visit(name, [])
    return order


def read_document(path: Path) -> tuple[Document | None, list[Diagnostic]]:
    """Read and parse a YAML (or JSON) file into a located document."""
    try:  # a policy.yaml linked to a file outside its directory is not read (nor quoted)
        text = read_inside(path, path.parent)
    except FileRefused as err:
        return None, [Diagnostic("file", str(err), SourceLocation(str(path)))]
    return parse_yaml(text, str(path))


def build_policy(doc: Document, path: Path) -> Policy:
    """Build the Policy of an already schema-checked document (mutation testing edits one first).

    Raises:
        PolicyError: with every diagnostic found, sorted by location.
    """
    return _Builder(doc, path).build()


def load_policy(path: str | Path) -> Policy:
    """Load, schema-check and type-check one policy file.

    Raises:
        PolicyError: with every diagnostic found, sorted by location.
    """
    path = Path(path)
    doc, problems = read_document(path)
    if doc is None or problems:
        raise PolicyError(problems)
    if not isinstance(doc.data, dict):
        raise PolicyError([Diagnostic("schema", "a policy must be a mapping", doc.loc(()))])
    problems = schemas.check(doc, "policy.schema.json")
    if problems:
        raise PolicyError(problems)
    return _Builder(doc, path).build()
