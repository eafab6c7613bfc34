"""Grammar-aware generation of policies: typed facts, expressions of the policy language, rules.

Most generated policies are well formed and well typed (so that they reach
compile and decide); some carry an ill-typed or unparsable expression, or a
damaged line, so that every stage's errors are exercised too.
"""

from __future__ import annotations

from typing import Any

import yaml
from hypothesis import strategies as st

FACT_TYPES = ["bool", "integer", "decimal", "money", "date", "enum", "string", "duration", "datetime"]
OUTCOMES = ["refund", "partial_refund", "credit", "replace", "repair", "exchange", "cancel", "approve", "deny",
            "needs_info", "not_applicable"]
ENUM_VALUES = ["alpha", "beta", "gamma", "delta"]
SMALL = st.integers(0, 400).map(str)
# Literals mostly plain, sometimes with huge exponents or digit counts (money('1e999999') once
# took a minute to load under rete): they must load fast or be refused at their line.
DEC_LIT = st.one_of(st.builds(lambda a, b: f"{a}.{b:02d}", st.integers(0, 9999), st.integers(0, 99)),
                    st.builds(lambda a, b: f"{a}.{b:02d}", st.integers(0, 9999), st.integers(0, 99)),
                    st.sampled_from(["1e999999", "1e-999999", "9" * 60, "0." + "0" * 40 + "1", "1e15", "-0.00"]))


class Grammar:
    """Typed expression strategies over a set of declared facts."""

    def __init__(self, facts: dict[str, str]) -> None:
        self.facts = sorted(facts)
        self._built: dict[tuple[str, int], st.SearchStrategy[str]] = {}
        self.by_type: dict[str, list[str]] = {}
        for name, kind in facts.items():
            self.by_type.setdefault(kind, []).append(name)
        self.by_type.setdefault("date", []).append("as_of")

    def names(self, kind: str) -> st.SearchStrategy[str]:
        return st.sampled_from(self.by_type[kind]) if self.by_type.get(kind) else st.nothing()

    def expr(self, kind: str, depth: int = 2) -> st.SearchStrategy[str]:
        """An expression of type ``kind`` at most ``depth`` operators deep (each strategy built once)."""
        key = (kind, depth)
        if key not in self._built:
            self._built[key] = self._expr(kind, depth)
        return self._built[key]

    def _expr(self, kind: str, depth: int) -> st.SearchStrategy[str]:
        leaves = {"bool": st.one_of(self.names("bool"), st.sampled_from(["true", "false"])),
                  "integer": st.one_of(self.names("integer"), SMALL),
                  "decimal": st.one_of(self.names("decimal"), DEC_LIT),
                  "money": st.one_of(self.names("money"), DEC_LIT.map(lambda x: f"money('{x}')")),
                  "date": st.one_of(self.names("date"), st.sampled_from(["date('2025-01-31')",
                                                                         "date('2024-02-29')"]))}[kind]
        if depth == 0:
            return leaves
        sub = lambda k: self.expr(k, depth - 1)  # noqa: E731
        fmt = lambda template, *parts: st.tuples(*parts).map(lambda xs: template.format(*xs))  # noqa: E731
        cmp = st.sampled_from(["==", "!=", "<", "<=", ">", ">="])
        options: dict[str, list[st.SearchStrategy[str]]] = {
            "bool": [fmt("not ({})", sub("bool")), fmt("({}) and ({})", sub("bool"), sub("bool")),
                     fmt("({}) or ({})", sub("bool"), sub("bool")),
                     fmt("{} {} {}", sub("integer"), cmp, sub("integer")),
                     fmt("{} {} {}", sub("money"), cmp, sub("money")),
                     fmt("{} {} {}", sub("date"), cmp, sub("date")),
                     fmt("{} {} {}", sub("decimal"), cmp, sub("integer")),
                     fmt("has({})", st.sampled_from(self.facts)),
                     fmt("{} == '{}'", self.names("enum"), st.sampled_from(ENUM_VALUES)),
                     fmt("{} in ['{}', '{}']", self.names("enum"), st.sampled_from(ENUM_VALUES),
                         st.sampled_from(ENUM_VALUES)),
                     fmt("{} {} {}", self.names("string"), st.sampled_from(["==", "!="]),
                         st.sampled_from(["'x'", "''"])),
                     fmt("minutes({}) > {}", self.names("duration"), SMALL),
                     fmt("date_of({}) <= {}", self.names("datetime"), sub("date"))],
            "integer": [fmt("{} + {}", sub("integer"), sub("integer")),
                        fmt("{} - {}", sub("integer"), sub("integer")),
                        fmt("{} * {}", sub("integer"), SMALL),
                        fmt("days_between({}, {})", sub("date"), sub("date")),
                        fmt("abs({})", sub("integer")), fmt("max({}, {})", sub("integer"), sub("integer")),
                        fmt("if {} then {} else {}", sub("bool"), sub("integer"), sub("integer"))],
            "decimal": [fmt("{} * {}", sub("decimal"), sub("decimal")),
                        fmt("{} / {}", sub("decimal"), sub("integer")),
                        fmt("{} + {}", sub("decimal"), sub("integer"))],
            "money": [fmt("{} + {}", sub("money"), sub("money")), fmt("{} - {}", sub("money"), sub("money")),
                      fmt("{} * {}", sub("money"), sub("decimal")), fmt("{} * {}", sub("money"), sub("integer")),
                      fmt("{} / {}", sub("money"), sub("integer")),
                      fmt("round({})", sub("money")), fmt("round({}, {})", sub("money"), SMALL), fmt("min({}, {})", sub("money"), sub("money")),
                      fmt("pro_rata({}, {}, {})", sub("money"), sub("integer"), sub("integer")),
                      fmt("coalesce({}, {})", sub("money"), sub("money")),
                      fmt("if {} then {} else {}", sub("bool"), sub("money"), sub("money"))],
            "date": [fmt("add_days({}, {})", sub("date"), st.one_of(SMALL, self.names("integer"))),
                     fmt("add_months({}, {})", sub("date"), st.integers(-24, 24).map(str)),
                     # Far from the calendar's data too: past its last year it must be refused.
                     fmt("add_business_days({}, {})", sub("date"),
                         st.one_of(st.integers(0, 60), st.integers(-60, 40000)).map(str))]}
        return st.one_of(leaves, leaves, *options[kind])


def junk_expr() -> st.SearchStrategy[str]:
    """Token soup: names, operators, literals and brackets in any order."""
    tokens = st.sampled_from(["a", "b", "(", ")", "[", "]", ",", "+", "*", "/", "-", "==", "and", "not",
                              "if", "then", "else", "in", "where", "1", "2.5", "'x'", "money(", "date(",
                              "has(", "**", "__import__", ".", "1e5", "@", "'"])
    return st.lists(tokens, min_size=1, max_size=12).map(" ".join)


@st.composite
def fact_spec(draw: st.DrawFn, kind: str) -> dict[str, Any]:
    spec: dict[str, Any] = {"type": kind, "meaning": "A fuzzed fact"}
    if kind == "enum":
        spec["values"] = draw(st.lists(st.sampled_from(ENUM_VALUES), min_size=1, max_size=4, unique=True))
    if kind in ("integer", "decimal", "money") and draw(st.booleans()):
        spec["minimum"] = draw(st.one_of(st.integers(-5, 5), st.integers(-5, 5),
                                         st.sampled_from([float("nan"), float("inf"), float("-inf"), 1e300])))
    return spec


@st.composite
def policy_doc(draw: st.DrawFn, vendor: str = "fuzzco") -> tuple[str, str]:
    """(policy.yaml text, source.txt text)."""
    names = draw(st.lists(st.from_regex(r"[a-z][a-z0-9_]{0,6}", fullmatch=True).filter(
        lambda n: n not in ("as_of", "and", "or", "not", "in", "if", "then", "else", "true", "false",
                            "where", "has")), min_size=1, max_size=8, unique=True))
    facts = {n: draw(st.sampled_from(FACT_TYPES)) for n in names}
    g = Grammar(facts)
    broken = draw(st.integers(0, 9)) == 0
    expr = lambda kind: draw(junk_expr() if broken and draw(st.booleans()) else g.expr(kind))  # noqa: E731
    clauses: list[str] = []
    kinds: dict[str, Any] = {}
    for k in range(draw(st.integers(1, 2))):
        rules = []
        for i in range(draw(st.integers(1, 4))):
            clause = f"Clause {k}.{i}: the vendor's sentence number {len(clauses)}."
            clauses.append(clause)
            rule: dict[str, Any] = {"id": f"rule-{k}-{i}", "clause": clause, "when": expr("bool"),
                                    "outcome": draw(st.sampled_from(OUTCOMES)),
                                    "reason": {"en": "Rule {k} {i} decides.".replace("{k}", str(k)).replace(
                                        "{i}", str(i))}}
            if draw(st.booleans()):
                rule["amount"] = expr("money")
            if draw(st.integers(0, 3)) == 0:
                rule["customer_pays"] = expr("money")
            if draw(st.integers(0, 3)) == 0:
                rule["deadlines"] = [{"name": "respond by", "date": expr("date")}]
            if draw(st.integers(0, 3)) == 0:
                rule["fees"] = [{"name": "fee", "value": expr("money")}]
            if draw(st.integers(0, 4)) == 0:
                rule["override"] = True
            rules.append(rule)
        kinds[f"kind{k}"] = {"title": f"Kind {k}", "combine": draw(st.sampled_from(["first_match", "priority"])),
                             "otherwise": {"outcome": "not_applicable", "reason": {"en": "No rule applies."}},
                             "rules": rules}
    doc: dict[str, Any] = {
        "clause": 1, "vendor": vendor, "name": "Fuzz Co", "version": "1", "effective_from": "2024-01-01",
        "currency": draw(st.sampled_from(["USD", "CRC", "EUR", "JPY"])),
        "country": draw(st.sampled_from(["US", "CR", "ES", "JP"])), "timezone": "America/New_York",
        "languages": ["en"], "rounding": draw(st.sampled_from(["half_up", "half_even", "down"])),
        "source": {"file": "source.txt"},
        "facts": {n: draw(fact_spec(t)) for n, t in facts.items()}, "kinds": kinds}
    if draw(st.booleans()):
        doc["derived"] = {"derived_total": {"expr": expr("money"), "meaning": "A derived amount"}}
    text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
    if broken and draw(st.booleans()):  # damage one line: drop it, or cut it short
        lines = text.splitlines()
        at = draw(st.integers(0, len(lines) - 1))
        lines[at] = lines[at][: draw(st.integers(0, len(lines[at])))]
        text = "\n".join(lines) + "\n"
    return text, "\n".join(clauses) + "\n"
