"""Realistic DynamoDB export data files for the benchmark: JIT audit events with a ~700-byte details map."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import orjson
from isal import igzip

EVENT_TYPES = ("REQUESTED", "APPROVED", "DENIED", "GRANTED", "REVOKED", "EXPIRED", "ERROR")


def _s(value: str) -> dict:
    return {"S": value}


def _n(value: str) -> dict:
    return {"N": value}


def item(rng: random.Random, index: int) -> dict:
    """One event in DynamoDB JSON, as an export line carries it (about 1.1 KB)."""
    request = f"req-{rng.getrandbits(80):020x}"
    event_id = f"{rng.getrandbits(128):032x}"
    when = f"2026-{rng.randint(1, 11):02d}-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}.{rng.randint(0, 999):03d}Z"
    account = f"{rng.randint(10**11, 10**12 - 1)}"
    details = {
        "role": _s(rng.choice(("ReadOnlyAccess", "PowerUserAccess", "AdministratorAccess"))),
        "ticket": _s(f"SEC-{rng.randint(1000, 99999)}"),
        "reason": _s(rng.choice(("incident INC-4242 triage: elevated 5xx on checkout", "deploy hotfix for CVE-2026-1234",
                                 "quarterly cost review", "rotate leaked keys (see runbook §4)"))),
        "duration_minutes": _n(str(rng.choice((15, 30, 60, 120, 240)))),
        "client": {"M": {
            "source_ip": _s(f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"),
            "mfa": {"BOOL": rng.random() < 0.9},
            "user_agent": _s("mattermost-plugin/2.4.1 (linux; x86_64) jit-bot/1.8.0"),
            "geo": {"M": {"country": _s("DE"), "lat": _n(f"{rng.uniform(-90, 90):.6f}"), "lon": _n(f"{rng.uniform(-180, 180):.6f}")}},
        }},
        "approvals": {"L": [{"M": {"by": _s("secops-lead@example.com"), "at": _s(when), "weight": _n("1")}}
                            for _ in range(rng.randint(1, 2))]},
        "policy": {"M": {"name": _s("jit-default"), "version": _n("3"), "max_duration": _n("240"),
                         "require_ticket": {"BOOL": True}, "exceptions": {"NULL": True}}},
        "labels": {"SS": sorted({rng.choice(("prod", "pci", "sox", "eu", "us", "oncall")) for _ in range(3)})},
        "cost_estimate_usd": _n(f"{rng.uniform(0, 100):.4f}"),
    }
    return {"Item": {
        "request_id": _s(request),
        "event_time_event_id": _s(f"{when}#{event_id}"),
        "event_type": _s(EVENT_TYPES[index % len(EVENT_TYPES)]),
        "account_id": _s(account),
        "channel_id": _s(f"{rng.getrandbits(128):032x}"[:26]),
        "actor_mm_user_id": _s(f"{rng.getrandbits(128):032x}"[:26]),
        "actor_email": _s(rng.choice(("alice@example.com", "bob@example.com", "system", "secops-lead@example.com"))),
        "details": {"M": details},
    }}


def write_export(path: Path, items: int, seed: int = 1) -> Path:
    """Write ``items`` export lines to ``path`` (gzip), reusing a file already there."""
    if path.exists():
        return path
    rng = random.Random(seed)
    tmp = path.with_suffix(".partial")
    # A few hundred distinct lines, reused: generation would otherwise dominate the benchmark's time.
    templates = [orjson.dumps(item(rng, index)) + b"\n" for index in range(min(items, 20_011))]
    with igzip.open(tmp, "wb", compresslevel=2) as out:
        batch = []
        for index in range(items):
            batch.append(templates[index % len(templates)])
            if len(batch) == 10_000:
                out.write(b"".join(batch))
                batch.clear()
        out.write(b"".join(batch))
    tmp.rename(path)
    return path


if __name__ == "__main__":
    write_export(Path(sys.argv[1]), int(sys.argv[2]))
