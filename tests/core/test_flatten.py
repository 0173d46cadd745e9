"""Exact flattening: every DynamoDB type, exact numbers, sorted sets, and loud errors."""

from __future__ import annotations

import base64
import gzip
import io
import json
import subprocess
import sys
from decimal import Decimal

import orjson
import pytest

from jit_audit.flatten import (
    FAST_PATH,
    NO_SPEEDUPS_ENV,
    FlattenError,
    flatten_line,
    flatten_lines,
    flatten_stream,
    open_text_or_gzip,
)


def flat(item: dict) -> dict:
    return json.loads(flatten_line(json.dumps({"Item": item}).encode()), parse_float=Decimal, parse_int=Decimal)


def raw(item: dict) -> bytes:
    return flatten_line(json.dumps({"Item": item}).encode())


def test_every_scalar_type_maps_to_its_plain_value():
    result = flat({"s": {"S": "x"}, "b": {"B": "AAE="}, "t": {"BOOL": True}, "n": {"NULL": True}})
    assert result == {"s": "x", "b": "AAE=", "t": True, "n": None}


def test_numbers_keep_dynamodbs_exact_digits():
    digits = "1234567890.1234567890123456789012345678"
    line = raw({"n": {"N": digits}, "e": {"N": "1E+2"}, "z": {"N": "-0"}, "tiny": {"N": "1E-130"}})
    assert line == b'{"n":' + digits.encode() + b',"e":1E+2,"z":-0,"tiny":1E-130}\n'


def test_numbers_outside_json_grammar_are_rewritten_to_the_same_value():
    line = raw({"a": {"N": "007"}, "b": {"N": ".5"}, "c": {"N": "+3"}})
    assert line == b'{"a":7,"b":0.5,"c":3}\n'


def test_nested_maps_and_lists_flatten_recursively():
    item = {"details": {"M": {"client": {"M": {"ip": {"S": "10.0.0.1"}, "mfa": {"BOOL": True}}},
                              "tags": {"L": [{"S": "jit"}, {"N": "42"}, {"L": [{"NULL": True}]}]}}}}
    assert flat(item) == {"details": {"client": {"ip": "10.0.0.1", "mfa": True}, "tags": ["jit", 42, [None]]}}


def test_sets_are_sorted_strings_by_code_point_and_numbers_numerically():
    result = raw({"ss": {"SS": ["b", "B", "é", "a"]}, "ns": {"NS": ["10", "9.5", "-1", "1E+2"]},
                  "bs": {"BS": ["Yg==", "YQ=="]}})
    assert result == b'{"ss":["B","a","b","\xc3\xa9"],"ns":[-1,9.5,10,1E+2],"bs":["YQ==","Yg=="]}\n'


def test_event_time_and_event_id_are_split_from_the_sort_key_when_absent():
    result = flat({"event_time_event_id": {"S": "2026-01-15T10:00:00Z#ev#1"}})
    assert result["event_time"] == "2026-01-15T10:00:00Z"
    assert result["event_id"] == "ev#1"
    kept = flat({"event_time_event_id": {"S": "2026-01-15T10:00:00Z#e1"}, "event_time": {"S": "given"}})
    assert kept["event_time"] == "given"


def test_unicode_quotes_and_control_characters_survive():
    text = 'quote " backslash \\ tab \t nul \x00 emoji \U0001f600 ' + "ü"
    assert orjson.loads(raw({"s": {"S": text}, "e": {"S": ""}})) == {"s": text, "e": ""}


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"{not json", "not valid JSON"),
        (b'{"Items": {}}', '{"Item": {...}}'),
        (b'{"Item": {"a": {"Q": "1"}}}', "unknown DynamoDB type tag 'Q'"),
        (b'{"Item": {"a": {"N": "abc"}}}', "is not a number"),
        (b'{"Item": {"a": {"N": "NaN"}}}', "not a finite number"),
        (b'{"Item": {"a": {"S": "x", "N": "1"}}}', "one type tag"),
        (b'{"Item": {"a": {"NULL": false}}}', "NULL value must be true"),
    ],
)
def test_bad_lines_name_the_source_and_line(line, reason):
    lines = [b'{"Item": {"a": {"S": "ok"}}}\n', line]
    with pytest.raises(FlattenError) as caught:
        list(flatten_lines(lines, "export.json.gz"))
    assert caught.value.line_number == 2
    assert str(caught.value).startswith(("export.json.gz, line 2: ", "export.json.gz, line 2, attribute a: "))
    assert reason in str(caught.value)


def test_runbook_convert_py_gets_nested_values_wrong_and_we_do_not():
    """The runbook's own converter leaves nested DynamoDB JSON in place; ours does not."""
    line = json.dumps({"Item": {"details": {"M": {"n": {"N": "1.50"}}}}})
    runbook = {}
    for key, value in json.loads(line)["Item"].items():
        for _tag, type_value in value.items():
            runbook[key] = type_value
    assert runbook == {"details": {"n": {"N": "1.50"}}}
    assert flatten_line(line.encode()) == b'{"details":{"n":1.50}}\n'


def test_open_text_or_gzip_reads_both():
    payload = b'{"Item": {"a": {"S": "x"}}}\n'
    assert open_text_or_gzip(io.BytesIO(gzip.compress(payload))).read() == payload
    assert open_text_or_gzip(io.BytesIO(payload)).read() == payload


def _cli(stdin: bytes, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "jit_audit.cli", "flatten", *args], input=stdin, capture_output=True)


def test_cli_flatten_is_a_drop_in_for_convert_py_on_plain_and_gzip_input():
    export = b'{"Item": {"request_id": {"S": "r1"}, "n": {"N": "2"}}}\n{"Item": {"request_id": {"S": "r2"}}}\n'
    expected = b'{"request_id":"r1","n":2}\n{"request_id":"r2"}\n'
    assert _cli(export).stdout == expected
    assert _cli(gzip.compress(export)).stdout == expected
    zipped = _cli(export, "--gzip")
    assert gzip.decompress(zipped.stdout) == expected


def test_cli_flatten_fails_loudly_on_bad_input():
    result = _cli(b'{"Item": {"a": {"S": "x"}}}\n{"Item": {"a": {"X": 1}}}\n', "--source-name", "dump.json")
    assert result.returncode == 1
    assert b"dump.json, line 2, attribute a: unknown DynamoDB type tag 'X'" in result.stderr
    truncated = gzip.compress(b'{"Item": {"a": {"S": "x"}}}\n' * 100)[:-20]
    result = _cli(truncated)
    assert result.returncode == 1
    assert b"cannot read input" in result.stderr


def change_line(**parts) -> bytes:
    record = {"Metadata": {"WriteTimestampMicros": {"N": "1764064800123456"}},
              "Keys": {"request_id": {"S": "r1"}, "event_time_event_id": {"S": "2026-11-25T10:00:00Z#e1"}}, **parts}
    return json.dumps(record).encode()


IMAGE = {"request_id": {"S": "r1"}, "event_time_event_id": {"S": "2026-11-25T10:00:00Z#e1"}, "n": {"N": "1.10"}}


@pytest.mark.parametrize(
    ("parts", "view", "operation"),
    [
        ({"NewImage": IMAGE}, "NEW_AND_OLD_IMAGES", "INSERT"),
        ({"NewImage": IMAGE}, "NEW_IMAGE", "PUT"),
        ({"NewImage": IMAGE}, None, "PUT"),
        ({"NewImage": IMAGE, "OldImage": IMAGE}, "NEW_AND_OLD_IMAGES", "MODIFY"),
        ({"OldImage": IMAGE}, "NEW_AND_OLD_IMAGES", "REMOVE"),
        ({}, "NEW_IMAGE", "REMOVE"),
    ],
)
def test_incremental_lines_become_change_records(parts, view, operation):
    change = json.loads(flatten_line(change_line(**parts), view), parse_float=Decimal)
    assert change["operation"] == operation
    assert change["write_time"] == "2025-11-25T10:00:00.123456Z"
    assert change["write_timestamp_micros"] == 1764064800123456
    assert change["keys"] == {"request_id": "r1", "event_time_event_id": "2026-11-25T10:00:00Z#e1"}
    for name, key in (("new_image", "NewImage"), ("old_image", "OldImage")):
        if key in parts:
            assert change[name]["n"] == Decimal("1.10") and change[name]["event_id"] == "e1"
        else:
            assert change[name] is None


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b'{"Keys": {"a": {"S": "x"}}}', "needs Metadata and Keys"),
        (b'{"Metadata": {"WriteTimestampMicros": {"N": "1.5"}}, "Keys": {"a": {"S": "x"}}}', "whole microseconds"),
        (b'{"Metadata": {"WriteTimestampMicros": {"N": "1"}}, "Keys": {}}', "non-empty"),
        (b'{"Metadata": {"WriteTimestampMicros": {"N": "1"}}, "Keys": {"a": {"S": "x"}}, "NewImage": []}', "must be an object"),
    ],
)
def test_bad_incremental_lines_are_errors(line, reason):
    with pytest.raises(FlattenError, match=reason):
        list(flatten_lines([line], "changes.json.gz"))


def test_cli_flattens_incremental_exports_too():
    result = _cli(change_line(OldImage=IMAGE) + b"\n")
    assert result.returncode == 0
    assert json.loads(result.stdout)["operation"] == "REMOVE"


def test_progress_is_reported_with_items_bytes_and_rate():
    reports = []
    lines = [json.dumps({"Item": {"a": {"S": str(index)}}}).encode() + b"\n" for index in range(5)]
    count = flatten_stream(lines, lambda data: None, "x", progress=lambda totals: reports.append(totals.describe()),
                           progress_seconds=0)
    assert count == 5
    assert reports and reports[-1].startswith("5 items, 0.0 MB in ")
    assert reports[-1].endswith("items/s)")


# ---------------------------------------------------------------------------------------------
# The C fast path (jit_audit._speedups.flatten_into), every branch of it, byte for byte against
# the Python path. tests/core/test_speedups_sanitizers.py also runs these under ASan and UBSan.
# ---------------------------------------------------------------------------------------------

ESCAPED = '"\\\b\f\n\r\t\x01\x1f'  # json.dumps writes \" \\ \b \f \n \r \t \u0001 \u001f: all copied by C
ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ" * 2


def c_flatten_into():
    """The compiled flatten_into: fails (never skips, never falls back) when it is not there."""
    if not FAST_PATH:
        pytest.fail(
            f"jit_audit._speedups did not build (or {NO_SPEEDUPS_ENV} is set): the C fast path is missing, "
            "so the fast-path tests would run the Python path twice; see the compiler output of "
            "`pip install -e .`",
            pytrace=False,
        )
    from jit_audit import _speedups

    return _speedups.flatten_into


def nested(depth: int) -> dict:
    value: dict = {"BOOL": depth % 2 == 0}
    for level in range(depth - 1):
        value = {"L": [value, {"NULL": True}]} if level % 2 else {"M": {"k": value, "f": {"BOOL": False}}}
    return value


def c_path_items() -> list[dict]:
    """Items the C path must take whole: every tag it handles, every string length 0..40."""
    items: list[dict] = [{}, {"t": {"BOOL": True}, "f": {"BOOL": False}, "z": {"NULL": True}}]
    for length in range(41):
        text = ALPHABET[:length]
        digits = ("1234567890" * 4)[: min(length, 38)] or "0"  # DynamoDB keeps 38 digits
        numbers = [digits, "-" + digits, digits[:1] + "." + digits[1:] if length > 1 else "0.5",
                   digits + "E+12", "-0." + digits + "e-7", "0", "-0"]
        items.append({
            "s": {"S": text}, text or "empty": {"S": text[::-1]},
            "b": {"B": base64.b64encode(bytes(range(length))).decode()},
            **{f"n{index}": {"N": number} for index, number in enumerate(numbers)},
            # constants after a token of every length: each lands at every offset of a 16-byte block
            "l": {"L": [{"S": text}, {"BOOL": True}, {"NULL": True}, {"BOOL": False}, {"M": {text or "x": {"NULL": True}}}]},
        })
        items.append({
            **{f"e{index}": {"S": text[: length // 2] + char + text[length // 2 :]} for index, char in enumerate(ESCAPED)},
            "u2": {"S": text + "é" + "z" * 17}, "u3": {"S": text + "€" + "z" * 17}, "u4": {"S": text + "\U0001f600z"},
            "mix": {"S": "é€\U0001f600" * (length % 7)},
            "ss": {"SS": [ALPHABET[index:] + "é" * (index % 3) for index in range(length, -1, -1)]},  # 1..41 members
            "bs": {"BS": [base64.b64encode(bytes([index]) * (index % 9 + 1)).decode() for index in range(length + 1)]},
        })
    items.append({"deep": nested(32), "m": {"M": {}}, "l": {"L": []}, "ls": {"L": [{"SS": ["b", "a", "a b", "ab", ""]}]}})
    sort_key = {"S": "2026-01-15T10:00:00Z#ev#1"}
    items += [
        {"event_time_event_id": sort_key},
        {"a": {"S": "x"}, "event_time_event_id": sort_key, "event_time": {"S": "given"}},
        {"event_id": {"N": "7"}, "event_time_event_id": sort_key},
        {"event_time_event_id": sort_key, "event_time": {"NULL": True}, "event_id": {"BOOL": False}},
        {"event_time_event_id": {"S": "no hash"}},
        {"event_time_event_id": {"S": "#"}},
        {"event_time_event_id": {"N": "5"}},
    ]
    return items


def c_path_lines() -> list[bytes]:
    """Each item compact, with json.dumps' spaces, and with a \\r\\n ending."""
    lines = []
    for item in c_path_items():
        record = {"Item": item}
        lines.append(json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode() + b"\n")
        lines.append(json.dumps(record, ensure_ascii=False).encode() + b"\n")
        lines.append(b" \t" + json.dumps(record, ensure_ascii=False, separators=(" , ", " : ")).encode() + b" \r\n")
    return lines


# Lines the C path must hand to the Python path untouched (status 1), which flattens them or fails.
HANDED_BACK = [
    b'{"Item":{"ns":{"NS":["10","9"]}}}',
    b'{"Item":{"ss":{"SS":["a\\nb","a"]}}}',
    b'{"Item":{"a\\tb":{"S":"x"}}}',
    b'{"Item":{"s":{"S":"caf\\u00e9"}}}',
    b'{"Item":{"s":{"S":"line\\u000a"}}}',
    b'{"Item":{"s":{"S":"\\/"}}}',
    b'{"Item":{"a":{"N":"+1"},"b":{"N":".5"},"c":{"N":"007"}}}',
    b'{"Item":{"a":{"N":"1e"}}}',
    b'{"Item":{"a":{"NULL":false}}}',
    b'{"Item":{"a":{"Q":"1"}}}',
    b'{"Item":{"a":{"ABCDE":"1"}}}',
    b'{"Item":{"a":{"s":"1"}}}',
    b'{"Item":{"a":{"SS":[]}}}',
    b'{"Item":{"event_time_event_id":{"S":"a\\"b#c"}}}',
    b'{"Item":{"s":{"S":"raw\x01control"}}}',
    b'{"Item":{"s":{"S":"bad \xc3\x28 utf8"}}}',
    b'{"Item":{"s":{"S":"\xed\xa0\x80 surrogate"}}}',
    b'{"Item":{"s":{"S":"lead \x80 and \xff bytes"}}}',
    b'{"Item":{"s":{"S":"\\u001g \\u001F"}}}',
    b'{"Item":{"a":{"S":"x"};"b":{"S":"y"}}}',
    b'{"Item":{"a":{"SS":["a";"b"]}}}',
    b'{"Item":{"a":{"L":[{"S":"x"};{"S":"y"}]}}}',
    b'{"Item":{"a":{"S":"x"}},"Extra":1}',
    b'{"Keys":{"a":{"S":"x"}},"Metadata":{"WriteTimestampMicros":{"N":"1"}}}',
    json.dumps({"Item": {"deep": nested(33)}}).encode(),  # one level deeper than DynamoDB allows
    b'{"Item":{"a":{"S":"x"},"b":{"S":"y"},"a":{"S":"z"}}}',  # a name twice
    b'{"Item":{"m":{"M":{"a":{"S":"x"},"a":{"S":"x"}}}}}',
    b'{"Item":{"n":{"N":"1E+126"}}}',  # beyond DynamoDB's range
    b'{"Item":{"n":{"N":"1E-131"}}}',
    b'{"Item":{"n":{"N":"1234567890123456789012345678901234567891"}}}',  # 40 significant digits
    b'{"Item":{"n":{"N":"1E+9999999999"}}}',
    b'{"Item":{"b":{"B":"QR=="}}}',  # not canonical base64
    b'{"Item":{"b":{"B":"not base64"}}}',
    b'{"Item":{"b":{"BS":["QQ==","QQ=="]}}}',  # a member twice
    b'{"Item":{"s":{"SS":["a","b","a"]}}}',
    b'{"Item":{"s":{"BS":[]}}}',
]


def test_c_fast_path_takes_every_value_it_handles_and_writes_the_python_paths_bytes():
    flatten_into = c_flatten_into()
    lines = c_path_lines()
    for line in lines:
        room = 3 * (len(line) - 1) + 64  # exactly the room flatten_into asks for
        out = bytearray(room)
        written, end, count, status = flatten_into(line, 0, len(line), out)
        assert (end, count, status) == (len(line), 1, 0), line
        assert bytes(out[:written]) == flatten_line(line), line
        written, end, count, status = flatten_into(line, 0, len(line), bytearray(room - 1))
        assert (written, end, count, status) == (0, 0, 0, 2), line
    blob = b"".join(lines)
    out = bytearray(3 * len(blob) + 64)
    written, end, count, status = flatten_into(blob, 0, len(blob), out)
    assert (end, count, status) == (len(blob), len(lines), 0)
    assert bytes(out[:written]) == b"".join(flatten_line(line) for line in lines)
    written, end, count, status = flatten_into(blob, len(lines[0]), len(blob) - 1, out)  # last line partial
    assert (end, count, status) == (len(blob) - len(lines[-1]), len(lines) - 2, 0)


def test_c_fast_path_hands_back_what_it_does_not_handle_and_the_stream_is_still_exact():
    flatten_into = c_flatten_into()
    good = c_path_lines()[3:6]
    before = b"".join(flatten_line(line) for line in good)
    for line in HANDED_BACK:
        line += b"\n"
        out = bytearray(3 * len(line) + 64)
        assert flatten_into(line, 0, len(line), out) == (0, 0, 0, 1), line
        blob = b"".join(good) + line + good[0]
        written, end, count, status = flatten_into(blob, 0, len(blob), bytearray(3 * len(blob) + 64))
        assert (end, count, status) == (len(b"".join(good)), 3, 1), line
        assert written == len(before), line
        try:
            expected: bytes | None = before + flatten_line(line) + flatten_line(good[0])
        except ValueError:
            expected = None  # the Python path refuses the line: the stream must stop there
        for fast in (True, False):
            chunks: list[bytes] = []
            write = chunks.append
            if expected is None:
                with pytest.raises(FlattenError) as caught:
                    flatten_stream(io.BytesIO(blob), lambda data, write=write: write(bytes(data)), "x", use_fast_path=fast)
                assert caught.value.line_number == 4, line
                assert b"".join(chunks) == before, line
            else:
                count = flatten_stream(io.BytesIO(blob), lambda data, write=write: write(bytes(data)), "x",
                                       use_fast_path=fast)
                assert (count, b"".join(chunks)) == (5, expected), line


def test_c_fast_path_stops_inside_every_truncated_line():
    """Every prefix of a line is incomplete: the C path reads nothing past the line and hands it back."""
    flatten_into = c_flatten_into()
    rich = [line for line in c_path_lines() if b"deep" in line or b'"mix"' in line][:4] + [HANDED_BACK[0] + b"\n"]
    for line in rich:
        content = line.rstrip(b" \r\n")
        for cut in range(len(content)):
            piece = bytes(content[:cut]) + b"\n"  # its own object, so a read past it is a read past an object
            assert flatten_into(piece, 0, len(piece), bytearray(3 * len(piece) + 64))[2:] == (0, 1), piece


def test_c_fast_path_checks_its_arguments():
    flatten_into = c_flatten_into()
    for start, stop in ((-1, 1), (0, 99), (2, 1)):
        with pytest.raises(ValueError, match="start/stop out of range"):
            flatten_into(b'{"Item":{}}\n', start, stop, bytearray(100))
    assert flatten_into(b'{"Item":{}}', 0, 11, bytearray(100)) == (0, 0, 0, 0)  # no newline yet: wait for more
