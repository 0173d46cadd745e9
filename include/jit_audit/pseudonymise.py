"""Optional pseudonymisation of ``actor_email`` in every output line, with a keyed HMAC.

Reviewers often need to correlate actors ("the same person approved all three") without seeing who
they are. With a secret key, each address becomes ``hmac-sha256:<64 hex digits>`` of the address
(trimmed and lower-cased, so ``Alice@X.com`` and ``alice@x.com`` stay one actor). The same key
gives the same pseudonym in every export and ad-hoc result, so they can be joined; without the key
nobody can test a guess (a plain hash of an address could be reversed by hashing a staff list).
Whoever holds the key can re-identify an actor by computing the HMAC of a candidate address.

What is replaced: the value of every ``actor_email`` key whose value is a string holding ``@``,
wherever it sits in the line (top level, and ``new_image``/``old_image``/``keys`` of incremental
change records). Values without ``@`` (service principals such as ``system``) are kept: they name
no person. Free text elsewhere (a justification that mentions an address) is not rewritten.

Lines are rewritten as bytes, not re-serialised, so every other byte of the exact flattened line
(numbers with all their digits included) stays as it was. A line in which an address cannot be
replaced exactly fails the run rather than leaking the address (``PseudonymisationError``).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterator
from typing import Any

import orjson

FIELD = "actor_email"
PREFIX = "hmac-sha256:"
_KEY_PAIR = b'"' + FIELD.encode() + b'":'
#: The least key length accepted: 32 bytes, SHA-256's block security level.
MIN_KEY_BYTES = 32


class PseudonymisationError(ValueError):
    """A key that cannot be used, or a line whose address cannot be replaced exactly."""


class Pseudonymiser:
    """Rewrites ``actor_email`` addresses in flattened JSON Lines; ``describe()`` goes in manifests."""

    def __init__(self, key: str | bytes) -> None:
        secret = key.encode() if isinstance(key, str) else bytes(key)
        if len(secret) < MIN_KEY_BYTES:
            raise PseudonymisationError(
                f"the pseudonymisation key must be at least {MIN_KEY_BYTES} bytes (got {len(secret)}); "
                "generate one with: python -c 'import secrets; print(secrets.token_hex(32))'"
            )
        self._key = secret
        self._cache: dict[str, str] = {}

    def describe(self) -> dict[str, str]:
        """What a manifest records: the field, the algorithm and a fingerprint that identifies the key.

        The fingerprint is an HMAC of a fixed label, so it tells keys apart (a rotated key shows) without
        revealing anything that would let someone compute pseudonyms.
        """
        fingerprint = hmac.new(self._key, b"jit-audit pseudonymisation key fingerprint", hashlib.sha256).hexdigest()
        return {"field": FIELD, "algorithm": "HMAC-SHA256 of the trimmed, lower-cased address",
                "format": PREFIX + "<hex>", "key_fingerprint": fingerprint[:16]}

    def pseudonym(self, address: str) -> str:
        """``hmac-sha256:<hex>`` of the trimmed, lower-cased address."""
        found = self._cache.get(address)
        if found is None:
            digest = hmac.new(self._key, address.strip().lower().encode(), hashlib.sha256).hexdigest()
            found = self._cache[address] = PREFIX + digest
            if len(self._cache) > 100_000:  # bounded: a table has far fewer actors than that
                self._cache.clear()
        return found

    def line(self, line: bytes) -> bytes:
        """One flattened line with every ``actor_email`` address replaced."""
        if _KEY_PAIR not in line:
            return line
        addresses = set(_addresses(orjson.loads(line)))
        for address in addresses:
            clear = _KEY_PAIR + orjson.dumps(address)
            if clear not in line:
                raise PseudonymisationError(
                    f"cannot replace an {FIELD} exactly (its JSON text differs from the canonical form); "
                    "refusing to write the line"
                )
            line = line.replace(clear, _KEY_PAIR + orjson.dumps(self.pseudonym(address)))
        return line

    def writer(self, write: Callable[[bytes], Any]) -> LineWriter:
        """A ``write`` for whole-or-partial chunks of lines that passes pseudonymised lines to ``write``."""
        return LineWriter(self, write)


class LineWriter:
    """Buffers a partial last line between writes; ``close()`` flushes it (and refuses a torn line)."""

    def __init__(self, pseudonymiser: Pseudonymiser, write: Callable[[bytes], Any]) -> None:
        self._pseudonymiser = pseudonymiser
        self._write = write
        self._carry = b""

    def __call__(self, data: bytes) -> None:
        data = self._carry + bytes(data)
        cut = data.rfind(b"\n") + 1
        self._carry = data[cut:]
        if cut:  # split on "\n" only: JSON Lines are cut there, and nowhere else
            lines = data[: cut - 1].split(b"\n")
            self._write(b"".join(self._pseudonymiser.line(line) + b"\n" for line in lines))

    def close(self) -> None:
        if self._carry:
            carry, self._carry = self._carry, b""
            self._write(self._pseudonymiser.line(carry))


def _addresses(value: Any) -> Iterator[str]:
    """Every string value of an ``actor_email`` key that holds ``@``, at any depth."""
    if isinstance(value, dict):
        for name, member in value.items():
            if name == FIELD and isinstance(member, str):
                if "@" in member:
                    yield member
            else:
                yield from _addresses(member)
    elif isinstance(value, list):
        for member in value:
            yield from _addresses(member)
