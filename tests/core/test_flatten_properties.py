"""Property tests of exact flattening, through the public API of ``jit_audit.flatten`` only.

Every property runs on each way in: ``flatten_line``, and ``flatten_stream`` with its C fast path
and with the Python reference path (``use_fast_path=False``), so a divergent fast path fails here.
Without the C extension (or with ``JIT_AUDIT_NO_SPEEDUPS`` set) every test here fails: the "fast"
way in would be the Python path again, and passing would prove nothing about the C code.
The behaviour is checked against two oracles that share no code with the module:

* the contract, evaluated directly on the generated DynamoDB JSON (``expected_item``): exact number
  text (DynamoDB's digits whenever they are JSON, else ``str(Decimal(text))``), set order, attribute
  order, the ``event_time``/``event_id`` rule, and the exact output bytes (compact JSON, strings
  escaped like ``json.dumps(ensure_ascii=False)``: the bytes a re-run must reproduce);
* boto3's ``TypeDeserializer`` on the same item, numbers compared as ``Decimal`` with
  ``compare_total`` (same digits, exponent and sign, so ``1.50`` is not ``1.5`` and ``-0`` is not ``0``).

Bad input must raise ``FlattenError`` naming the line, and nothing may be written for that line.
"""

from __future__ import annotations

import base64
import copy
import io
import json
import os
import random
import re
from dataclasses import dataclass
from decimal import Decimal, DecimalException
from typing import Any

import orjson
import pytest
from boto3.dynamodb.types import DYNAMODB_CONTEXT, Binary, TypeDeserializer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jit_audit.flatten import (
    FAST_PATH,
    NO_SPEEDUPS_ENV,
    FlattenError,
    flatten_line,
    flatten_lines,
    flatten_stream,
)

# JIT_AUDIT_PROPERTY_EXAMPLES: fewer examples for slow runs (the sanitizer run in
# tests/core/test_speedups_sanitizers.py); 300 otherwise.
settings.register_profile(
    "jit-audit-flatten-properties",
    deadline=None,
    max_examples=int(os.environ.get("JIT_AUDIT_PROPERTY_EXAMPLES", "300")),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
PROPERTIES = settings.get_profile("jit-audit-flatten-properties")


@pytest.fixture(autouse=True, scope="module")
def c_fast_path() -> None:
    """The "flatten_stream-fast" way in must be the C extension: fail, never fall back, without it."""
    if not FAST_PATH:
        pytest.fail(
            f"jit_audit._speedups did not build (or {NO_SPEEDUPS_ENV} is set): the C fast path is missing, "
            "so the fast-path tests would run the Python path twice; see the compiler output of "
            "`pip install -e .`",
            pytrace=False,
        )


SOURCE = "s3://exports/AWSDynamoDB/0001/data/abc.json.gz"
SORT_KEY = "event_time_event_id"
KNOWN_TAGS = frozenset({"S", "N", "B", "BOOL", "NULL", "M", "L", "SS", "NS", "BS"})
# RFC 8259 number grammar (what may be copied byte for byte) and DynamoDB's wider one.
JSON_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
DYNAMODB_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")

# ---------------------------------------------------------------------------------------------
# Strategies: DynamoDB JSON attribute values
# ---------------------------------------------------------------------------------------------

# Any UTF-8-encodable character (no lone surrogates), biased towards the ones escaping gets wrong.
TRICKY = ' !"\\/#\x00\x01\x08\t\n\x0b\x0c\r\x1b\x1f\x7f\x80\x85\xa0\xad\xe9\u2028\u2029\ufeff\ue000\ufffe\uffff\U0001f600\U0010ffff'
characters = st.one_of(st.characters(codec="utf-8"), st.sampled_from(TRICKY))
# Plus a few words, so that set members share prefixes ("a" < "a b" < "a!" < "ab" by code point)
# and escaped non-ASCII turns up in lines the fast path takes.
WORDS = ["", " ", "!", "a", "a b", "a!", "ab", "admin", "admin role", "é", "café", "\u2028", "user#1"]
texts = st.one_of(st.text(characters, max_size=16), st.sampled_from(WORDS))
names = st.one_of(
    st.text(characters, min_size=1, max_size=10),
    st.sampled_from(["request_id", "event_time", "event_id", SORT_KEY, "user", "Item", "S", "N", "M"]),
)
base64_texts = st.binary(max_size=24).map(lambda raw: base64.b64encode(raw).decode("ascii"))


def _in_dynamodb_range(text: str) -> bool:
    """True when boto3's DynamoDB context takes the text exactly (38 digits, 1E-130 .. <1E+126)."""
    try:
        value = DYNAMODB_CONTEXT.create_decimal(text)
    except DecimalException:
        return False
    return value.is_zero() or -130 <= value.adjusted() <= 125


@st.composite
def json_number_texts(draw: st.DrawFn) -> str:
    """Exact decimals in JSON's grammar: up to 38 digits, |exponent| within DynamoDB's range."""
    sign = draw(st.sampled_from(["", "-"]))
    if draw(st.integers(0, 7)) == 0:  # zeros: 0, -0, 0.000, 0E+3, -0.0e-2
        zeros = draw(st.integers(0, 4))
        mantissa = "0" + ("." + "0" * zeros if zeros else "")
        exponent = draw(st.one_of(st.none(), st.integers(-10, 10)))
    else:
        count = draw(st.integers(1, 38))
        digits = draw(st.sampled_from("123456789")) + draw(
            st.text("0123456789", min_size=count - 1, max_size=count - 1)
        )
        if draw(st.booleans()):  # trailing zeros are digits too: 1.50, 100
            digits = (digits + "0" * draw(st.integers(1, 3)))[:38]
        if draw(st.integers(0, 3)) == 0:  # 0.000ddd
            leading = draw(st.integers(0, 6))
            mantissa, mantissa_adjusted = "0." + "0" * leading + digits, -(leading + 1)
        else:
            point = draw(st.integers(1, len(digits)))
            fraction = digits[point:]
            mantissa = digits[:point] + ("." + fraction if fraction else "")
            mantissa_adjusted = point - 1
        if draw(st.booleans()):
            exponent = None
        else:
            target = draw(st.one_of(st.integers(-130, 125), st.sampled_from([-130, -129, 0, 124, 125])))
            exponent = target - mantissa_adjusted
    text = sign + mantissa
    if exponent is not None:
        letter = draw(st.sampled_from("eE"))
        exponent_sign = "-" if exponent < 0 else draw(st.sampled_from(["", "+"]))
        text += letter + exponent_sign + "0" * draw(st.integers(0, 2)) + str(abs(exponent))
    return text


@st.composite
def non_json_number_texts(draw: st.DrawFn) -> str:
    """Forms DynamoDB and Decimal accept but JSON does not: +5, .5, 007, 5., +.5E3, -00.50."""
    text = draw(json_number_texts())
    sign, integer, fraction, exponent = re.fullmatch(r"(-?)([0-9]+)(?:\.([0-9]+))?([eE].*)?", text).groups()
    dot = "." if fraction else ""
    fraction, exponent = fraction or "", exponent or ""
    if not sign and draw(st.booleans()):
        sign = "+"
    change = draw(st.sampled_from(["leading_zeros", "drop_zero", "trailing_dot", "sign"]))
    if change == "drop_zero" and integer == "0" and fraction:
        integer = ""
    elif change == "trailing_dot" and not fraction:
        dot = "."
    elif change == "sign" and not sign:
        sign = "+"
    elif sign != "+":
        integer = "0" * draw(st.integers(1, 3)) + integer
    result = sign + integer + dot + fraction + exponent
    assert not JSON_NUMBER.fullmatch(result), result
    return result


number_texts = st.one_of(json_number_texts(), json_number_texts(), non_json_number_texts()).filter(
    _in_dynamodb_range
)


def tagged(tag: str):
    return lambda value: {tag: value}


scalar_values = st.one_of(
    texts.map(tagged("S")),
    number_texts.map(tagged("N")),
    base64_texts.map(tagged("B")),
    st.booleans().map(tagged("BOOL")),
    st.just({"NULL": True}),
    st.lists(texts, min_size=1, max_size=5, unique=True).map(tagged("SS")),
    st.lists(number_texts, min_size=1, max_size=5, unique_by=Decimal).map(tagged("NS")),  # unique by value
    st.lists(base64_texts, min_size=1, max_size=5, unique=True).map(tagged("BS")),
    # string sets whose members share prefixes
    st.lists(st.sampled_from(WORDS), min_size=2, max_size=5, unique=True).map(tagged("SS")),
)


def _containers(children: st.SearchStrategy) -> st.SearchStrategy:
    return st.one_of(
        st.lists(children, max_size=4).map(tagged("L")),
        st.dictionaries(names, children, max_size=4).map(tagged("M")),
    )


nested_values = st.recursive(scalar_values, _containers, max_leaves=12)


@st.composite
def deep_values(draw: st.DrawFn) -> dict:
    """A value wrapped in 4 to 6 levels of M and L, with siblings at each level."""
    value = draw(nested_values)
    for _ in range(draw(st.integers(4, 6))):
        if draw(st.booleans()):
            members = draw(st.lists(scalar_values, max_size=2))
            members.insert(draw(st.integers(0, len(members))), value)
            value = {"L": members}
        else:
            members = draw(st.dictionaries(names, scalar_values, max_size=2))
            members[draw(names)] = value
            value = {"M": members}
    return value


attribute_values = st.one_of(nested_values, deep_values())


@st.composite
def full_items(draw: st.DrawFn, min_size: int = 0) -> dict:
    """A DynamoDB item, sometimes with the sort key and some of event_time/event_id, any order."""
    item = draw(st.dictionaries(names, attribute_values, min_size=min_size, max_size=5))
    sort_key = draw(st.sampled_from(["none", "split", "split", "no_hash", "other_type"]))
    if sort_key == "split":
        when = draw(st.one_of(st.just("2026-01-15T10:00:00Z"), texts)).replace("#", "")
        item[SORT_KEY] = {"S": when + "#" + draw(texts)}  # the id may hold '#' itself
    elif sort_key == "no_hash":
        item[SORT_KEY] = {"S": draw(texts).replace("#", "")}
    elif sort_key == "other_type":
        item[SORT_KEY] = draw(scalar_values)
    for name in ("event_time", "event_id"):
        if draw(st.integers(0, 3)) == 0:
            item[name] = draw(scalar_values)
        elif name in item and len(item) > min_size and draw(st.booleans()):
            del item[name]
    order = draw(st.permutations(list(item)))
    return {name: item[name] for name in order}


def items(min_size: int = 0) -> st.SearchStrategy[dict]:
    """Full items, and small plain ones (one feature at a time reaches the fast path too)."""
    small = st.dictionaries(
        st.sampled_from(["request_id", "user", "event_time", "event_id", SORT_KEY, "tags", "n"]),
        scalar_values,
        min_size=max(min_size, 1),
        max_size=3,
    )
    return st.one_of(small, full_items(min_size))


# ---------------------------------------------------------------------------------------------
# Strategies: how the export writes a line
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Encoding:
    """One way of writing DynamoDB JSON: escaped or raw UTF-8, with or without whitespace."""

    ensure_ascii: bool
    style: str  # "compact", "default" (json.dumps separators) or "random" whitespace
    terminator: bytes
    seed: int

    def encode(self, record: Any) -> bytes:
        if self.style == "compact":
            text = json.dumps(record, ensure_ascii=self.ensure_ascii, separators=(",", ":"))
        elif self.style == "default":
            text = json.dumps(record, ensure_ascii=self.ensure_ascii)
        else:
            rng = random.Random(self.seed)

            def ws() -> str:
                # JSON whitespace except a raw newline, which would end the line in a stream
                return rng.choice(["", "", "", " ", "  ", "\t", " \t", "\r", " \r \t "])

            text = ws() + self._dump(record, ws) + ws()
        return text.encode("utf-8") + self.terminator

    def _dump(self, value: Any, ws) -> str:
        if isinstance(value, dict):
            members = [
                ws()
                + json.dumps(name, ensure_ascii=self.ensure_ascii)
                + ws()
                + ":"
                + ws()
                + self._dump(member, ws)
                + ws()
                for name, member in value.items()
            ]
            return "{" + (",".join(members) if members else ws()) + "}"
        if isinstance(value, list):
            members = [ws() + self._dump(member, ws) + ws() for member in value]
            return "[" + (",".join(members) if members else ws()) + "]"
        return json.dumps(value, ensure_ascii=self.ensure_ascii)


encodings = st.builds(
    Encoding,
    ensure_ascii=st.booleans(),
    style=st.sampled_from(["compact", "default", "random"]),
    terminator=st.sampled_from([b"", b"\n", b"\r\n"]),
    seed=st.integers(0, 2**32),
)


# Lines of a file: each ends with a newline (a stream splits on it).
newline_encodings = st.builds(
    Encoding,
    ensure_ascii=st.booleans(),
    style=st.sampled_from(["compact", "default", "random"]),
    terminator=st.sampled_from([b"\n", b"\r\n"]),
    seed=st.integers(0, 2**32),
)


def line_of(item: dict, encoding: Encoding) -> bytes:
    return encoding.encode({"Item": item})


# ---------------------------------------------------------------------------------------------
# Oracle 1: the contract, evaluated on the DynamoDB JSON itself
# ---------------------------------------------------------------------------------------------


class Number(str):
    """A number's raw text as it appears in the output (json's parse_int/parse_float hook)."""


def number_text(text: str) -> Number:
    """DynamoDB's digits when they are JSON already; otherwise the same value through Decimal."""
    return Number(text if JSON_NUMBER.fullmatch(text) else str(Decimal(text)))


def expected_plain(attribute: dict) -> Any:
    ((tag, value),) = attribute.items()
    if tag in ("S", "B", "BOOL"):
        return value
    if tag == "NULL":
        return None
    if tag == "N":
        return number_text(value)
    if tag == "M":
        return {name: expected_plain(member) for name, member in value.items()}
    if tag == "L":
        return [expected_plain(member) for member in value]
    if tag in ("SS", "BS"):
        return sorted(value)  # Python orders str by code point
    if tag == "NS":
        return [number_text(member) for member in sorted(value, key=Decimal)]
    raise AssertionError(f"strategy produced tag {tag!r}")


def add_event_fields(flat: dict, sort_key: Any) -> dict:
    if isinstance(sort_key, str) and "#" in sort_key:
        event_time, event_id = sort_key.split("#", 1)
        if "event_time" not in flat:
            flat["event_time"] = event_time
        if "event_id" not in flat:
            flat["event_id"] = event_id
    return flat


def expected_item(item: dict) -> dict:
    flat = {name: expected_plain(value) for name, value in item.items()}
    return add_event_fields(flat, item.get(SORT_KEY, {}).get("S"))


def canonical_bytes(value: Any) -> bytes:
    """Compact JSON of an expected value, numbers as their raw text, plus the newline."""

    def dump(member: Any) -> str:
        if isinstance(member, Number):
            return str.__str__(member)
        if isinstance(member, dict):
            return "{" + ",".join(dump(name) + ":" + dump(inner) for name, inner in member.items()) + "}"
        if isinstance(member, list):
            return "[" + ",".join(dump(inner) for inner in member) + "]"
        return json.dumps(member, ensure_ascii=False)

    return dump(value).encode("utf-8") + b"\n"


def _no_constants(name: str) -> Any:
    raise AssertionError(f"output contains {name}, which is not JSON")


def parse_raw(out: bytes) -> Any:
    """Parse our output keeping every number's exact text."""
    return json.loads(out, parse_int=Number, parse_float=Number, parse_constant=_no_constants)


def parse_decimal(out: bytes) -> Any:
    return json.loads(out, parse_int=Decimal, parse_float=Decimal, parse_constant=_no_constants)


def assert_exact(actual: Any, expected: Any, path: str = "$") -> None:
    """Equality with types, key order and (for Decimal) digits, exponent and sign all checked."""
    assert type(actual) is type(expected), f"{path}: got {actual!r}, expected {expected!r}"
    if isinstance(expected, dict):
        assert list(actual) == list(expected), f"{path}: keys {list(actual)!r} != {list(expected)!r}"
        for name in expected:
            assert_exact(actual[name], expected[name], f"{path}[{name!r}]")
    elif isinstance(expected, list):
        assert len(actual) == len(expected), f"{path}: {actual!r} != {expected!r}"
        for index, (got, want) in enumerate(zip(actual, expected, strict=True)):
            assert_exact(got, want, f"{path}[{index}]")
    elif isinstance(expected, Decimal):
        assert actual.compare_total(expected) == 0, f"{path}: {actual!r} is not exactly {expected!r}"
    else:
        assert actual == expected, f"{path}: {actual!r} != {expected!r}"


# ---------------------------------------------------------------------------------------------
# Oracle 2: boto3's TypeDeserializer
# ---------------------------------------------------------------------------------------------

DESERIALIZER = TypeDeserializer()


def to_wire(attribute: dict) -> dict:
    """DynamoDB JSON -> the form boto3 deserializes (botocore has already base64-decoded B/BS)."""
    ((tag, value),) = attribute.items()
    if tag == "B":
        return {"B": base64.b64decode(value, validate=True)}
    if tag == "BS":
        return {"BS": [base64.b64decode(member, validate=True) for member in value]}
    if tag == "M":
        return {"M": {name: to_wire(member) for name, member in value.items()}}
    if tag == "L":
        return {"L": [to_wire(member) for member in value]}
    return {tag: value}


def reference_plain(value: Any) -> Any:
    if isinstance(value, Binary):
        return base64.b64encode(value.value).decode("ascii")
    if isinstance(value, set):
        members = [reference_plain(member) for member in value]
        return sorted(members)  # str by code point (B as its base64 text), Decimal by value
    if isinstance(value, dict):
        return {name: reference_plain(member) for name, member in value.items()}
    if isinstance(value, list):
        return [reference_plain(member) for member in value]
    return value  # str, Decimal, bool, None


def reference_item(item: dict) -> dict:
    deserialized = {name: DESERIALIZER.deserialize(to_wire(value)) for name, value in item.items()}
    return add_event_fields(reference_plain(deserialized), deserialized.get(SORT_KEY))


# ---------------------------------------------------------------------------------------------
# The three ways in
# ---------------------------------------------------------------------------------------------

PATHS = ["flatten_line", "flatten_stream-fast", "flatten_stream-reference"]


def collect_into(written: list[bytes]):
    """A ``write`` for flatten_stream, which passes views valid only during the call: copy them."""
    return lambda data: written.append(bytes(data))


def stream(source: Any, *, fast: bool) -> tuple[bytes, int]:
    """flatten_stream's output and its count."""
    written: list[bytes] = []
    count = flatten_stream(source, collect_into(written), SOURCE, use_fast_path=fast)
    return b"".join(written), count


def flatten_via(path: str, line: bytes) -> bytes:
    if path == "flatten_line":
        return flatten_line(line)
    out, count = stream([line], fast=path == "flatten_stream-fast")
    assert count == 1
    return out


def chunked(blob: bytes, cuts: list[int]) -> list[bytes]:
    """``blob`` split at the given offsets: chunk boundaries fall anywhere, even inside a character."""
    bounds = [0, *sorted(cut % (len(blob) + 1) for cut in cuts), len(blob)]
    return [blob[start:stop] for start, stop in zip(bounds, bounds[1:], strict=False)]


# ---------------------------------------------------------------------------------------------
# Properties of good input
# ---------------------------------------------------------------------------------------------


@PROPERTIES
@given(item=items(), encoding=encodings)
def test_values_are_exactly_the_contract(item, encoding):
    """Types, attribute order, set order, event fields, and each number's exact text."""
    line = line_of(item, encoding)
    expected = expected_item(item)
    for path in PATHS:
        assert_exact(parse_raw(flatten_via(path, line)), expected, path)


@PROPERTIES
@given(item=items(), encoding=encodings)
def test_values_agree_with_boto3_type_deserializer(item, encoding):
    line = line_of(item, encoding)
    reference = reference_item(item)
    for path in PATHS:
        assert_exact(parse_decimal(flatten_via(path, line)), reference, path)


@PROPERTIES
@given(item=items(), encoding=encodings)
def test_output_is_one_utf8_json_line(item, encoding):
    line = line_of(item, encoding)
    for path in PATHS:
        out = flatten_via(path, line)
        assert out.endswith(b"\n"), path
        assert out.count(b"\n") == 1, path
        assert out.splitlines() == [out[:-1]], path  # no raw \r either
        text = out.decode("utf-8")  # strict: no surrogates, no invalid bytes
        assert list(orjson.loads(out)) == list(json.loads(text)) == list(expected_item(item)), path


@PROPERTIES
@given(item=items(), first=encodings, second=encodings)
def test_bytes_depend_only_on_the_item_and_are_the_same_on_every_path(item, first, second):
    """Compact JSON, strings escaped as json.dumps(ensure_ascii=False) does, whether the export
    escaped non-ASCII or added whitespace, C fast path or not: one item, one byte string, so a
    re-run reproduces its parts byte for byte."""
    canonical = canonical_bytes(expected_item(item))
    for path in PATHS:
        for encoding in (first, second, first):
            out = flatten_via(path, line_of(item, encoding))
            assert out == canonical, f"{path}, {encoding}: {out!r} != {canonical!r}"


@PROPERTIES
@given(
    many=st.lists(items(), max_size=6),
    encoding=newline_encodings,
    drop_last_newline=st.booleans(),
    cuts=st.lists(st.integers(0, 2**20), max_size=6),
)
def test_many_lines_equal_flatten_line_per_line_however_they_are_read(
    many, encoding, drop_last_newline, cuts
):
    lines = [line_of(item, encoding) for item in many]
    if drop_last_newline and lines:
        lines[-1] = lines[-1].removesuffix(b"\n").removesuffix(b"\r")  # a file without a final newline
    expected = [flatten_line(line) for line in lines]
    assert list(flatten_lines(iter(lines), SOURCE)) == expected
    blob = b"".join(lines)
    for fast in (True, False):
        for source in (iter(lines), iter(chunked(blob, cuts)), io.BytesIO(blob)):
            assert stream(source, fast=fast) == (b"".join(expected), len(lines))


# ---------------------------------------------------------------------------------------------
# Properties of bad input: FlattenError naming the line, and nothing written for that line
# ---------------------------------------------------------------------------------------------


def value_slots(item: dict) -> list[tuple[Any, Any]]:
    """Every (container, key) holding an attribute value: the item, M members, L elements."""
    slots: list[tuple[Any, Any]] = []

    def visit(container: Any, key: Any) -> None:
        slots.append((container, key))
        ((tag, value),) = container[key].items()
        if tag == "M":
            for name in value:
                visit(value, name)
        elif tag == "L":
            for index in range(len(value)):
                visit(value, index)

    for name in item:
        visit(item, name)
    return slots


def assert_fails_at(lines: list[bytes], bad_index: int, cuts: list[int]) -> None:
    """Every way in stops at line ``bad_index + 1`` with a FlattenError, after the lines before it."""
    before = [flatten_line(line) for line in lines[:bad_index]]
    produced: list[bytes] = []
    with pytest.raises(FlattenError) as caught:
        for out in flatten_lines(iter(lines), SOURCE):
            produced.append(out)
    assert produced == before
    assert (caught.value.source, caught.value.line_number) == (SOURCE, bad_index + 1)
    assert str(caught.value).startswith((f"{SOURCE}, line {bad_index + 1}: ", f"{SOURCE}, line {bad_index + 1}, attribute "))

    blob = b"".join(lines)
    for fast in (True, False):
        good_prefix, count = stream(iter(lines[:bad_index]), fast=fast)
        assert count == bad_index
        for source in (iter(lines), iter(chunked(blob, cuts)), io.BytesIO(blob)):
            written: list[bytes] = []
            with pytest.raises(FlattenError) as caught:
                flatten_stream(source, collect_into(written), SOURCE, use_fast_path=fast)
            assert (caught.value.source, caught.value.line_number) == (SOURCE, bad_index + 1)
            assert b"".join(written) == good_prefix

    with pytest.raises(ValueError):
        flatten_line(lines[bad_index])


unknown_tags = st.one_of(
    st.sampled_from(["s", "n", "Bool", "null", "SSS", "", " S", "S ", "Q", "\uff33", "NN", "Ss"]), texts
).filter(lambda tag: tag not in KNOWN_TAGS)

CORRUPTIONS = [
    "truncate",
    "truncate_last_line_at_eof",
    "unknown_tag",
    "item_in_list",
    "record_in_list",
    "second_top_level_key",
]


@PROPERTIES
@given(
    many=st.lists(items(min_size=1), min_size=1, max_size=4),
    encoding=newline_encodings,
    corruption=st.sampled_from(CORRUPTIONS),
    cuts=st.lists(st.integers(0, 2**20), max_size=4),
    data=st.data(),
)
def test_corrupted_line_raises_flatten_error_with_its_line_number(many, encoding, corruption, cuts, data):
    if corruption == "truncate_last_line_at_eof":
        bad_index = len(many) - 1
    else:
        bad_index = data.draw(st.integers(0, len(many) - 1), label="bad_index")
    lines = [line_of(item, encoding) for item in many]
    item = copy.deepcopy(many[bad_index])
    if corruption.startswith("truncate"):
        content = lines[bad_index].removesuffix(encoding.terminator)
        closing = content.rindex(b"}")  # every prefix before the final brace is unfinished JSON
        if corruption == "truncate":
            bad = content[: data.draw(st.integers(0, closing), label="cut")] + encoding.terminator
        else:  # the file ends inside the last line
            bad = content[: data.draw(st.integers(1, closing), label="cut")]
    elif corruption == "unknown_tag":
        slots = value_slots(item)
        container, key = slots[data.draw(st.integers(0, len(slots) - 1), label="slot")]
        ((_, value),) = container[key].items()
        container[key] = {data.draw(unknown_tags, label="tag"): value}
        bad = line_of(item, encoding)
    elif corruption == "item_in_list":
        bad = encoding.encode({"Item": [item]})
    elif corruption == "record_in_list":
        bad = encoding.encode([{"Item": item}])
    else:
        extra = data.draw(names.filter(lambda name: name != "Item"), label="extra_key")
        record = {"Item": item, extra: data.draw(st.one_of(texts, st.just({}), st.none()), label="extra")}
        if data.draw(st.booleans(), label="extra_first"):
            record = dict(reversed(list(record.items())))
        bad = encoding.encode(record)
    lines[bad_index] = bad
    assert_fails_at(lines, bad_index, cuts)


MALFORMED_VALUES = [
    {}, {"S": "a", "N": "1"}, {"S": 1}, {"S": None}, {"N": 1}, {"N": 1.5}, {"N": "abc"}, {"N": ""},
    {"N": "NaN"}, {"N": "Infinity"}, {"N": "-Infinity"}, {"N": "1e"}, {"N": "0x10"}, {"N": "1.2.3"},
    {"N": "--1"}, {"BOOL": "true"}, {"BOOL": 1}, {"BOOL": None}, {"NULL": False}, {"NULL": "true"},
    {"NULL": None}, {"M": []}, {"M": "x"}, {"L": {}}, {"L": "x"}, {"SS": "a"}, {"SS": [1]},
    {"NS": ["1", 2]}, {"NS": ["x"]}, {"NS": "1"}, {"NS": ["1", "NaN"]}, {"NS": ["sNaN", "2"]},
    {"BS": [None]}, {"B": 5}, {"B": None}, "S", None, [], 5, True, [{"S": "x"}],
]  # fmt: skip


@PROPERTIES
@given(
    many=st.lists(items(min_size=1), min_size=1, max_size=4),
    encoding=newline_encodings,
    malformed=st.sampled_from(MALFORMED_VALUES),
    cuts=st.lists(st.integers(0, 2**20), max_size=4),
    data=st.data(),
)
def test_malformed_attribute_value_raises_flatten_error_with_its_line_number(
    many, encoding, malformed, cuts, data
):
    bad_index = data.draw(st.integers(0, len(many) - 1), label="bad_index")
    lines = [line_of(item, encoding) for item in many]
    item = copy.deepcopy(many[bad_index])
    slots = value_slots(item)
    container, key = slots[data.draw(st.integers(0, len(slots) - 1), label="slot")]
    container[key] = malformed
    lines[bad_index] = line_of(item, encoding)
    assert_fails_at(lines, bad_index, cuts)


# Strings that are not numbers in DynamoDB's grammar, though Python's Decimal reads some of them
# (digit-group underscores, non-ASCII digits). Surrounding whitespace is left out on purpose.
not_dynamodb_numbers = st.one_of(
    st.sampled_from(["1_000", "\u0661", "\uff11", "1_0.5", "NaN", "sNaN", "Infinity", "inf", ".", "+", "e5"]),
    st.text(characters, min_size=1, max_size=8),
).filter(lambda text: not DYNAMODB_NUMBER.fullmatch(text.strip()))


@PROPERTIES
@given(
    item=items(min_size=1),
    encoding=newline_encodings,
    text=not_dynamodb_numbers,
    in_set=st.booleans(),
    data=st.data(),
)
def test_number_text_outside_dynamodb_grammar_raises_flatten_error(item, encoding, text, in_set, data):
    item = copy.deepcopy(item)
    slots = value_slots(item)
    container, key = slots[data.draw(st.integers(0, len(slots) - 1), label="slot")]
    container[key] = {"NS": ["1", text]} if in_set else {"N": text}
    lines = [b'{"Item":{"ok":{"S":"x"}}}\n', line_of(item, encoding)]
    assert_fails_at(lines, 1, [])
