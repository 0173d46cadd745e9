"""What the ad-hoc DAG's form offers, from the core's one definition (``jit_audit.params``).

DAG files import only ``airflow.sdk`` and this package (``.importlinter``), so the form takes its
event types, id patterns and limits from here; the task validates the same values with the same
rules (``jit_audit.query.parse_query``).
"""

from __future__ import annotations

from jit_audit import params

__all__ = [
    "ACCOUNT_ID_FORM_PATTERN",
    "CHANNEL_ID_FORM_PATTERN",
    "DEFAULT_MAX_ITEMS",
    "DEFAULT_SEGMENTS",
    "EVENT_TYPES",
    "FORM_QUERY_MODES",
    "MAX_ITEMS",
    "MAX_KEY_BYTES",
    "MAX_PAGE_SIZE",
    "MAX_SEGMENTS",
]

EVENT_TYPES = list(params.EVENT_TYPES)
DEFAULT_MAX_ITEMS, MAX_ITEMS = params.DEFAULT_MAX_ITEMS, params.MAX_ITEMS
DEFAULT_SEGMENTS, MAX_SEGMENTS = params.DEFAULT_SEGMENTS, params.MAX_SEGMENTS
MAX_KEY_BYTES, MAX_PAGE_SIZE = params.MAX_KEY_BYTES, params.MAX_PAGE_SIZE

#: The form's JSON-schema patterns (anchored, as JSON schema's ``pattern`` is not).
ACCOUNT_ID_FORM_PATTERN = f"^{params.ACCOUNT_ID_PATTERN}$"
CHANNEL_ID_FORM_PATTERN = f"^{params.CHANNEL_ID_PATTERN}$"
#: The table's query modes, then the JIT API's request summaries (docs/jit-api.md).
FORM_QUERY_MODES = [*params.QUERY_MODES, "api_summary"]
