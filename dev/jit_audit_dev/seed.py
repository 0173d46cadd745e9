"""Create the ``jit_audit`` table as the runbook describes it, and fill it with realistic events.

For local runs and tests (against the emulator), and for rehearsals in a sandbox account. Each
request follows a real lifecycle: REQUESTED, then APPROVED or DENIED; an approval is GRANTED (or
ends in ERROR), and a grant ends REVOKED or EXPIRED. Events carry a nested ``details`` map.

Each event is written as if at its event time: the writes carry the local emulator's
``WRITE_TIME_HEADER``, so its write history (and so its point-in-time exports) has the table grow
event by event over the seeded days. DynamoDB has no such header: in AWS the writes happen now.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from jit_audit_dev.emulator import WRITE_TIME_HEADER

ACCOUNTS = ("123456789012", "210987654321", "345678901234", "456789012345", "567890123456")
CHANNELS = ("q8k3fh5wrtbyxj1o9zmd7ecn4a", "7tq1zr3ijpfh8x6kwbn5y2mdoc", "3m9xcy1b8ahkqt5fzw2ne7rpud", "g4u6s1kd9ozbqp7t3yxjw5hram")
REQUESTERS = ("alice@example.com", "bob@example.com", "carol@example.com", "dan@example.com", "erin@example.com")
APPROVERS = ("secops-lead@example.com", "platform-oncall@example.com")
ROLES = ("ReadOnlyAccess", "PowerUserAccess", "AdministratorAccess", "BillingReadOnly")
SORT_KEY = "event_time_event_id"  # "<ISO 8601 event time>#<event id>"


@dataclass(frozen=True)
class SeedResult:
    table: str
    requests: int
    events: int
    by_type: dict[str, int]
    first_event: datetime | None = None
    last_event: datetime | None = None


def event_time(sort_key: str) -> datetime:
    """The event time an ``event_time_event_id`` value begins with (the time the seeder wrote it at)."""
    return datetime.fromisoformat(sort_key.partition("#")[0].replace("Z", "+00:00"))


def default_end() -> datetime:
    """Where seeded history ends by default: the start of yesterday (UTC).

    The export DAG exports a date as of its start (the end of its data interval), so yesterday's
    snapshot - the date ``make demo`` exports - holds every seeded event, and an older date the
    events before it.
    """
    return datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)


def create_table(client: Any, table: str) -> None:
    """Create the table with the runbook's keys and both GSIs, and enable point-in-time recovery."""
    attribute_definitions = [
        {"AttributeName": "request_id", "AttributeType": "S"},
        {"AttributeName": "event_time_event_id", "AttributeType": "S"},
        {"AttributeName": "account_id", "AttributeType": "S"},
        {"AttributeName": "channel_id", "AttributeType": "S"},
    ]

    def gsi(name: str, partition_key: str) -> dict[str, Any]:
        return {
            "IndexName": name,
            "KeySchema": [
                {"AttributeName": partition_key, "KeyType": "HASH"},
                {"AttributeName": "event_time_event_id", "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "ALL"},
        }

    client.create_table(
        TableName=table,
        AttributeDefinitions=attribute_definitions,
        KeySchema=[
            {"AttributeName": "request_id", "KeyType": "HASH"},
            {"AttributeName": SORT_KEY, "KeyType": "RANGE"},
        ],
        GlobalSecondaryIndexes=[gsi("gsi_account_event", "account_id"), gsi("gsi_channel_event", "channel_id")],
        BillingMode="PAY_PER_REQUEST",
    )
    client.get_waiter("table_exists").wait(TableName=table)
    client.update_continuous_backups(
        TableName=table,
        PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True, "RecoveryPeriodInDays": 35},
    )


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def lifecycle_events(rng: random.Random, start: datetime) -> list[dict[str, Any]]:
    """The events of one request, oldest first, as DynamoDB items (numbers as Decimal)."""
    request_id = f"req-{uuid.UUID(int=rng.getrandbits(128)).hex[:20]}"
    account = rng.choice(ACCOUNTS)
    channel = rng.choice(CHANNELS)
    requester = rng.choice(REQUESTERS)
    role = rng.choice(ROLES)
    duration = rng.choice((15, 30, 60, 120, 240))
    ticket = f"SEC-{rng.randint(1000, 9999)}"
    events: list[dict[str, Any]] = []

    def add(event_type: str, moment: datetime, actor: str, extra: dict[str, Any]) -> None:
        event_id = uuid.UUID(int=rng.getrandbits(128)).hex
        details: dict[str, Any] = {"role": role, "ticket": ticket, **extra}
        events.append(
            {
                "request_id": request_id,
                "event_time_event_id": f"{_iso(moment)}#{event_id}",
                "event_type": event_type,
                "account_id": account,
                "channel_id": channel,
                "actor_mm_user_id": uuid.UUID(int=rng.getrandbits(128)).hex[:26],
                "actor_email": actor,
                "details": details,
            }
        )

    add(
        "REQUESTED",
        start,
        requester,
        {
            "reason": rng.choice(("incident INC-42 triage", "deploy hotfix", "cost review", "rotate keys")),
            "duration_minutes": Decimal(duration),
            "client": {"source_ip": f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
                       "mfa": rng.random() < 0.9, "user_agent": "mattermost-plugin/2.4.1"},
            "tags": ["jit", account],
        },
    )
    decided = start + timedelta(minutes=rng.randint(1, 30), seconds=rng.randint(0, 59))
    approver = rng.choice(APPROVERS)
    if rng.random() < 0.15:
        add("DENIED", decided, approver, {"reason": "insufficient justification", "policy": {"name": "jit-default", "version": Decimal("3")}})
        return events
    add("APPROVED", decided, approver, {"approvals_required": Decimal(1), "comment": None})
    granted = decided + timedelta(seconds=rng.randint(2, 9), milliseconds=rng.randint(0, 999))
    if rng.random() < 0.05:
        add("ERROR", granted, "system", {"error": {"code": "AccessDenied", "message": "sts:AssumeRole denied", "retryable": False}})
        return events
    add("GRANTED", granted, "system", {"session": {"expires_in_seconds": Decimal(duration * 60), "session_name": f"jit-{requester.split('@')[0]}"}})
    if rng.random() < 0.3:
        revoked = granted + timedelta(minutes=rng.randint(1, max(duration - 1, 1)))
        add("REVOKED", revoked, rng.choice(APPROVERS), {"reason": "work complete", "early_by_seconds": Decimal(rng.randint(60, 3600))})
    else:
        add("EXPIRED", granted + timedelta(minutes=duration), "system", {"elapsed_minutes": Decimal(duration)})
    return events


def generate(requests: int, *, seed: int, end: datetime, days: float) -> list[dict[str, Any]]:
    """All events of ``requests`` requests started within ``days`` before ``end`` (each more than
    six hours before it, so every event is over an hour before ``end``)."""
    rng = random.Random(seed)
    items = []
    for _ in range(requests):
        start = end - timedelta(seconds=rng.uniform(6 * 3600, days * 86400))
        items.extend(lifecycle_events(rng, start.replace(microsecond=rng.randint(0, 999) * 1000)))
    return items


def seed(
    dynamodb_resource: Any,
    table: str,
    *,
    requests: int = 200,
    seed_value: int = 7,
    end: datetime | None = None,
    days: float = 7,
    create: bool = True,
) -> SeedResult:
    """Create (optionally) and fill ``table`` with events spread over ``days`` before ``end`` (default:
    :func:`default_end`), each written at its event time; returns what was written.

    ``jit-audit-dev seed`` spreads them over 30 days instead, for the backfills of the local stack.
    """
    client = dynamodb_resource.meta.client
    if create:
        create_table(client, table)
    items = generate(requests, seed=seed_value, end=end or default_end(), days=days)
    with _written_at_event_time(client), dynamodb_resource.Table(table).batch_writer() as batch:
        for item in items:
            batch.put_item(Item=item)
    by_type: dict[str, int] = {}
    for item in items:
        by_type[item["event_type"]] = by_type.get(item["event_type"], 0) + 1
    times = sorted(event_time(item[SORT_KEY]) for item in items)
    return SeedResult(table=table, requests=requests, events=len(items), by_type=dict(sorted(by_type.items())),
                      first_event=times[0] if times else None, last_event=times[-1] if times else None)


@contextmanager
def _written_at_event_time(client: Any) -> Iterator[None]:
    """While inside, the client's BatchWriteItem requests ask the emulator to record each item's
    write at the time its sort key begins with (its event time) instead of at its clock's now."""

    def add_header(request: Any, **_: Any) -> None:
        request.headers[WRITE_TIME_HEADER] = SORT_KEY

    event = "before-sign.dynamodb.BatchWriteItem"
    client.meta.events.register(event, add_header)
    try:
        yield
    finally:
        client.meta.events.unregister(event, add_header)


def ensure_bucket(s3_client: Any, bucket: str, *, prefix: str, retention_days: int | None) -> None:
    """Create the export bucket if needed, with a lifecycle rule on ``prefix`` (local use).

    It also gets default encryption (AES256) and a full public access block, so the retention
    check's default bucket checks pass.
    """
    existing = {entry["Name"] for entry in s3_client.list_buckets().get("Buckets", [])}
    if bucket not in existing:
        s3_client.create_bucket(Bucket=bucket)
    s3_client.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]},
    )
    s3_client.put_public_access_block(
        Bucket=bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True,
        },
    )
    if retention_days:
        clean = prefix.strip("/")
        s3_client.put_bucket_lifecycle_configuration(
            Bucket=bucket,
            LifecycleConfiguration={
                "Rules": [
                    {
                        "ID": "jit-audit-export-retention",
                        "Status": "Enabled",
                        "Filter": {"Prefix": f"{clean}/" if clean else ""},
                        "Expiration": {"Days": retention_days},
                    }
                ]
            },
        )
