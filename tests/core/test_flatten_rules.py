"""Issue 13's validation rules: one set, the same on the C fast path and the Python path.

Each case is a line DynamoDB could never have written (or the runbook's tools would have choked on)
with the exact error both paths must raise: a ``FlattenError`` naming the file, the file's line
and the attribute path, never a traceback and never a line passed through. Before issue 13 these
lines were flattened as if valid, raised ``decimal.InvalidOperation``/``TypeError``/
``RecursionError``/``ValueError``, made the two paths disagree, or worded orjson's own position
("line 1 column 25") into a message naming another line. docs/flattening.md's table of rules is
run here too, so its examples and messages stay true.
"""

from __future__ import annotations

import io
import re
import subprocess
import sys
from pathlib import Path

import pytest

from jit_audit.flatten import FAST_PATH, NO_SPEEDUPS_ENV, FlattenError, flatten_line, flatten_stream

SOURCE = "rules.json"
GOOD = b'{"Item":{"request_id":{"S":"r0"}}}\n'
DOCS = Path(__file__).resolve().parents[2] / "docs" / "flattening.md"
RANGE = "is outside DynamoDB's range (1E-130 to 9.99...E+125)"


@pytest.fixture(autouse=True, scope="module")
def c_fast_path() -> None:
    if not FAST_PATH:
        pytest.fail(f"jit_audit._speedups is not built (or {NO_SPEEDUPS_ENV} is set): the rules must be checked "
                    "on both paths", pytrace=False)


def nested(levels: int) -> bytes:
    """An item whose attribute ``a`` holds ``levels`` levels of L and M (the innermost an S)."""
    value = '{"S":"x"}'
    for level in range(levels - 1):
        value = f'{{"M":{{"a":{value}}}}}' if level % 2 else f'{{"L":[{value}]}}'
    return f'{{"Item":{{"a":{value}}}}}'.encode()


def deep_path(levels: int) -> str:
    """The attribute path the error names: the first 33 components of ``nested(levels)``'s."""
    components: list[str] = ["a"]
    kinds = ["M" if level % 2 else "L" for level in range(levels - 1)][::-1]  # outermost first
    for kind in kinds:
        components.append("[0]" if kind == "L" else ".a")
    return "".join(components[:33])


def change(micros: str) -> bytes:
    return (b'{"Metadata":{"WriteTimestampMicros":{"N":"' + micros.encode() + b'"}},'
            b'"Keys":{"request_id":{"S":"r1"}},"NewImage":{"request_id":{"S":"r1"}}}')


TOO_DEEP = "attribute values nest more than 32 levels deep (DynamoDB's limit)"
NOT_MICROS = "is not whole microseconds (ASCII digits, no sign, no leading zeros)"

# (case, line, attribute path ("" for the line as a whole), reason): the line is line 2 of its file.
CASES: list[tuple[str, bytes, str, str]] = [
    # WriteTimestampMicros: leading zeros and non-ASCII digits were copied as invalid JSON; '²'
    # raised ValueError.
    ("micros-leading-zeros", change("0001"), "", f"Metadata.WriteTimestampMicros '0001' {NOT_MICROS}"),
    ("micros-arabic-digits", change("١٢٣"), "", f"Metadata.WriteTimestampMicros '١٢٣' {NOT_MICROS}"),
    ("micros-superscript", change("²"), "", f"Metadata.WriteTimestampMicros '²' {NOT_MICROS}"),
    ("micros-negative", change("-1"), "", f"Metadata.WriteTimestampMicros '-1' {NOT_MICROS}"),
    ("micros-year-10000", change("253402300800000000"), "",
     "Metadata.WriteTimestampMicros '253402300800000000' is after the year 9999"),
    # Repeated names: the C path copied both members, the Python path kept the last value.
    ("name-twice-in-item", b'{"Item":{"request_id":{"S":"r1"},"user":{"S":"u"},"request_id":{"S":"r2"}}}',
     "request_id", "the attribute name 'request_id' appears twice (names are unique within an item or a map)"),
    ("sort-key-twice", b'{"Item":{"event_time_event_id":{"S":"2026-01-01T00:00:00Z#a"},'
     b'"event_time_event_id":{"S":"2026-01-02T00:00:00Z#b"}}}', "event_time_event_id",
     "the attribute name 'event_time_event_id' appears twice (names are unique within an item or a map)"),
    ("name-twice-in-map", b'{"Item":{"details":{"M":{"client":{"M":{"ip":{"S":"a"},"ip":{"S":"a"}}}}}}}',
     "details.client.ip", "the attribute name 'ip' appears twice (names are unique within an item or a map)"),
    ("name-twice-in-image", b'{"Metadata":{"WriteTimestampMicros":{"N":"1"}},"Keys":{"k":{"S":"a"}},'
     b'"NewImage":{"k":{"S":"a"},"m":{"L":[{"M":{"x":{"N":"1"},"x":{"N":"2"}}}]}}}',
     "NewImage.m[0].x", "the attribute name 'x' appears twice (names are unique within an item or a map)"),
    ("name-twice-among-40", b'{"Item":{' + b",".join(b'"n%d":{"N":"%d"}' % (i % 39, i) for i in range(40)) + b"}}",
     "n0", "the attribute name 'n0' appears twice (names are unique within an item or a map)"),
    ("type-tag-twice", b'{"Item":{"a":{"S":"x","S":"y"}}}', "a", "the type tag 'S' is repeated"),
    ("item-twice", b'{"Item":{"a":{"S":"x"}},"Item":{"a":{"S":"y"}}}', "", "the name 'Item' is repeated in the line"),
    # Values DynamoDB could never hold, which passed through.
    ("number-too-large", b'{"Item":{"n":{"N":"1E+126"}}}', "n", f"N value '1E+126' {RANGE}"),
    ("number-too-small", b'{"Item":{"n":{"N":"1E-131"}}}', "n", f"N value '1E-131' {RANGE}"),
    ("number-largest", b'{"Item":{"n":{"N":"-9.9999999999999999999999999999999999999E+126"}}}', "n",
     f"N value '-9.9999999999999999999999999999999999999E+126' {RANGE}"),
    ("number-39-digits", b'{"Item":{"n":{"N":"0.100000000000000000000000000000000000001"}}}', "n",
     "N value '0.100000000000000000000000000000000000001' has 39 significant digits; DynamoDB keeps at most 38"),
    ("number-zero-exponent", b'{"Item":{"n":{"N":"0E+200"}}}', "n", f"N value '0E+200' {RANGE}"),
    ("b-not-base64", b'{"Item":{"b":{"B":"not base64!"}}}', "b", "B value must be base64 text, got the string 'not base64!'"),
    ("b-not-canonical", b'{"Item":{"b":{"B":"QR=="}}}', "b", "B value must be base64 text, got the string 'QR=='"),
    ("b-unpadded", b'{"Item":{"b":{"B":"QQ"}}}', "b", "B value must be base64 text, got the string 'QQ'"),
    ("bs-not-base64", b'{"Item":{"b":{"BS":["QQ==","Q Q="]}}}', "b", "BS member 'Q Q=' is not base64"),
    ("ss-empty", b'{"Item":{"details":{"M":{"tags":{"SS":[]}}}}}', "details.tags",
     "SS value is an empty set (DynamoDB sets have at least one member)"),
    ("ns-empty", b'{"Item":{"n":{"NS":[]}}}', "n", "NS value is an empty set (DynamoDB sets have at least one member)"),
    ("bs-empty", b'{"Item":{"l":{"L":[{"S":"a"},{"BS":[]}]}}}', "l[1]",
     "BS value is an empty set (DynamoDB sets have at least one member)"),
    ("ss-member-twice", b'{"Item":{"tags":{"SS":["jit","ops","jit"]}}}', "tags",
     "SS value has the member 'jit' twice (set members are distinct)"),
    ("bs-member-twice", b'{"Item":{"b":{"BS":["QQ==","Qg==","QQ=="]}}}', "b",
     "BS value has the member 'QQ==' twice (set members are distinct)"),
    ("ns-member-twice", b'{"Item":{"n":{"NS":["10","1E+1"]}}}', "n",
     "NS value has the number '1E+1' twice (as '10'; set members are distinct)"),
    # Tracebacks: decimal.InvalidOperation, orjson's "Recursion limit reached", RecursionError.
    ("exponent-beyond-decimal", b'{"Item":{"n":{"NS":["1","1E+999999999999"]}}}', "n", f"N value '1E+999999999999' {RANGE}"),
    ("exponent-zero-padded", b'{"Item":{"n":{"NS":["1","+5E+' + b"0" * 5000 + b'126"]}}}', "n",
     f"N value {'+5E+' + '0' * 5000 + '126'!r:.60} {RANGE}"),  # the value's text cut at 60 characters
    ("exponent-beyond-decimal-n", b'{"Item":{"n":{"N":"+1E-9999999999999999999"}}}', "n",
     f"N value '+1E-9999999999999999999' {RANGE}"),
    ("nesting-33", nested(33), deep_path(33), TOO_DEEP),
    ("nesting-300", nested(300), deep_path(300), TOO_DEEP),
    ("nesting-1200", nested(1200), deep_path(1200), TOO_DEEP),
    # Messages: the byte offset and the file's line, never orjson's "line 1 column ..."; invalid UTF-8 says so.
    ("json-truncated", b'{"Item":{"a":{"S":"x"}}', "", "not valid JSON at byte 24 of the line: Expecting ',' delimiter"),
    ("json-offset-counts-bytes", '{"Item":{"é":{"S":"€"}},}'.encode(), "",
     "not valid JSON at byte 27 of the line: Expecting property name enclosed in double quotes"),
    ("utf8-truncated-sequence", b'{"Item":{"a":{"S":"caf\xc3"}}}', "", "invalid UTF-8 at byte 22 of the line (bytes c3)"),
    ("utf8-surrogate", b'{"Item":{"a":{"S":"\xed\xa0\x80"}}}', "", "invalid UTF-8 at byte 19 of the line (bytes ed)"),
    ("utf8-overlong", b'{"Item":{"a\xc0\x80":{"S":"x"}}}', "", "invalid UTF-8 at byte 11 of the line (bytes c0)"),
    ("lone-surrogate-escape", b'{"Item":{"s":{"L":[{"S":"ok"},{"S":"\\ud800"}]}}}', "s[1]",
     "a name or string holds a lone UTF-16 surrogate (a \\ud800-\\udfff escape not in a pair)"),
    ("lone-surrogate-in-a-set", b'{"Item":{"t":{"SS":["b","\\ud800","a"]}}}', "t[1]",  # its position in the line
     "a name or string holds a lone UTF-16 surrogate (a \\ud800-\\udfff escape not in a pair)"),
    ("nan-literal", b'{"Item":{"a":{"N":NaN}}}', "", "not valid JSON: NaN is not a JSON value"),
]


def outcome(blob: bytes, fast: bool) -> bytes | str:
    """What flatten_stream makes of a file: its output, or its FlattenError's message."""
    written: list[bytes] = []
    try:
        flatten_stream(io.BytesIO(blob), lambda data: written.append(bytes(data)), SOURCE, use_fast_path=fast)
    except FlattenError as error:
        return str(error)
    return b"".join(written)


@pytest.mark.parametrize(("case", "line", "attribute", "reason"), CASES, ids=[case[0] for case in CASES])
def test_each_rule_is_the_same_error_on_both_paths(case, line, attribute, reason):
    where = f"{SOURCE}, line 2" + (f", attribute {attribute}" if attribute else "")
    for fast in (True, False):
        assert outcome(GOOD + line + b"\n", fast) == f"{where}: {reason}", (case, fast)
    with pytest.raises(ValueError):
        flatten_line(line)


def test_the_limits_themselves_are_accepted_on_both_paths():
    """The edges DynamoDB allows flatten, exactly, and the C path takes them itself."""
    lines = [
        b'{"Item":{"n":{"N":"9.9999999999999999999999999999999999999E+125"},"m":{"N":"-1E-130"},"z":{"N":"0E+125"}}}',
        b'{"Item":{"n":{"N":"12345678901234567890123456789012345678000"},"m":{"N":"0.000012345678901234567890123456789012345678"}}}',
        b'{"Item":{"b":{"B":""},"c":{"B":"QQ=="},"d":{"BS":["QUI=","QQ=="]},"s":{"SS":["",  "a"]}}}',
        nested(32),
        # an exponent with more leading zeros than int() takes digits: 1E+5 and 1E-5 all the same
        b'{"Item":{"n":{"N":"1E+' + b"0" * 5000 + b'5"},"m":{"N":"-1E-' + b"0" * 5000 + b'5"}}}',
        b'{"Item":{' + b",".join(b'"n%d":{"N":"%d"}' % (i, i) for i in range(40)) + b"}}",  # 40 names, all distinct
        b'{"Item":{"m":{"NS":["+1E-' + b"0" * 5000 + b'5","2"]}}}',  # NS: the Python path's
        change("0"),
        change("253402300799999999"),
    ]
    blob = b"".join(line + b"\n" for line in lines)
    fast, reference = outcome(blob, True), outcome(blob, False)
    assert isinstance(fast, bytes) and fast == reference
    assert fast.count(b"\n") == len(lines)
    assert b'"n":9.9999999999999999999999999999999999999E+125,"m":-1E-130,"z":0E+125' in fast
    assert b'"write_time":"9999-12-31T23:59:59.999999Z"' in fast
    from jit_audit._speedups import flatten_into

    for line in lines[:6]:  # items: the C path flattens each itself (status 0), to the same bytes
        data = line + b"\n"
        out = bytearray(3 * len(data) + 64)
        written, end, count, status = flatten_into(data, 0, len(data), out)
        assert (end, count, status) == (len(data), 1, 0), line[:60]
        assert bytes(out[:written]) == flatten_line(line), line[:60]


def docs_rules() -> list[tuple[str, str]]:
    """(example, message) of every row of docs/flattening.md's table of validation rules."""
    text = DOCS.read_text()
    section = text.split("## Validation rules", 1)[1].split("\n## ", 1)[0]
    rows = []
    for row in section.splitlines():
        cells = [cell.strip() for cell in row.strip("|").split(" | ")] if row.startswith("| ") else []
        if len(cells) == 3 and cells[0] not in ("Rule", "---"):
            example, message = (re.search(r"`([^`]+)`", cell) for cell in cells[1:])
            assert example and message, row
            rows.append((example.group(1), message.group(1)))
    return rows


def test_the_docs_table_of_rules_is_what_both_paths_do():
    rows = docs_rules()
    assert len(rows) >= 12
    for example, message in rows:
        if "…" in example:  # too long to print: the nesting rule, checked against a built line
            assert message.endswith(f": {TOO_DEEP}"), message
            line = nested(33)
            message = message.replace("a[0].a[0]…a", deep_path(33))
        else:
            line = re.sub(rb"\\x([0-9a-f]{2})", lambda match: bytes.fromhex(match.group(1).decode()), example.encode())
        for fast in (True, False):
            assert outcome(GOOD + line + b"\n", fast) == f"{SOURCE}, line 2{message}", (example, fast)


def test_cli_says_one_line_and_exits_1_for_each_rule(tmp_path):
    for case, line, attribute, reason in CASES[::4]:
        path = tmp_path / f"{case}.json"
        path.write_bytes(GOOD + line + b"\n")
        done = subprocess.run([sys.executable, "-m", "jit_audit.cli", "flatten", str(path)], capture_output=True)
        assert done.returncode == 1, case
        stderr = done.stderr.decode()
        assert stderr.count("\n") == 1 and "Traceback" not in stderr, (case, stderr)
        assert stderr.rstrip("\n").endswith(reason) and ", line 2" in stderr, (case, stderr)
        assert f", attribute {attribute}:" in stderr if attribute else True
