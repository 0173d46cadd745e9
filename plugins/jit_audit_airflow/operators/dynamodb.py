"""Start a DynamoDB point-in-time export to S3, exactly once per snapshot.

Unlike the provider's ``DynamoDBToS3Operator`` this returns the export ARN, never blocks a worker
while DynamoDB works (a sensor waits, deferred), and a retry or re-run finds the export it already
started instead of paying for a second one.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from jit_audit.exports import as_export_time, find_or_start_export
from jit_audit_airflow.hooks.dynamodb import DynamoDBHookMixin


class DynamoDBPointInTimeExportOperator(DynamoDBHookMixin, BaseOperator):
    """Export ``table_name`` as of ``export_time`` to ``s3://s3_bucket/s3_prefix`` (DYNAMODB_JSON).

    :param table_name: DynamoDB table
    :param export_time: the point in time to export (datetime or ISO-8601 text)
    :param s3_bucket: destination bucket
    :param s3_prefix: destination prefix; DynamoDB writes ``<prefix>/AWSDynamoDB/<export id>/``
    :param s3_bucket_owner: account id owning the bucket, if another account
    :param kms_key_id: when set, the export is written with SSE-KMS under this key
    :param export_from_time: when set, an incremental export of the changes in
        [export_from_time, export_time) (NEW_AND_OLD_IMAGES) instead of a full export
    :param aws_conn_id: Airflow connection for AWS
    :return: the export ARN (XCom)
    """

    template_fields: Sequence[str] = (
        "table_name",
        "export_time",
        "export_from_time",
        "s3_bucket",
        "s3_prefix",
        "s3_bucket_owner",
        "kms_key_id",
        "aws_conn_id",
    )

    def __init__(
        self,
        *,
        table_name: str,
        export_time: datetime | str,
        s3_bucket: str,
        s3_prefix: str,
        s3_bucket_owner: str | None = None,
        kms_key_id: str | None = None,
        export_from_time: datetime | str | None = None,
        aws_conn_id: str | None = "aws_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.table_name = table_name
        self.export_time = export_time
        self.export_from_time = export_from_time
        self.s3_bucket = s3_bucket
        self.s3_prefix = s3_prefix
        self.s3_bucket_owner = s3_bucket_owner
        self.kms_key_id = kms_key_id
        self.aws_conn_id = aws_conn_id

    def execute(self, context: Any) -> str:
        export_time = as_export_time(self.export_time)
        client = self.hook.client
        try:
            started = find_or_start_export(
                client,
                table_name=self.table_name,
                export_time=export_time,
                bucket=self.s3_bucket,
                s3_prefix=self.s3_prefix,
                bucket_owner=self.s3_bucket_owner or None,
                kms_key_id=self.kms_key_id or None,
                window_start=self.export_from_time or None,
            )
        except client.exceptions.PointInTimeRecoveryUnavailableException as error:
            raise AirflowFailException(
                f"Point-in-time recovery is not enabled on {self.table_name}, so it cannot be exported: {error}"
            ) from error
        except client.exceptions.InvalidExportTimeException as error:
            raise AirflowFailException(f"DynamoDB refused export time {export_time.isoformat()}: {error}") from error
        verb = "Reusing" if started.reused else "Started"
        what = f"changes since {self.export_from_time}" if self.export_from_time else "full export"
        self.log.info("%s %s %s (%s) of %s as of %s", verb, what, started.export_arn, started.status,
                      self.table_name, export_time.isoformat())
        return started.export_arn
