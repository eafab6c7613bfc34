"""The policy expression language (engine/expressions/*).

Covers parsing (precedence, if/then/else, where, in / not in, list
literals), refusals with code ``expr_syntax`` at the right offset (Python
internals, ``**``, exponent and over-long numbers, calls outside the
whitelist, chained comparisons, long or deep expressions), type errors
(``expr_type``) and unknown names (``unknown_fact`` with a hint), and
evaluation of compiled expressions: exact Decimal arithmetic, add_months
clamping, interval_minutes, and rounding with the policy's mode (through
small policies loaded by the Engine).
"""

from __future__ import annotations

import decimal
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from engine import Engine
from engine.calendar import Calendar
from engine.expressions import syntax as s
from engine.expressions import types as t
from engine.expressions.checker import check
from engine.expressions.codegen import Constants, generate
from engine.expressions.functions import RUNTIME
from engine.expressions.syntax import ExprError, parse
from engine.money import CONTEXT

RECORD = t.record({"start": t.DATETIME, "end": t.DATETIME, "pct": t.DECIMAL})
ENV: dict[str, t.Type] = {
    "price": t.MONEY, "fee": t.MONEY, "n": t.INTEGER, "m": t.INTEGER, "rate": t.DECIMAL,
    "day": t.DATE, "other_day": t.DATE, "flag": t.BOOL, "ok": t.BOOL, "label": t.STRING,
    "moment": t.DATETIME, "wait": t.DURATION,
    "cause": t.enum(("factory", "customer_misuse", "other")),
    "events": t.list_of(RECORD),
}
UTC = timezone.utc


def refusal(text: str, env: dict[str, t.Type] | None = None) -> ExprError:
    """The ExprError that parsing and checking ``text`` raises."""
    with pytest.raises(ExprError) as info:
        check(parse(text), ENV if env is None else env)
    return info.value


def type_of(text: str) -> str:
    return str(check(parse(text), ENV).type)


def evaluate(text: str, facts: dict[str, Any], env: dict[str, t.Type] | None = None) -> Any:
    """Compile ``text`` with the code generator and run it on ``facts``."""
    checked = check(parse(text), ENV if env is None else env)
    consts = Constants()
    source = generate(checked, consts)
    namespace = {"__builtins__": {}, **RUNTIME, **consts.values,
                 "_cal": Calendar("CR", "America/Costa_Rica")}
    fn = eval("lambda f: " + source, namespace)  # noqa: S307 - our own generated code
    with decimal.localcontext(CONTEXT):
        return fn(dict(facts))


# --- parsing ------------------------------------------------------------------

@pytest.mark.parametrize(
    ("text", "shape"),
    [
        ("1 + 2 * 3", ("+", 1, ("*", 2, 3))),
        ("(1 + 2) * 3", ("*", ("+", 1, 2), 3)),
        ("1 - 2 - 3", ("-", ("-", 1, 2), 3)),
        ("8 / 4 / 2", ("/", ("/", 8, 4), 2)),
        ("-n * 2", ("*", ("neg", "n"), 2)),
        ("flag or ok and flag", ("or", "flag", ("and", "ok", "flag"))),
        ("not flag and ok", ("and", ("not", "flag"), "ok")),
        ("not n == 1", ("not", ("==", "n", 1))),
        ("n + 1 < m * 2", ("<", ("+", "n", 1), ("*", "m", 2))),
        ("n == 1 or m == 2 and flag", ("or", ("==", "n", 1), ("and", ("==", "m", 2), "flag"))),
        ("n in [1, 2]", ("in", "n", ["list", 1, 2])),
        ("n not in [1, 2]", ("not in", "n", ["list", 1, 2])),
        ("if flag then 1 else 2 + 3", ("if", "flag", 1, ("+", 2, 3))),
        ("if flag then if ok then 1 else 2 else 3", ("if", "flag", ("if", "ok", 1, 2), 3)),
        ("events where pct <= 40 and flag", ("where", "events", ("and", ("<=", "pct", 40), "flag"))),
        ("count(events where pct > 1)", ("call", "count", ("where", "events", (">", "pct", 1)))),
        ("events.start", ("attr", "events", "start")),
        ("2.50", Decimal("2.50")),
        ("true and false", ("and", True, False)),
    ],
    ids=["mul-binds-tighter", "parens", "sub-left-assoc", "div-left-assoc", "unary-minus",
         "and-binds-tighter", "not-binds-tighter-than-and", "not-looser-than-compare",
         "arith-before-compare", "compare-before-bool", "in-list", "not-in-list", "if-else-greedy",
         "nested-if", "where-takes-or-and", "where-in-call", "attr-on-list",
         "decimal-literal", "bool-literals"],
)
def test_parse_shape(text: str, shape: Any) -> None:
    assert _shape(parse(text)) == shape


def _shape(node: s.Node) -> Any:
    if isinstance(node, s.Literal):
        return node.value
    if isinstance(node, s.Name):
        return node.name
    if isinstance(node, s.Binary):
        return (node.op, _shape(node.left), _shape(node.right))
    if isinstance(node, s.Unary):
        return ("neg" if node.op == "-" else "not", _shape(node.operand))
    if isinstance(node, s.IfElse):
        return ("if", _shape(node.cond), _shape(node.then), _shape(node.other))
    if isinstance(node, s.Where):
        return ("where", _shape(node.items), _shape(node.cond))
    if isinstance(node, s.ListLit):
        return ["list", *(_shape(i) for i in node.items)]
    if isinstance(node, s.Call):
        return ("call", node.func, *(_shape(a) for a in node.args))
    if isinstance(node, s.Attr):
        return ("attr", _shape(node.obj), node.name)
    raise AssertionError(node)


def test_literal_values_are_exact() -> None:
    assert parse("0.1").value == Decimal("0.1")  # type: ignore[attr-defined]
    assert isinstance(parse("12").value, int)  # type: ignore[attr-defined]
    assert parse("'a\\'b'").value == "a'b"  # type: ignore[attr-defined]


def test_node_spans() -> None:
    node = parse("a + (b * c)")
    assert isinstance(node, s.Binary)
    assert (node.start, node.end) == (0, 11)
    assert (node.right.start, node.right.end) == (4, 11)


def test_names_lists_every_bare_name() -> None:
    assert s.names(parse("if a then b.x else count(c where d > e)")) == {"a", "b", "c", "d", "e"}


# --- syntax refusals ----------------------------------------------------------------

@pytest.mark.parametrize(
    ("text", "start", "fragment"),
    [
        ("x.__class__", 2, "'_'"),
        ("price.__class__.__mro__", 6, "'_'"),
        ("events.__len__", 7, "'_'"),
        ("_secret > 1", 0, "'_'"),
        ("n > 1 and _hidden", 10, "'_'"),
        ("__import__('os')", 0, "'_'"),
        ("2 ** 3", 2, "**"),
        ("n ** 99999999999", 2, "**"),
        ("1e999", 0, "exponent"),
        ("n > 1.5e3", 4, "exponent"),
        ("n > " + "9" * 31, 4, "30 digits"),
        ("1." + "0" * 30, 0, "30 digits"),
        ("eval(x)", 0, "eval"),
        ("open(x)", 0, "open"),
        ("exec('1')", 0, "exec"),
        ("n > 1 and getattr(n, 'x')", 10, "getattr"),
        ("1 < n < 3", 6, "chain"),
        ("n == m == 1", 7, "chain"),
        ("n = 1", 2, "=="),
        ("n > 1 ;", 6, "';'"),
        ("n[0]", 1, "'['"),
        ("(n + 1", 6, "')'"),
        ("n +", 3, "value"),
        ("if flag then 1", 14, "'else'"),
        ("", 0, "empty"),
        ("n 2", 2, "'2'"),
        ("(n + 1)(2)", 0, "named functions"),
        ("'a' 'b'", 4, "'b'"),
        ("lambda: 1", 6, "':'"),
    ],
    ids=["dunder-attr", "dunder-chain", "dunder-on-list", "underscore-name", "underscore-later",
         "dunder-import", "power", "huge-exponent", "exponent-literal", "exponent-later",
         "31-digit-int", "31-digit-decimal", "eval", "open", "exec", "getattr", "chained-lt",
         "chained-eq", "single-equals", "semicolon", "indexing", "unclosed-paren", "dangling-op",
         "if-without-else", "empty", "two-values", "call-on-expression",
         "adjacent-strings", "lambda"],
)
def test_syntax_refused(text: str, start: int, fragment: str) -> None:
    err = refusal(text)
    assert err.code == "expr_syntax", err.message
    assert err.start == start, err.message
    assert fragment in err.message + (err.hint or "")


def test_thirty_digits_are_allowed() -> None:
    assert parse("9" * 30).value == int("9" * 30)  # type: ignore[attr-defined]


def test_unknown_function_hint_lists_whitelist() -> None:
    err = refusal("eval(x)")
    assert err.message == "unknown function 'eval'"
    assert err.hint is not None and "add_business_days" in err.hint and "days_between" in err.hint


def test_overly_long_expression() -> None:
    text = " + ".join(["n"] * 700)  # 2 098 characters
    assert len(text) > s.MAX_EXPRESSION_LENGTH
    err = refusal(text)
    assert (err.code, err.start) == ("expr_syntax", 0)
    assert "longer than 2000" in err.message


@pytest.mark.parametrize(
    "text",
    ["(" * 80 + "n" + ")" * 80, "-" * 80 + "n", "not " * 80 + "flag", "[" * 80 + "n" + "]" * 80,
     "abs(" * 80 + "n" + ")" * 80],
    ids=["parens", "unary-minus", "not", "lists", "calls"],
)
def test_overly_deep_expression(text: str) -> None:
    err = refusal(text)
    assert err.code == "expr_syntax"
    assert "deeper than 60" in err.message
    assert 0 < err.start < len(text)


def test_moderately_deep_expression_is_fine() -> None:
    assert type_of("(" * 20 + "n" + ")" * 20) == "integer"


# --- type errors ---------------------------------------------------------------------

@pytest.mark.parametrize(
    ("text", "start", "fragment"),
    [
        ("day < price", 0, "cannot compare date with money"),
        ("flag and day == price", 9, "cannot compare date with money"),
        ("price + 1", 0, "cannot apply + to money and integer"),
        ("price * fee", 0, "cannot apply * to money and money"),
        ("day + price", 0, "cannot apply + to date and money"),
        ("cause == 'fire'", 9, "'fire' is not one of the values factory, customer_misuse, other"),
        ("'fire' != cause", 0, "'fire' is not one of the values"),
        ("cause in ['factory', 'fire']", 21, "'fire' is not one of the values"),
        ("not n", 4, "'not' needs bool, found integer"),
        ("flag and n", 9, "'and' needs bool, found integer"),
        ("if flag then 1 else day", 20, "'then' gives integer but 'else' gives date"),
        ("if flag then price else 'x'", 24, "'then' gives money but 'else' gives string"),
        ("if n then 1 else 2", 3, "'if' needs bool"),
        ("label < 'b'", 0, "< needs ordered values"),
        ("n in [1, day]", 9, "list items must have one type"),
        ("[]", 0, "empty list"),
        ("price.value", 0, "has no fields"),
        ("events.stop", 0, "no field 'stop'"),
        ("n where flag", 0, "'where' filters a list of records"),
        ("events where n", 13, "'where' needs bool"),
        ("days_between(day, price)", 0, "argument 2 must be date"),
        ("add_months(day)", 0, "takes 2 argument(s), got 1"),
        ("-flag", 0, "cannot negate bool"),
        ("date('2025-02-30')", 5, "bad date literal"),
        ("datetime('2025-02-01T10:00:00')", 9, "needs a UTC offset"),
    ],
    ids=["date-vs-money", "date-vs-money-later", "money-plus-int", "money-times-money",
         "date-plus-money", "enum-bad-value", "enum-bad-value-left", "enum-bad-in-list",
         "not-integer", "and-integer", "if-branches-differ", "if-money-vs-string", "if-cond-not-bool",
         "string-ordering", "mixed-list", "empty-list", "field-of-money", "unknown-field",
         "where-on-scalar", "where-cond-not-bool", "bad-arg-type", "bad-arity", "negate-bool",
         "bad-date-literal", "naive-datetime-literal"],
)
def test_type_refused(text: str, start: int, fragment: str) -> None:
    err = refusal(text)
    assert err.code == "expr_type", err.message
    assert err.start == start, err.message
    assert fragment in err.message


def test_date_vs_money_hint() -> None:
    err = refusal("day < price")
    assert err.hint == "compare values of one kind (dates with dates, money with money)"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("price > 0", "bool"),
        ("price + fee", "money"),
        ("price * 2", "money"),
        ("price * rate", "money"),
        ("price / 3", "money"),
        ("price / fee", "decimal"),
        ("n / m", "decimal"),
        ("n * m", "integer"),
        ("n + 1.5", "decimal"),
        ("day + 3", "date"),
        ("3 + day", "date"),
        ("day - 3", "date"),
        ("day - other_day", "integer"),
        ("moment + wait", "datetime"),
        ("moment - moment", "duration"),
        ("if flag then n else rate", "decimal"),
        ("if flag then cause else label", "string"),
        ("cause == 'factory'", "bool"),
        ("cause in ['factory', 'other']", "bool"),
        ("events where pct <= 40", "list of record"),
        ("events.start", "list of datetime"),
        ("min(events.start)", "datetime"),
        ("sum([price, fee])", "money"),
        ("interval_minutes(events where pct < 40)", "integer"),
        ("round(price)", "money"),
        ("round(rate, 2)", "decimal"),
        ("has(price) and coalesce(price, fee) > 0", "bool"),
        ("add_business_days(day, 20)", "date"),
        ("date_of(moment) <= date('2025-01-31')", "bool"),
    ],
    ids=["money-vs-zero", "money-sum", "money-times-int", "money-times-decimal", "money-div-int",
         "money-div-money", "int-div-int", "int-times-int", "int-plus-decimal", "date-plus-days",
         "days-plus-date", "date-minus-days", "date-minus-date", "datetime-plus-duration",
         "datetime-minus-datetime", "if-numeric-unify", "if-text-unify", "enum-eq", "enum-in",
         "where", "field-of-list", "min-list", "sum", "interval-minutes", "round-money",
         "round-decimal", "has-coalesce", "business-days", "date-of"],
)
def test_well_typed(text: str, expected: str) -> None:
    assert type_of(text) == expected


def test_checker_records_reads() -> None:
    checked = check(parse("events where pct <= 40 and flag"), ENV)
    assert checked.reads == {"events", "flag"}  # 'pct' is a field, not a fact


# --- unknown names -----------------------------------------------------------------------

@pytest.mark.parametrize(
    ("text", "start", "name", "hint"),
    [
        ("pricee > 0", 0, "pricee", "did you mean 'price'?"),
        ("flag and caus == 'factory'", 9, "caus", "did you mean 'cause'?"),
        ("events where pcts > 1", 13, "pcts", "did you mean 'pct'?"),
        ("zzzzzz", 0, "zzzzzz", "declare it under 'facts' or 'derived'"),
        ("days_between > 1", 0, "days_between", "days_between is a function: call it with ( )"),
    ],
    ids=["typo", "typo-later", "typo-of-field-in-where", "no-close-name", "function-without-call"],
)
def test_unknown_name(text: str, start: int, name: str, hint: str) -> None:
    err = refusal(text)
    assert err.code == "unknown_fact"
    assert err.start == start
    assert err.message == f"unknown fact {name!r}"
    assert err.hint == hint


def test_record_field_not_visible_outside_where() -> None:
    err = refusal("pct > 1")
    assert err.code == "unknown_fact"


# --- evaluation ----------------------------------------------------------------------------

def _dt(h: int, m: int, sec: int = 0, day: int = 1) -> datetime:
    return datetime(2025, 3, day, h, m, sec, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "facts", "expected"),
    [
        ("price + fee", {"price": Decimal("0.10"), "fee": Decimal("0.20")}, Decimal("0.30")),
        ("price * 3", {"price": Decimal("0.10")}, Decimal("0.30")),
        ("price * rate", {"price": Decimal("100.00"), "rate": Decimal("0.15")}, Decimal("15.0000")),
        ("price / 4", {"price": Decimal("10.00")}, Decimal("2.5")),
        ("n / m", {"n": 1, "m": 4}, Decimal("0.25")),
        ("n / m", {"n": 7, "m": 2}, Decimal("3.5")),
        ("n + 0.1 + 0.2", {"n": 0}, Decimal("0.3")),
        ("pro_rata(price, 10, 30)", {"price": Decimal("30000.00")}, Decimal("10000")),
        ("sum(events.pct)", {"events": [{"pct": Decimal("0.1")}, {"pct": Decimal("0.2")}]},
         Decimal("0.3")),
    ],
    ids=["money-sum", "money-times-int", "money-times-rate", "money-div-int", "int-div-int-quarter",
         "int-div-int-half", "decimal-literals", "pro-rata", "sum-of-list"],
)
def test_decimal_arithmetic_stays_exact(text: str, facts: dict[str, Any], expected: Decimal) -> None:
    result = evaluate(text, facts)
    assert type(result) is Decimal
    assert result == expected


def test_integer_division_by_three_is_decimal_not_float() -> None:
    result = evaluate("n / m", {"n": 1, "m": 3})
    assert type(result) is Decimal
    assert result == Decimal("0." + "3" * 34)  # 34 significant digits, the money context


def test_division_by_zero_is_an_evaluation_failure() -> None:
    from engine.expressions.functions import EvalFailure  # noqa: PLC0415
    with pytest.raises(EvalFailure, match="division by zero"):
        evaluate("price / n", {"price": Decimal("1"), "n": 0})


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        (date(2024, 1, 31), 1, date(2024, 2, 29)),
        (date(2023, 1, 31), 1, date(2023, 2, 28)),
        (date(2024, 8, 31), 6, date(2025, 2, 28)),
        (date(2024, 10, 31), 1, date(2024, 11, 30)),
        (date(2025, 1, 15), 6, date(2025, 7, 15)),
    ],
    ids=["jan31-leap", "jan31-plain", "aug31-plus-6", "oct31-to-nov", "mid-month"],
)
def test_add_months_clamps(start: date, months: int, expected: date) -> None:
    assert evaluate("add_months(day, n)", {"day": start, "n": months}) == expected


@pytest.mark.parametrize(
    ("text", "facts", "expected"),
    [
        ("day - other_day", {"day": date(2025, 3, 1), "other_day": date(2025, 2, 1)}, 28),
        ("days_between(day, other_day)", {"day": date(2024, 2, 1), "other_day": date(2024, 3, 1)}, 29),
        ("day + 1", {"day": date(2024, 2, 28)}, date(2024, 2, 29)),
        ("day - 1", {"day": date(2025, 3, 1)}, date(2025, 2, 28)),
        ("add_business_days(day, 20)", {"day": date(2025, 4, 1)}, date(2025, 5, 5)),
        ("date_of(moment)", {"moment": datetime(2025, 4, 2, 5, 30, tzinfo=UTC)}, date(2025, 4, 1)),
        ("if flag then n else m", {"flag": False, "n": 1, "m": 2}, 2),
        ("cause in ['factory', 'other']", {"cause": "other"}, True),
        ("cause not in ['factory', 'other']", {"cause": "other"}, False),
        ("count(events where pct <= 40)",
         {"events": [{"pct": Decimal(40)}, {"pct": Decimal("40.01")}, {"pct": Decimal(0)}]}, 2),
        ("max(n, m)", {"n": 3, "m": 9}, 9),
        ("coalesce(price, fee)", {"fee": Decimal("5")}, Decimal("5")),
        ("has(price)", {}, False),
    ],
    ids=["date-minus-date", "days-between-leap", "date-plus-one", "date-minus-one",
         "business-days", "date-of", "if-else", "in", "not-in", "where-count", "max", "coalesce",
         "has"],
)
def test_evaluate(text: str, facts: dict[str, Any], expected: Any) -> None:
    assert evaluate(text, facts) == expected


def test_missing_fact_raises_key_error_never_a_default() -> None:
    with pytest.raises(KeyError):
        evaluate("price > 0", {})


@pytest.mark.parametrize(
    ("spans", "expected"),
    [
        ([(_dt(10, 0), _dt(10, 0, 30))], 1),
        ([(_dt(10, 0), _dt(10, 1))], 1),
        ([(_dt(10, 0), _dt(10, 1, 1))], 2),
        ([(_dt(10, 0), _dt(10, 30)), (_dt(10, 15), _dt(10, 45))], 45),
        ([(_dt(10, 15), _dt(10, 45)), (_dt(10, 0), _dt(10, 30))], 45),
        ([(_dt(10, 0), _dt(11, 0)), (_dt(10, 10), _dt(10, 20))], 60),
        ([(_dt(10, 0), _dt(10, 30)), (_dt(10, 30), _dt(11, 0))], 60),
        ([(_dt(10, 0), _dt(10, 10)), (_dt(12, 0), _dt(12, 0, 1))], 11),
        ([(_dt(23, 0), _dt(1, 0, day=2))], 120),
        ([], 0),
    ],
    ids=["30-seconds", "exactly-60s", "61-seconds", "overlap", "overlap-unsorted", "nested",
         "adjacent", "disjoint-started-minute", "over-midnight", "none"],
)
def test_interval_minutes(spans: list[tuple[datetime, datetime]], expected: int) -> None:
    events = [{"start": a, "end": b, "pct": Decimal(0)} for a, b in spans]
    assert evaluate("interval_minutes(events)", {"events": events}) == expected


def test_interval_minutes_refuses_reversed_interval() -> None:
    from engine.expressions.functions import EvalFailure  # noqa: PLC0415
    events = [{"start": _dt(11, 0), "end": _dt(10, 0), "pct": Decimal(0)}]
    with pytest.raises(EvalFailure, match="before it starts"):
        evaluate("interval_minutes(events)", {"events": events})


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [(1, 1), (30, 1), (60, 1), (61, 2), (3600, 60)],
    ids=["1s", "30s", "60s", "61s", "1h"],
)
def test_minutes_counts_started_minute(seconds: int, expected: int) -> None:
    assert evaluate("minutes(wait)", {"wait": timedelta(seconds=seconds)}) == expected


def test_generated_code_holds_no_policy_text() -> None:
    """Names and strings become dict keys and reprs, never raw code."""
    consts = Constants()
    source = generate(check(parse("label == 'x\\') or True or (\\''"), ENV), consts)
    assert source == "(f['label'] == \"x') or True or ('\")"


# --- end to end through small policies ---------------------------------------------------

def _write_policy(root: Path, *, rounding: str, amount: str,
                  derived: dict[str, str] | None = None) -> Path:
    policy = {
        "clause": 1, "vendor": "tiny", "name": "Tiny", "version": "1", "effective_from": "2024-01-01",
        "currency": "USD", "country": "CR", "timezone": "America/Costa_Rica", "languages": ["en"],
        "rounding": rounding, "source": {"file": "source.txt"},
        "facts": {
            "price": {"type": "money", "meaning": "price"},
            "n": {"type": "integer", "meaning": "a count"},
            "bought_on": {"type": "date", "meaning": "day of purchase"},
        },
        "derived": {k: {"expr": v, "meaning": k} for k, v in (derived or {}).items()},
        "kinds": {"refund": {
            "title": "Refund", "combine": "first_match",
            "otherwise": {"outcome": "deny", "reason": {"en": "no"}},
            "rules": [{
                "id": "pay", "clause": "We pay.", "when": "price > 0", "outcome": "refund",
                "amount": amount,
                "deadlines": [{"name": "due", "date": "add_months(bought_on, n)"}],
                "reason": {"en": "Refund {amount}."},
            }],
        }},
    }
    folder = root / "tiny"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "policy.yaml").write_text(yaml.safe_dump(policy, sort_keys=False), encoding="utf-8")
    (folder / "source.txt").write_text("We pay.\n", encoding="utf-8")
    return root


def _decide(root: Path, facts: dict[str, Any]) -> Any:
    with Engine.load(root) as eng:
        return eng.decide({"vendor": "tiny", "kind": "refund", "as_of": "2025-01-01",
                           "facts": {"n": 1, "bought_on": "2024-01-31", **facts}})


@pytest.mark.parametrize(
    ("rounding", "price", "expected"),
    [
        ("half_up", "0.25", "0.13"),
        ("half_even", "0.25", "0.12"),
        ("half_even", "0.35", "0.18"),
        ("half_down", "0.25", "0.12"),
        ("down", "0.35", "0.17"),
        ("up", "0.21", "0.11"),
        ("ceiling", "-0.25", "-0.12"),
        ("floor", "-0.25", "-0.13"),
    ],
    ids=["half-up", "half-even-down", "half-even-up", "half-down", "down", "up", "ceiling", "floor"],
)
def test_amount_rounded_with_policy_mode(tmp_path: Path, rounding: str, price: str,
                                         expected: str) -> None:
    root = _write_policy(tmp_path, rounding=rounding, amount="price / 2")
    if price.startswith("-"):
        root = _write_policy(tmp_path, rounding=rounding, amount="fee_back / 2",
                             derived={"fee_back": "price * -1"})
        price = price[1:]
    decision = _decide(root, {"price": price})
    assert decision.outcome == "refund"
    assert decision.amount is not None
    assert decision.amount.value == Decimal(expected)
    assert decision.amount.to_dict() == {"value": expected, "currency": "USD"}


@pytest.mark.parametrize(
    ("rounding", "expected"),
    [("half_up", "2.00"), ("half_even", "2.00"), ("down", "1.00")],
    ids=["half-up", "half-even", "down"],
)
def test_explicit_round_uses_policy_mode(tmp_path: Path, rounding: str, expected: str) -> None:
    # round(1.5 / 1) to 0 places: half_up 2, half_even 2, down 1; then money 2 places.
    root = _write_policy(tmp_path, rounding=rounding, amount="price * round(n / 2 + 1)",
                         derived=None)
    decision = _decide(root, {"price": "1.00", "n": 1})
    assert decision.amount is not None
    assert decision.amount.to_dict()["value"] == expected


def test_end_to_end_add_months_deadline_clamps(tmp_path: Path) -> None:
    root = _write_policy(tmp_path, rounding="half_up", amount="price")
    decision = _decide(root, {"price": "10", "n": 1, "bought_on": "2024-01-31"})
    assert [(d.name, d.date) for d in decision.deadlines] == [("due", date(2024, 2, 29))]
    decision = _decide(root, {"price": "10", "n": 6, "bought_on": "2024-08-31"})
    assert [(d.name, d.date) for d in decision.deadlines] == [("due", date(2025, 2, 28))]


def test_end_to_end_amount_is_exact_decimal(tmp_path: Path) -> None:
    root = _write_policy(tmp_path, rounding="half_even", amount="price * 3 / n")
    decision = _decide(root, {"price": "0.10", "n": 1})
    assert decision.amount is not None
    assert type(decision.amount.value) is Decimal
    assert decision.amount.value == Decimal("0.30")
    assert decision.to_dict()["amount"] == {"value": "0.30", "currency": "USD"}


# --- money literals -----------------------------------------------------------

@pytest.mark.parametrize(("text", "facts", "expected"), [
    ("max(money('25.00'), price * 0.15)", {"price": Decimal("120.00")}, Decimal("25.00")),
    ("max(money(25), price * 0.15)", {"price": Decimal("250.00")}, Decimal("37.5000")),
    ("price - money('0.01')", {"price": Decimal("1")}, Decimal("0.99")),
    ("if flag then money(0) else price", {"flag": True, "price": Decimal("3")}, Decimal("0")),
], ids=["floor-wins", "percent-wins", "subtract-cent", "zero"])
def test_money_literal(text: str, facts: dict[str, Any], expected: Decimal) -> None:
    assert type_of(text) == "money"
    value = evaluate(text, facts)
    assert value == expected and isinstance(value, Decimal)


@pytest.mark.parametrize("text", ["money('abc')", "money(true)", "money(price)", "money()"],
                         ids=["not-a-number", "bool", "not-a-literal", "no-argument"])
def test_money_literal_refused(text: str) -> None:
    assert refusal(text).code == "expr_type"
