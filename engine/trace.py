"""Traceability: every rule quotes its source, every deciding sentence is accounted for.

Two checks, run by ``clause validate``:

* ``clause_not_in_source`` — a ``clause`` (of a rule, a kind's deadline, a
  fact or a derived fact, or an ``out_of_scope`` entry) is not a verbatim, whitespace-normalized quote of the policy's
  source text; the message shows the nearest source sentence and the first
  word that differs.
* ``sentence_not_covered`` — a sentence of the source that decides something
  is neither quoted (in whole or in a part of at least three words) by a
  rule, a fact or a derived fact (their ``clause``) nor listed under
  ``out_of_scope`` with a reason.

Which sentences "decide something" is a keyword heuristic (:data:`DECIDING`,
English and Spanish): a sentence naming a refund, a fee, a deadline, a
condition ("must", "only", "cannot"...). Headings (short lines without a
final stop) and introductions ending in a colon do not decide.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from engine._yaml import position
from engine.errors import Diagnostic

if TYPE_CHECKING:
    from engine.location import SourceLocation
    from engine.model import Policy

DECIDING = re.compile(r"\b(" + "|".join((
    # English
    r"refund\w*", r"return\w*", r"replace\w*", r"exchang\w*", r"cancel\w*", r"credit\w*",
    r"charge\w*", r"fees?", r"bill(?:ed|ing)?", r"warrant\w*", r"guarantee\w*", r"compensat\w*",
    r"reimburs\w*", r"repair\w*", r"days?", r"hours?", r"months?", r"within", r"before", r"after",
    r"must", r"shall", r"cannot", r"can't", r"not be able", r"only", r"refused?", r"eligible",
    r"pro-rata", r"proportional", r"price\w*", r"costs?", r"pay\w*", r"paid", r"renew\w*",
    r"restor\w*", r"reactivat\w*", r"dismissed", r"retain\w*", r"discontinued", r"no longer",
    r"responsib\w*", r"risk", r"borne", r"expir\w*", r"suspend\w*", r"violat\w*", r"not process",
    # Spanish
    r"reembols\w*", r"devoluci\w*", r"devolver\w*", r"garant\w*", r"compensaci\w*", r"plazo",
    r"días", r"deberá\w*", r"reintegro", r"costo\w*",
)) + r")\b", re.IGNORECASE)

_BULLET = re.compile(r"^\s*(?:(?:[•\-*]|\d+\.|\(\*\))\s*)*")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(¿¡A-ZÁÉÍÓÚÑ0-9])")
MIN_PARTIAL_WORDS = 3


def normalize(text: str) -> str:
    """Collapse whitespace (line breaks, indentation, non-breaking spaces)."""
    return " ".join(text.split())


@dataclass(frozen=True, slots=True)
class Sentence:
    text: str          # normalized
    offset: int        # where it starts in the source text


def sentences(source: str) -> list[Sentence]:
    """Sentences of ``source``, one line or bullet at a time, with their offsets."""
    out = []
    offset = 0
    for line in source.splitlines(keepends=True):
        body_start = offset + _BULLET.match(line).end()  # type: ignore[union-attr]
        body = source[body_start:offset + len(line)]
        pos = 0
        for part in _SENTENCE_END.split(body):
            start = body.find(part, pos)
            pos = start + len(part)
            text = normalize(part)
            if text:
                out.append(Sentence(text, body_start + start))
        offset += len(line)
    return out


def is_deciding(sentence: str) -> bool:
    """Whether a sentence decides something (see :data:`DECIDING`)."""
    if sentence.endswith(":"):
        return False  # introduces the items that follow
    if sentence[-1] not in ".!?)" and len(sentence.split()) < 7:
        return False  # a heading
    return bool(DECIDING.search(sentence))


def _first_difference(quote: str, source: str) -> str:
    """'source says X where the clause says Y' for the closest source passage."""
    words = quote.split()
    src_words = source.split()
    best = difflib.SequenceMatcher(None, words, src_words, autojunk=False)
    for tag, i1, i2, j1, j2 in best.get_opcodes():
        if tag != "equal":
            said = " ".join(words[i1:i2]) or "(nothing)"
            found = " ".join(src_words[j1:j2]) or "(nothing)"
            return f"the source has {found!r} where the clause has {said!r}"
    return "it differs from the source"


def _closest(quote: str, passages: list[str]) -> str:
    window = len(quote.split())
    candidates = []
    for passage in passages:
        words = passage.split()
        candidates.extend(" ".join(words[i:i + window]) for i in range(max(1, len(words) - window + 1)))
    match = difflib.get_close_matches(quote, candidates, n=1, cutoff=0.0)
    return match[0] if match else ""


def _quote_problems(quote: str, where: SourceLocation | None, what: str, source: str,
                    passages: list[str], source_file: str) -> list[Diagnostic]:
    if normalize(quote) in source:
        return []
    closest = _closest(normalize(quote), passages)
    hint = _first_difference(normalize(quote), closest) if closest else None
    return [Diagnostic("clause_not_in_source",
                       f"{what} is not a verbatim quote of {source_file}", where, hint=hint)]


def check_trace(policy: Policy) -> list[Diagnostic]:
    """Diagnostics for quotes not found in the source and uncovered deciding sentences."""
    source = normalize(policy.source_text)
    parts = sentences(policy.source_text)
    passages = [s.text for s in parts]
    problems: list[Diagnostic] = []
    quotes: list[str] = []
    for kind in policy.kinds.values():
        for rule in kind.rules:
            problems += _quote_problems(rule.clause, rule.clause_location, f"the clause of rule {rule.id}",
                                        source, passages, policy.source_file)
            quotes.append(normalize(rule.clause))
        for deadline in kind.deadlines:
            problems += _quote_problems(deadline.clause, deadline.clause_location,
                                        f"the clause of deadline {deadline.name} of kind {kind.name}",
                                        source, passages, policy.source_file)
            quotes.append(normalize(deadline.clause))
    defined = [(f"the clause of fact {f.name}", f.clause, f.clause_location)
               for f in policy.facts.values() if f.clause]
    defined += [(f"the clause of derived fact {d.name}", d.clause, d.clause_location)
                for d in policy.derived.values() if d.clause]
    for what, clause, where in defined:
        problems += _quote_problems(clause, where, what, source, passages, policy.source_file)
        quotes.append(normalize(clause))
    for waived in policy.out_of_scope:
        problems += _quote_problems(waived.clause, waived.location, "an out_of_scope clause", source,
                                    passages, policy.source_file)
        quotes.append(normalize(waived.clause))
    for sentence in parts:
        if is_deciding(sentence.text) and not _covered(sentence.text, quotes):
            problems.append(Diagnostic(
                "sentence_not_covered",
                f"this sentence decides something but no rule quotes it and out_of_scope does "
                f"not list it: {sentence.text!r}",
                position(policy.source_text, sentence.offset, policy.source_path or policy.source_file),
                hint="quote it in a rule's clause, or add it to out_of_scope with a reason"))
    return problems


def _covered(sentence: str, quotes: list[str]) -> bool:
    for quote in quotes:
        if sentence in quote:
            return True
        if quote in sentence and len(quote.split()) >= MIN_PARTIAL_WORDS:
            return True
    return False
