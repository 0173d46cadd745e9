"""S3 conditional writes in the emulator: decided atomically, as S3 decides them.

moto checks ``If-None-Match`` and then writes without a lock, so two concurrent writers of one key
could both be told they created it. The publication ledger (``jit_audit.ledger``) takes sequence
numbers with exactly such writes; the emulator serialises ``PutObject`` so that one wins and every
other writer gets ``412 PreconditionFailed``, whatever the interleaving.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import boto3
import pytest
from botocore.exceptions import ClientError

from jit_audit_dev.emulator import EmulatorThread

BUCKET = "conditional-bucket"
WRITERS = 16


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with EmulatorThread(port=0) as running:
        yield running.endpoint_url


def client(endpoint: str):
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing",
                        aws_secret_access_key="testing")


@pytest.fixture()
def slow_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Widen the gap between moto's If-None-Match check and its write to 0.2 s (the emulator runs in
    this process), so that unserialised writers would all pass the check: the race is then certain."""
    import time

    from moto.s3.models import S3Backend

    original = S3Backend.put_object

    def slow(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        time.sleep(0.2)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(S3Backend, "put_object", slow)


def test_many_concurrent_if_none_match_writers_of_one_key_exactly_one_wins(endpoint: str, slow_writes: None) -> None:
    client(endpoint).create_bucket(Bucket=BUCKET)
    key = "ledger/000000000000.json"
    start = threading.Barrier(WRITERS)
    outcomes: list[str] = []
    lock = threading.Lock()

    def write(writer: int) -> None:
        s3 = client(endpoint)
        start.wait()
        try:
            s3.put_object(Bucket=BUCKET, Key=key, Body=f"writer {writer}".encode(), IfNoneMatch="*")
            outcome = f"won {writer}"
        except ClientError as error:
            outcome = error.response["Error"]["Code"]
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=write, args=(writer,)) for writer in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    winners = [outcome for outcome in outcomes if outcome.startswith("won")]
    assert len(winners) == 1, outcomes
    assert outcomes.count("PreconditionFailed") == WRITERS - 1, outcomes
    body = client(endpoint).get_object(Bucket=BUCKET, Key=key)["Body"].read().decode()
    assert body == f"writer {winners[0].split()[1]}", "the stored object is the winner's"
