"""Tokens, syntax tree and a Pratt parser for policy expressions.

Grammar (lowest precedence first)::

    expr     := "if" expr "then" expr "else" expr | where
    where    := or ("where" or)*            # filter a list of records
    or       := and ("or" and)*
    and      := not ("and" not)*
    not      := "not" not | compare
    compare  := sum (("=="|"!="|"<"|"<="|">"|">="|"in"|"not in") sum)?
    sum      := product (("+"|"-") product)*
    product  := unary (("*"|"/") unary)*
    unary    := "-" unary | postfix
    postfix  := atom ("." NAME | "(" args ")")*
    atom     := NUMBER | STRING | "true" | "false" | NAME | "(" expr ")" | "[" items "]"

Numbers are plain decimals (no exponent), so no literal can be huge or
inexact. There is no power operator, no indexing and no attribute that
starts with an underscore.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

MAX_EXPRESSION_LENGTH = 2000
MAX_NUMBER_DIGITS = 30
MAX_DEPTH = 60

KEYWORDS = frozenset({"and", "or", "not", "in", "if", "then", "else", "where", "true", "false"})


class ExprError(Exception):
    """A syntax or type error at ``start`` (character offset in the expression)."""

    def __init__(self, code: str, message: str, start: int, hint: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.start = start
        self.hint = hint


@dataclass(frozen=True, slots=True)
class Node:
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Literal(Node):
    value: object  # bool | int | Decimal | str


@dataclass(frozen=True, slots=True)
class Name(Node):
    name: str


@dataclass(frozen=True, slots=True)
class Attr(Node):
    obj: Node
    name: str


@dataclass(frozen=True, slots=True)
class Call(Node):
    func: str
    args: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Unary(Node):
    op: str  # "-" or "not"
    operand: Node


@dataclass(frozen=True, slots=True)
class Binary(Node):
    op: str
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class ListLit(Node):
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class IfElse(Node):
    cond: Node
    then: Node
    other: Node


@dataclass(frozen=True, slots=True)
class Where(Node):
    items: Node
    cond: Node


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # num, str, name, op, kw, end
    text: str
    start: int


_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<num>[0-9]+(?:\.[0-9]+)?)
  | (?P<str>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>\*\*|==|!=|<=|>=|[<>+\-*/().,\[\]])
""", re.VERBOSE)

_REFUSED = {
    "**": "the power operator ** is not part of the language (exponents are refused)",
    "=": "use == to compare",
}


def tokenize(text: str) -> list[Token]:
    """Split ``text`` into tokens, refusing anything outside the grammar."""
    if len(text) > MAX_EXPRESSION_LENGTH:
        raise ExprError("expr_syntax", f"expression longer than {MAX_EXPRESSION_LENGTH} characters", 0)
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            ch = text[pos]
            msg = _REFUSED.get(ch, f"unexpected character {ch!r}")
            raise ExprError("expr_syntax", msg, pos)
        kind = m.lastgroup or ""
        tok = m.group()
        if kind == "num" and (len(tok.replace(".", "")) > MAX_NUMBER_DIGITS):
            raise ExprError("expr_syntax", f"number with more than {MAX_NUMBER_DIGITS} digits", pos)
        if kind == "num" and m.end() < len(text) and (text[m.end()].isalpha() or text[m.end()] == "_"):
            raise ExprError("expr_syntax", "numbers are plain decimals: no exponent or suffix", pos)
        if kind == "op" and tok in _REFUSED:
            raise ExprError("expr_syntax", _REFUSED[tok], pos)
        if kind == "name" and tok in KEYWORDS:
            kind = "kw"
        if kind != "ws":
            tokens.append(Token(kind, tok, pos))
        pos = m.end()
    tokens.append(Token("end", "", len(text)))
    return tokens


_BINARY = {"or": 2, "and": 3, "==": 5, "!=": 5, "<": 5, "<=": 5, ">": 5, ">=": 5,
           "in": 5, "not in": 5, "+": 6, "-": 6, "*": 7, "/": 7, "where": 1}
_COMPARE = 5


def _unescape(raw: str) -> str:
    return re.sub(r"\\(.)", r"\1", raw[1:-1])


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0
        self.depth = 0

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def advance(self) -> Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def expect(self, text: str) -> Token:
        if self.tok.text != text or self.tok.kind == "str":
            found = self.tok.text or "end of expression"
            raise ExprError("expr_syntax", f"expected {text!r}, found {found!r}", self.tok.start)
        return self.advance()

    def binary_op(self) -> str | None:
        tok = self.tok
        if tok.kind == "kw" and tok.text == "not" and self.tokens[self.i + 1].text == "in":
            return "not in"
        if tok.kind in ("op", "kw") and tok.text in _BINARY:
            return tok.text
        return None

    def expression(self, min_prec: int = 0) -> Node:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ExprError("expr_syntax", f"expression nested deeper than {MAX_DEPTH}", self.tok.start)
        left = self.prefix()
        while (op := self.binary_op()) is not None and _BINARY[op] > min_prec:
            prec = _BINARY[op]
            self.advance()
            if op == "not in":
                self.advance()
            right = self.expression(prec)
            if prec == _COMPARE and self.binary_op() in _BINARY and _BINARY[self.binary_op() or ""] == _COMPARE:
                raise ExprError("expr_syntax", "comparisons do not chain: join them with 'and'", self.tok.start)
            node_cls = Where if op == "where" else None
            left = (Where(left.start, right.end, left, right) if node_cls
                    else Binary(left.start, right.end, op, left, right))
        self.depth -= 1
        return left

    def prefix(self) -> Node:
        tok = self.tok
        if tok.kind == "kw" and tok.text == "if":
            self.advance()
            cond = self.expression()
            self.expect("then")
            then = self.expression()
            self.expect("else")
            other = self.expression()
            return IfElse(tok.start, other.end, cond, then, other)
        if tok.kind == "kw" and tok.text == "not":
            self.advance()
            operand = self.expression(4)
            return Unary(tok.start, operand.end, "not", operand)
        if tok.kind == "op" and tok.text == "-":
            self.advance()
            operand = self.expression(7)
            return Unary(tok.start, operand.end, "-", operand)
        return self.postfix(self.atom())

    def atom(self) -> Node:
        tok = self.advance()
        end = tok.start + len(tok.text)
        if tok.kind == "num":
            value: object = Decimal(tok.text) if "." in tok.text else int(tok.text)
            return Literal(tok.start, end, value)
        if tok.kind == "str":
            return Literal(tok.start, end, _unescape(tok.text))
        if tok.kind == "kw" and tok.text in ("true", "false"):
            return Literal(tok.start, end, tok.text == "true")
        if tok.kind == "name":
            if tok.text.startswith("_"):
                raise ExprError("expr_syntax", "names starting with '_' are not allowed", tok.start)
            return Name(tok.start, end, tok.text)
        if tok.text == "(":
            inner = self.expression()
            close = self.expect(")")
            return _respan(inner, tok.start, close.start + 1)
        if tok.text == "[":
            items = self.items("]")
            close = self.expect("]")
            return ListLit(tok.start, close.start + 1, items)
        found = tok.text or "end of expression"
        raise ExprError("expr_syntax", f"expected a value, found {found!r}", tok.start)

    def items(self, close: str) -> tuple[Node, ...]:
        out: list[Node] = []
        while self.tok.text != close:
            out.append(self.expression())
            if self.tok.text != ",":
                break
            self.advance()
        return tuple(out)

    def postfix(self, node: Node) -> Node:
        while self.tok.text in (".", "("):
            if self.advance().text == ".":
                name = self.advance()
                if name.kind != "name":
                    raise ExprError("expr_syntax", "expected a field name after '.'", name.start)
                if name.text.startswith("_"):
                    raise ExprError("expr_syntax", "field names starting with '_' are not allowed "
                                    "(no access to Python internals)", name.start)
                node = Attr(node.start, name.start + len(name.text), node, name.text)
            else:
                if not isinstance(node, Name):
                    raise ExprError("expr_syntax", "only named functions can be called", node.start)
                args = self.items(")")
                close = self.expect(")")
                node = Call(node.start, close.start + 1, node.name, args)
        return node


def _respan(node: Node, start: int, end: int) -> Node:
    """Widen a parenthesised node's span to include its parentheses."""
    from dataclasses import replace
    return replace(node, start=start, end=end)


def parse(text: str) -> Node:
    """Parse ``text`` into a syntax tree or raise :class:`ExprError`."""
    parser = _Parser(text)
    if parser.tok.kind == "end":
        raise ExprError("expr_syntax", "empty expression", 0)
    node = parser.expression()
    if parser.tok.kind != "end":
        raise ExprError("expr_syntax", f"unexpected {parser.tok.text!r}", parser.tok.start)
    _check_depth(node)
    return node


def _children(node: Node) -> list[Node]:
    out: list[Node] = []
    for f in node.__dataclass_fields__:
        value = getattr(node, f)
        if isinstance(value, Node):
            out.append(value)
        elif isinstance(value, tuple):
            out.extend(v for v in value if isinstance(v, Node))
    return out


def _check_depth(root: Node) -> None:
    """Refuse trees deeper than MAX_DEPTH (long ``a + b + …`` chains nest too)."""
    stack = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ExprError("expr_syntax", f"expression nested deeper than {MAX_DEPTH}", node.start,
                            "split it into derived facts")
        stack.extend((child, depth + 1) for child in _children(node))


def source(text: str, node: Node) -> str:
    """The source text of ``node``."""
    return text[node.start:node.end]


def names(node: Node) -> set[str]:
    """Every bare name in ``node`` (over-approximates reads; used for ordering)."""
    out: set[str] = set()
    stack: list[object] = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, Name):
            out.add(n.name)
        elif isinstance(n, Node):
            stack.extend(getattr(n, f) for f in n.__dataclass_fields__ if f not in ("start", "end"))
        elif isinstance(n, tuple):
            stack.extend(n)
    return out
