"""Trigger that waits for a DynamoDB export on the triggerer, holding no worker slot."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

if TYPE_CHECKING:  # boto3 loads on the triggerer when the trigger runs, not when a DAG is parsed
    from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook


class DynamoDBExportTrigger(BaseTrigger):
    """Poll DescribeExport until the export leaves IN_PROGRESS.

    Checks back off from one second up to ``poll_interval``: small exports finish in seconds,
    large ones take many minutes, and neither should wait a full interval past completion.

    Fires one event: ``{"status": "COMPLETED" | "FAILED" | "error", "export_arn": ..., ...}``; the
    sensor decides what each means, so the trigger stays a plain observer.

    :param export_arn: the export to watch
    :param poll_interval: the longest wait, in seconds, between DescribeExport calls
    :param aws_conn_id: Airflow connection for AWS
    :param region_name: AWS region, if not the connection's
    """

    def __init__(
        self,
        *,
        export_arn: str,
        poll_interval: float = 30,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
    ) -> None:
        super().__init__()
        self.export_arn = export_arn
        self.poll_interval = poll_interval
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{self.__class__.__module__}.{self.__class__.__qualname__}",
            {
                "export_arn": self.export_arn,
                "poll_interval": self.poll_interval,
                "aws_conn_id": self.aws_conn_id,
                "region_name": self.region_name,
            },
        )

    def hook(self) -> AwsBaseHook:
        from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

        return AwsBaseHook(aws_conn_id=self.aws_conn_id, region_name=self.region_name, client_type="dynamodb")

    async def run(self) -> AsyncIterator[TriggerEvent]:
        try:
            delay = min(1.0, self.poll_interval)
            async with await self.hook().get_async_conn() as client:
                while True:
                    response = await client.describe_export(ExportArn=self.export_arn)
                    description = response["ExportDescription"]
                    status = description["ExportStatus"]
                    if status != "IN_PROGRESS":
                        yield TriggerEvent(
                            {
                                "status": status,
                                "export_arn": self.export_arn,
                                "item_count": description.get("ItemCount"),
                                "failure_code": description.get("FailureCode"),
                                "failure_message": description.get("FailureMessage"),
                            }
                        )
                        return
                    self.log.info("Export %s is still IN_PROGRESS; next check in %.0fs", self.export_arn, delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, self.poll_interval)
        except Exception as error:  # noqa: BLE001 - reported to the sensor, which fails the task
            yield TriggerEvent({"status": "error", "export_arn": self.export_arn, "message": str(error)})
