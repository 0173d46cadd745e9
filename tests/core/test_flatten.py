"""Exact flattening: every DynamoDB type, exact numbers, sorted sets, and loud errors."""

from __future__ import annotations

import gzip
import io
import json
import subprocess
import sys
from decimal import Decimal

import orjson
import pytest

from jit_audit.flatten import FlattenError, flatten_line, flatten_lines, flatten_stream, open_text_or_gzip


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
    result = raw({"ss": {"SS": ["b", "B", "é", "a"]}, "ns": {"NS": ["10", "9.5", "-1", "1E+1"]},
                  "bs": {"BS": ["Yg==", "YQ=="]}})
    assert result == b'{"ss":["B","a","b","\xc3\xa9"],"ns":[-1,9.5,10,1E+1],"bs":["YQ==","Yg=="]}\n'


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
    assert str(caught.value).startswith("export.json.gz, line 2: ")
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
    assert b"dump.json, line 2: unknown DynamoDB type tag 'X'" in result.stderr
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
