"""The live stack for tests/live: real Airflow processes on loopback next to the AWS emulator.

One stack per test session (``live_stack``), the same one ``make up`` starts (jit_audit_dev.stack):
the emulator, a seeded table and bucket, and Airflow's API server, scheduler (LocalExecutor),
triggerer and DAG processor on SQLite, with the simple auth manager. A webhook server on
127.0.0.1 (``webhook``) receives the failure alerts. Every process is stopped at the end,
whatever the outcome; their logs are copied to ``test-artifacts/live/logs/``.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from livelib import ARTIFACTS, Stack, Webhook, aws_clients, keep_logs, table_items


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "live: starts real Airflow processes and the emulator on loopback (tests/live, a few minutes)"
    )


@pytest.fixture(scope="session")
def webhook() -> Iterator[Webhook]:
    server = Webhook()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def live_stack(webhook: Webhook) -> Iterator[Any]:
    workdir = Path(tempfile.mkdtemp(prefix="jit-audit-live-"))
    stack = Stack(
        workdir,
        export_seconds=14,  # long enough that wait_for_export always defers, short enough to keep runs quick
        pitr_lag_seconds=5,
        pitr_history_days=35,
        items_per_data_file=250,
        seed_requests=300,
        extra_env={
            "AIRFLOW__JIT_AUDIT__TASK_RETRIES": "0",
            "AIRFLOW__JIT_AUDIT__RETRY_DELAY_SECONDS": "5",
            "AIRFLOW__JIT_AUDIT__EXPORT_DEADLINE_MINUTES": "1440",  # test_deadline_live: its runs fall on yesterday, a date no other live test uses
            # The chat alert webhook (docs/alerts.md): a URI Connection pointing at our server.
            "AIRFLOW_CONN_JIT_AUDIT_ALERTS_WEBHOOK": webhook.url,
        },
        say=lambda text: print(f"[live stack] {text}", flush=True),
    )
    try:
        stack.start(timeout=240)
        yield stack
    finally:
        stack.stop()
        keep_logs(stack, ARTIFACTS / "live" / "logs")
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def live_aws(live_stack: Any) -> Callable[[str], Any]:
    """boto3 clients on the stack's emulator (dummy credentials)."""
    return aws_clients(live_stack)


@pytest.fixture(scope="session")
def seeded_items(live_aws: Callable[[str], Any]) -> list[dict[str, Any]]:
    """Every item of the seeded table, as DynamoDB returns them."""
    return table_items(live_aws)


