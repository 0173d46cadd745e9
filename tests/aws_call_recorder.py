"""Record every AWS API call the code makes, through botocore's own event hooks.

``record_aws_calls()`` wraps ``botocore.client.BaseClient.__init__`` so that every client created
while it is active (boto3's, the Amazon provider's ``AwsBaseHook``/``S3Hook``/``SnsHook``, and
aiobotocore's async clients, whose ``AioBaseClient`` shares that ``__init__``) gets two handlers
on its own event emitter:

* ``provide-client-params.*.*``: the operation and the parameters the caller passed (only the
  ones that decide which IAM action and resource a call needs: bucket, key, prefix, table...);
* ``after-call.*.*``: the HTTP status and error code of the answer, because a GetObject of a
  missing key needs ``s3:ListBucket`` as well to come back as 404 rather than 403.

Managed transfers (``upload_fileobj``, ``copy``) and paginators go through the same client, so
their low-level operations (PutObject or CreateMultipartUpload/UploadPart..., HeadObject,
CopyObject, ListObjectsV2 pages) are what is recorded. The handlers only read; they never change
a request.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from botocore.client import BaseClient

#: The request parameters that choose an IAM action's resource or condition keys.
KEY_PARAMS = (
    "Bucket", "Key", "Prefix", "CopySource", "TableName", "TableArn", "IndexName", "ExportArn",
    "S3Bucket", "S3Prefix", "TopicArn", "TargetArn", "KeyId", "ObjectLockMode", "ObjectLockRetainUntilDate",
)
_CONTEXT_KEY = "jit_audit_recorded_call"


@dataclass
class RecordedCall:
    """One API call: ``service`` is botocore's name (``s3``, ``dynamodb``, ``sns``), ``operation`` the API's."""

    service: str
    operation: str
    params: dict[str, Any]
    status: int | None = None
    error_code: str | None = None
    #: Selected response fields (the new export's ARN), for resources only known afterwards.
    response: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        shown = ", ".join(f"{name}={value!r}" for name, value in self.params.items() if name != "Delete")
        outcome = f" -> {self.status}" + (f" {self.error_code}" if self.error_code else "")
        return f"{self.service}:{self.operation}({shown}){outcome if self.status else ''}"


def _key_params(params: Mapping[str, Any]) -> dict[str, Any]:
    picked = {name: params[name] for name in KEY_PARAMS if name in params}
    if "Delete" in params:  # DeleteObjects: each key is its own s3:DeleteObject
        picked["Delete"] = [entry["Key"] for entry in params["Delete"].get("Objects", [])]
    return picked


class AwsCallRecorder:
    """The calls recorded so far; ``calls`` is appended to from any thread (transfers use several)."""

    def __init__(self) -> None:
        self.calls: list[RecordedCall] = []
        self.active = False
        self._lock = threading.Lock()

    def _on_params(self, params: Mapping[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        if not self.active:
            return
        call = RecordedCall(model.service_model.service_name, model.name, _key_params(params))
        context[_CONTEXT_KEY] = call
        with self._lock:
            self.calls.append(call)

    def _on_response(self, http_response: Any, parsed: Mapping[str, Any], context: dict[str, Any], **_: Any) -> None:
        call = context.get(_CONTEXT_KEY)
        if call is None:
            return
        call.status = getattr(http_response, "status_code", None)
        call.error_code = (parsed or {}).get("Error", {}).get("Code")
        description = (parsed or {}).get("ExportDescription")
        if isinstance(description, Mapping) and "ExportArn" in description:
            call.response["ExportArn"] = description["ExportArn"]

    def attach(self, client: BaseClient) -> None:
        events = client.meta.events
        events.register("provide-client-params.*.*", self._on_params, unique_id=f"jit-audit-params-{id(self)}")
        events.register("after-call.*.*", self._on_response, unique_id=f"jit-audit-response-{id(self)}")

    def services(self) -> set[str]:
        return {call.service for call in self.calls}

    def clear(self) -> None:
        with self._lock:
            self.calls.clear()


@contextmanager
def record_aws_calls() -> Iterator[AwsCallRecorder]:
    """Record the calls of every botocore client created inside the ``with`` block."""
    recorder = AwsCallRecorder()
    original_init = BaseClient.__init__

    def recording_init(client: BaseClient, *args: Any, **kwargs: Any) -> None:
        original_init(client, *args, **kwargs)
        recorder.attach(client)

    BaseClient.__init__ = recording_init  # type: ignore[method-assign]
    recorder.active = True
    try:
        yield recorder
    finally:
        recorder.active = False
        BaseClient.__init__ = original_init  # type: ignore[method-assign]
