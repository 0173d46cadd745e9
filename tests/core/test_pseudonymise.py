"""``jit_audit.pseudonymise``: actor_email addresses replaced by a keyed HMAC, every other byte kept."""

from __future__ import annotations

import hashlib
import hmac
import os
import subprocess
import sys
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jit_audit.flatten import flatten_line
from jit_audit.pseudonymise import PseudonymisationError, Pseudonymiser

KEY = "k" * 32
OTHER_KEY = "j" * 32


def _expected(key: str, address: str) -> str:
    """Computed here from the documented rule, not with the product's code."""
    return "hmac-sha256:" + hmac.new(key.encode(), address.strip().lower().encode(), hashlib.sha256).hexdigest()


def test_pseudonyms_follow_the_documented_rule_and_depend_on_the_key() -> None:
    one = Pseudonymiser(KEY)
    assert one.pseudonym("alice@example.com") == _expected(KEY, "alice@example.com")
    assert one.pseudonym(" Alice@Example.COM ") == one.pseudonym("alice@example.com")
    assert one.pseudonym("bob@example.com") != one.pseudonym("alice@example.com")
    assert Pseudonymiser(OTHER_KEY).pseudonym("alice@example.com") != one.pseudonym("alice@example.com")
    described = one.describe()
    assert described["field"] == "actor_email" and described["key_fingerprint"] != Pseudonymiser(
        OTHER_KEY).describe()["key_fingerprint"]
    assert KEY not in orjson.dumps(described).decode()


def test_short_keys_are_refused() -> None:
    with pytest.raises(PseudonymisationError, match="at least 32 bytes"):
        Pseudonymiser("too-short")


def test_a_line_keeps_every_other_byte_including_exact_numbers() -> None:
    export_line = (b'{"Item":{"request_id":{"S":"req-1"},"actor_email":{"S":"Alice@Example.com"},'
                   b'"amount":{"N":"12345678901234567890.123456789012345678"},"details":{"M":{"note":{"S":"x"}}}}}')
    flat = flatten_line(export_line).rstrip(b"\n")
    out = Pseudonymiser(KEY).line(flat)
    assert b"Alice@Example.com" not in out and b"@" not in out
    assert out == flat.replace(b'"Alice@Example.com"', orjson.dumps(_expected(KEY, "alice@example.com")))
    assert b"12345678901234567890.123456789012345678" in out


def test_service_actors_and_lines_without_the_field_are_untouched() -> None:
    pseudonymiser = Pseudonymiser(KEY)
    for line in (b'{"request_id":"r","actor_email":"system"}', b'{"request_id":"r"}',
                 b'{"request_id":"r","actor_email":null}'):
        assert pseudonymiser.line(line) == line


def test_change_records_and_nested_copies_are_rewritten() -> None:
    record = {"operation": "MODIFY", "keys": {"request_id": "r"},
              "new_image": {"actor_email": "a@x.io", "details": {"actor_email": "b@x.io"}},
              "old_image": {"actor_email": "b@x.io"}}
    out = Pseudonymiser(KEY).line(orjson.dumps(record))
    assert b"@" not in out
    parsed = orjson.loads(out)
    assert parsed["new_image"]["actor_email"] == _expected(KEY, "a@x.io")
    assert parsed["old_image"]["actor_email"] == parsed["new_image"]["details"]["actor_email"] == _expected(
        KEY, "b@x.io")


def test_an_address_in_non_canonical_json_fails_instead_of_leaking() -> None:
    with pytest.raises(PseudonymisationError, match="refusing"):
        Pseudonymiser(KEY).line(b'{"actor_email":"alice\\u0040example.com"}')


ADDRESSES = st.builds(lambda user, domain: f"{user}@{domain}",
                      st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=12),
                      st.from_regex(r"[a-z0-9-]{1,10}\.[a-z]{2,5}", fullmatch=True))


@settings(max_examples=200, deadline=None)
@given(addresses=st.lists(ADDRESSES, min_size=1, max_size=6), cuts=st.lists(st.integers(0, 2000), max_size=5))
def test_no_address_survives_in_any_chunking(addresses: list[str], cuts: list[int]) -> None:
    lines = b"".join(orjson.dumps({"request_id": f"r{n}", "actor_email": address, "n": n}) + b"\n"
                     for n, address in enumerate(addresses))
    written: list[bytes] = []
    write = Pseudonymiser(KEY).writer(written.append)
    start = 0
    for cut in sorted(min(cut, len(lines)) for cut in cuts):
        write(lines[start:cut])
        start = cut
    write(lines[start:])
    write.close()
    out = b"".join(written)
    assert out.count(b"\n") == len(addresses)
    for line, address in zip(out.splitlines(), addresses, strict=True):
        assert orjson.loads(line)["actor_email"] == _expected(KEY, address)
        assert address.encode() not in out


# --------------------------------------------------------------------------- settings and the CLI


def test_the_setting_is_strict_and_needs_a_connection_id() -> None:
    from jit_audit.settings import SettingsError, load_settings

    assert load_settings({}.get).pseudonymise_actor_email is False
    on = load_settings({"jit_audit_pseudonymise_actor_email": "true"}.get)
    assert on.pseudonymise_actor_email and on.pseudonymisation_conn_id == "jit_audit_pseudonymisation"
    with pytest.raises(SettingsError, match="jit_audit_pseudonymise_actor_email must be true or false"):
        load_settings({"jit_audit_pseudonymise_actor_email": "maybe"}.get)
    with pytest.raises(SettingsError, match="jit_audit_pseudonymisation_conn_id must name a connection"):
        load_settings({"jit_audit_pseudonymise_actor_email": "yes", "jit_audit_pseudonymisation_conn_id": " "}.get)


def _cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "jit_audit.cli", *args], capture_output=True, timeout=120,
                          env={**os.environ, "AWS_MAX_ATTEMPTS": "1", **env})


def test_cli_pseudonymises_every_address_and_reads_the_key_only_from_the_environment(aws: Any) -> None:
    from jit_audit_dev.seed import seed

    seed(aws.resource("dynamodb"), "jit_audit", requests=40, end=datetime(2026, 1, 15, tzinfo=UTC))
    addresses = {item["actor_email"]["S"] for item in aws.client("dynamodb").scan(TableName="jit_audit")["Items"]
                 if "@" in item.get("actor_email", {}).get("S", "")}
    assert addresses
    args = ["scan", "--event-type", "REQUESTED", "--event-type", "APPROVED", "--endpoint-url", aws.endpoint_url,
            "--region", "us-east-1"]
    plain = _cli(args, {})
    assert plain.returncode == 0 and any(address.encode() in plain.stdout for address in addresses)
    done = _cli([*args, "--pseudonymise"], {"JIT_AUDIT_PSEUDONYMISATION_KEY": KEY})
    assert done.returncode == 0, done.stderr
    assert done.stdout.count(b"\n") == plain.stdout.count(b"\n")
    output = done.stdout + done.stderr
    assert not [address for address in addresses if address.encode() in output]
    assert KEY.encode() not in output
    pseudonyms = {orjson.loads(line)["actor_email"] for line in done.stdout.splitlines()}
    assert pseudonyms <= {_expected(KEY, address) for address in addresses} | {"system"}
    # Without a usable key: refused before any AWS call (the endpoint is a closed port).
    closed = ["scan", "--event-type", "ERROR", "--endpoint-url", "http://127.0.0.1:9", "--pseudonymise"]
    for env, message in (({}, "JIT_AUDIT_PSEUDONYMISATION_KEY"), ({"JIT_AUDIT_PSEUDONYMISATION_KEY": "short"},
                                                                   "at least 32 bytes")):
        refused = _cli(closed, env)
        assert refused.returncode == 2 and message in refused.stderr.decode() and refused.stdout == b""
        assert "Could not connect" not in refused.stderr.decode()
