"""``clause init``: a new vendor directory that validates at once.

The skeleton holds the metadata (name, currency, country, time zone,
languages), one kind with one placeholder rule, the vendor's text as
``source.txt``, one ``out_of_scope`` entry per deciding sentence of that
text (found with the same sentence logic as ``clause validate``, see
:mod:`engine.trace`), and a test file with one passing test. The author
then replaces the waivers by rules one sentence at a time, with
``clause validate`` and ``clause test`` green after each step. Nothing is
ever overwritten.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from engine.errors import Diagnostic, PolicyError
from engine.trace import is_deciding, sentences

VENDOR = re.compile(r"[a-z0-9][a-z0-9-]*")
KIND = re.compile(r"[a-z][a-z0-9_]*")
WAIVER = "Not encoded yet (written by clause init): replace this entry by a rule that quotes the sentence."


@dataclass(frozen=True, slots=True)
class Skeleton:
    """What ``clause init`` needs to know about the new vendor."""

    vendor: str
    name: str
    currency: str = "USD"
    country: str = "US"
    timezone: str = "UTC"
    languages: tuple[str, ...] = ("en",)
    kind: str = "refund"
    effective_from: date = date(2025, 1, 1)


def skeleton(vendor: str, name: str | None, currency: str, country: str, timezone: str, languages: str,
             kind: str, today: date | None = None) -> Skeleton:
    """A Skeleton from the command's options: codes upper-cased, ``en`` always among the languages."""
    langs = tuple(dict.fromkeys(x.strip().lower() for x in languages.split(",") if x.strip()))
    return Skeleton(vendor, name or vendor, currency.upper(), country.upper(), timezone,
                    langs if "en" in langs else ("en", *langs), kind, today or date.today())


def _q(text: str) -> str:
    """A YAML double-quoted scalar (JSON strings are valid YAML)."""
    return json.dumps(text, ensure_ascii=False)


def _texts(english: str, languages: tuple[str, ...], indent: str) -> str:
    """One text per language; the non-English ones are marked for translation."""
    return "".join(f"{indent}{lang}: {_q(english if lang == 'en' else f'({lang}) {english}')}\n"
                   for lang in languages)


def policy_text(s: Skeleton, first: str, waived: list[str]) -> str:
    """The skeleton policy: metadata, one fact, one kind with one rule, the waivers."""
    day = s.effective_from.isoformat()
    lines = [
        f"# A first policy for {s.name}, written by `clause init`. Next steps:",
        "#   1. check the metadata below (name, currency, country, time zone, languages);",
        "#   2. take the sentences under out_of_scope one at a time: encode each as a rule",
        "#      that quotes it in its `clause`, then delete its out_of_scope entry;",
        "#   3. run `clause validate` and `clause test` after each step.",
        "# The language is described in docs/reference.md.",
        "clause: 1",
        f"vendor: {s.vendor}",
        f"name: {_q(s.name)}",
        'version: "1"',
        f'effective_from: "{day}"',
        f"currency: {s.currency}",
        f"country: {s.country}",
        f"timezone: {s.timezone}",
        f"languages: [{', '.join(s.languages)}]",
        "rounding: half_up",
        "source:",
        "  file: source.txt",
        "facts:",
        "  claim_date:",
        "    type: date",
        "    meaning: The day the customer made the claim",
        "kinds:",
        f"  {s.kind}:",
        f"    title: {_q(s.kind.replace('_', ' ').capitalize())}",
        "    combine: first_match",
        "    otherwise:",
        "      outcome: deny",
        "      reason:",
    ]
    text = "\n".join(lines) + "\n" + _texts("No rule of these terms grants this claim.", s.languages, "        ")
    text += "\n".join([
        "    rules:",
        "      - id: first-rule",
        f"        clause: {_q(first)}",
        "        interpretation: >-",
        "          Placeholder written by clause init: replace the condition, the",
        "          outcome and the reason by what the clause says.",
        "        when: claim_date <= as_of",
        "        outcome: approve",
        "        reason:",
    ]) + "\n" + _texts("Placeholder: a claim made on {claim_date}.", s.languages, "          ")
    if waived:
        text += "out_of_scope:\n" + "".join(
            f"  - clause: {_q(sentence)}\n    reason: {_q(WAIVER)}\n" for sentence in waived)
    return text


def tests_text(s: Skeleton) -> str:
    """One passing test of the placeholder rule."""
    day = s.effective_from.isoformat()
    return "\n".join([
        "# Tests of the policy: `clause test` runs every file in this directory.",
        "cases:",
        "  - note: the placeholder rule approves a claim made on the decision day",
        "    input:",
        f"      vendor: {s.vendor}",
        f"      kind: {s.kind}",
        f'      as_of: "{day}"',
        "      facts:",
        f'        claim_date: "{day}"',
        "    want_decision:",
        "      outcome: approve",
        "      reasons: [first-rule]",
        "",
    ])


def _refuse(message: str) -> PolicyError:
    return PolicyError([Diagnostic("file", message)])


def create_vendor(root: Path, source: Path, skeleton: Skeleton) -> list[Path]:
    """Write ``root/<vendor>/`` (policy, source, tests); return the files written.

    Raises:
        PolicyError: a bad vendor or kind name, an unreadable or empty source,
            or a vendor directory that already exists (nothing is overwritten).
    """
    if not VENDOR.fullmatch(skeleton.vendor):
        raise _refuse(f"{skeleton.vendor!r} is not a vendor name: use lower-case letters, digits and '-'")
    if not KIND.fullmatch(skeleton.kind):
        raise _refuse(f"{skeleton.kind!r} is not a kind name: use lower-case letters, digits and '_'")
    try:
        text = source.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise _refuse(f"cannot read the source text {source}: {err}") from err
    parts = [p.text for p in sentences(text)]
    if not parts:
        raise _refuse(f"{source} has no sentences to quote")
    deciding = [p for p in parts if is_deciding(p)]
    home = root / skeleton.vendor
    if home.exists():
        raise _refuse(f"{home} already exists: clause init never overwrites; choose another vendor name")
    files = {
        home / "source.txt": text,
        home / "policy.yaml": policy_text(skeleton, (deciding or parts)[0], list(dict.fromkeys(deciding))),
        home / "tests" / "skeleton.yaml": tests_text(skeleton),
    }
    (home / "tests").mkdir(parents=True)
    for path, content in files.items():
        path.write_text(content, encoding="utf-8")
    return list(files)
