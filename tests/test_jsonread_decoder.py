"""``jsonread.loads`` with a decoder built once reads (and refuses) exactly what ``json.loads`` with the
same options read: bytes in any JSON encoding, BOMs, bad UTF-8, duplicates, constants, deep nesting."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from engine import jsonread


def reference(text: Any) -> Any:
    """The first reading: json.loads with the options, its errors turned into JSONInputError text."""
    try:
        return ("ok", json.loads(text, parse_float=Decimal, parse_int=jsonread._integer,
                                 object_pairs_hook=jsonread._no_duplicates, parse_constant=jsonread._no_constant))
    except jsonread.JSONInputError as err:
        return ("error", str(err))
    except json.JSONDecodeError as err:
        return ("error", f"{err.msg} (line {err.lineno}, column {err.colno})")
    except UnicodeDecodeError as err:
        return ("error", f"the text is not UTF-8: {err.reason} at byte {err.start}")
    except ValueError as err:
        return ("error", str(err).split(";")[0])
    except RecursionError:
        return ("error", "nested too deeply")


def current(text: Any) -> Any:
    try:
        return ("ok", jsonread.loads(text))
    except jsonread.JSONInputError as err:
        return ("error", str(err))


documents = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.decimals(allow_nan=False, allow_infinity=False),
              st.text()),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=3), inner, max_size=3)),
    max_leaves=10).map(lambda v: json.dumps(v, default=str))
texts = st.one_of(documents, st.text(max_size=30), st.sampled_from([
    '{"a": 1, "a": 2}', "[NaN]", "[Infinity]", "\ufeff{}", '{"x": 1.50}', "[" * 5000 + "]" * 5000, "",
    '{"n": ' + "9" * 4500 + "}", '"\\ud800"']))
encoded = st.one_of(texts.map(lambda t: t.encode("utf-8", "surrogatepass")),
                    texts.map(lambda t: t.encode("utf-16", "surrogatepass")),
                    texts.map(lambda t: t.encode("utf-32-le", "surrogatepass")),
                    st.binary(max_size=40), st.sampled_from([b"\xef\xbb\xbf{}", b'{"a": "\xff"}', b"\x00"]))


@settings(max_examples=400, deadline=None)
@given(st.one_of(texts, encoded, encoded.map(bytearray)))
def test_the_prebuilt_decoder_reads_as_json_loads_did(text: Any) -> None:
    assert current(text) == reference(text)
