"""What users may ask for: the event types, the query modes, the id patterns and the limits.

One definition for the core's validation (``jit_audit.query``, ``jit_audit.jit_api``), the CLI and
the ad-hoc DAG's form (through ``jit_audit_airflow.form``), and the error that names a bad parameter.
"""

from __future__ import annotations

import re

#: The JIT lifecycle's event types, in lifecycle order (the table's ``event_type``).
EVENT_TYPES = ("REQUESTED", "APPROVED", "DENIED", "GRANTED", "REVOKED", "EXPIRED", "ERROR")
#: Ad-hoc queries on the table: by request (the table), account or channel (a GSI), or a scan by event type.
QUERY_MODES = ("request", "account", "channel", "event_type")
#: An AWS account id: exactly 12 digits.
ACCOUNT_ID_PATTERN = "[0-9]{12}"
#: A Mattermost channel id as the JIT service stores it.
CHANNEL_ID_PATTERN = "[A-Za-z0-9_-]{1,64}"
#: DynamoDB's limit for a partition key value.
MAX_KEY_BYTES = 2048
DEFAULT_MAX_ITEMS = 1_000_000
MAX_ITEMS = 100_000_000
DEFAULT_SEGMENTS = 4
MAX_SEGMENTS = 64
MAX_PAGE_SIZE = 10_000

ACCOUNT_ID = re.compile(rf"{ACCOUNT_ID_PATTERN}\Z")
CHANNEL_ID = re.compile(rf"{CHANNEL_ID_PATTERN}\Z")


class QueryParamError(ValueError):
    """A parameter the query cannot use; says which one and why."""

    def __init__(self, field_name: str, problem: str) -> None:
        super().__init__(f"{field_name}: {problem}")
        self.field = field_name
        self.problem = problem
