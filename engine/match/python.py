"""The default back end: one generated Python function per kind (indexed when it has many rules).

The IR is turned into a single boolean expression per rule; a leaf tests
that its field is present before comparing, so an absent fact never matches
(the same semantics as durable_rules). Constants are hoisted into the
function's namespace, never printed into the source. A kind with many rules
is matched through :mod:`engine.match.index`: only the rules a case's facts
leave possible are tested.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine.errors import Diagnostic, PolicyError
from engine.expressions.codegen import Constants
from engine.match import index, ir

if TYPE_CHECKING:
    from engine.compiler import CompiledPolicy


def _leaf(cond: ir.Cond, consts: Constants) -> str:
    if isinstance(cond, ir.All):
        return "(" + " and ".join(_leaf(c, consts) for c in cond.items) + ")" if cond.items else "True"
    if isinstance(cond, ir.Any):
        return "(" + " or ".join(_leaf(c, consts) for c in cond.items) + ")" if cond.items else "False"
    name = repr(cond.field)
    if isinstance(cond, ir.Exists):
        return f"({name} {'in' if cond.present else 'not in'} f)"
    if isinstance(cond, ir.In):
        values = consts.name(frozenset(cond.values))
        return f"({name} in f and f[{name}] {'not in' if cond.negated else 'in'} {values})"
    value = consts.name(cond.value) if not isinstance(cond.value, (bool, int, str)) else repr(cond.value)
    return f"({name} in f and f[{name}] {cond.op} {value})"


def _indexed(kind: Any) -> bool:
    return len(kind.rules) >= index.MIN_RULES


def _scan(tests: dict[int, Any]) -> Any:
    """Every rule's test in file order: the index's fallback for a value it cannot place."""
    pairs = tuple(tests.items())
    return lambda f: [i for i, test in pairs if test(f)]


class PythonMatcher:
    """Matches cases with generated Python; stateless, so safe to share across threads."""

    name = "python"

    def __init__(self, compiled: CompiledPolicy) -> None:
        consts = Constants()
        lines = []
        names = {}
        for i, kind in enumerate(compiled.kinds.values()):
            names[kind.kind.name] = f"match_{i}"  # never a name from the policy text
            if _indexed(kind):  # one test per rule, for the candidates the index leaves
                lines += [f"def test_{i}_{r.rule.index}(f):\n    return {_leaf(r.cond, consts)}\n"
                          for r in kind.rules]
                continue
            lines.append(f"def match_{i}(f):\n    m = []\n")
            for rule in kind.rules:
                lines.append(f"    if {_leaf(rule.cond, consts)}:\n        m.append({rule.rule.index})\n")
            lines.append("    return m\n")
        namespace: dict[str, Any] = {"__builtins__": {}, **consts.values}
        try:
            code = compile("".join(lines), f"<clause-match:{compiled.policy.vendor}>", "exec")
        except (SyntaxError, RecursionError, MemoryError) as err:
            raise PolicyError([Diagnostic("limit", f"the conditions are too large or nested: {err}")]) from err
        exec(code, namespace)  # noqa: S102 - generated from the IR only
        self._match = {}
        for i, kind in enumerate(compiled.kinds.values()):
            if _indexed(kind):
                tests = {r.rule.index: namespace[f"test_{i}_{r.rule.index}"] for r in kind.rules}
                self._match[kind.kind.name] = index.matcher([(r.rule.index, r.cond) for r in kind.rules],
                                                            tests, _scan(tests))
            else:
                self._match[kind.kind.name] = namespace[names[kind.kind.name]]

    def match(self, kind: str, facts: dict[str, Any]) -> list[int]:
        """Indices (file order) of the kind's rules whose condition is true."""
        result: list[int] = self._match[kind](facts)
        return result

    def kind_function(self, kind: str) -> Any:
        """``match`` for one kind, without the lookup (the generated decide path calls it directly)."""
        return self._match[kind]

    def close(self) -> None:
        """Nothing to release (present for symmetry with the Rete back end)."""
