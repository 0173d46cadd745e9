"""The Amazon provider's ``DynamoDBHook`` for this package's DynamoDB operator and sensors.

The hook is built when a task first asks for it, never when a DAG file is parsed: creating it pulls
in boto3, and the scheduler parses DAG files far more often than tasks run.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from airflow.providers.amazon.aws.hooks.dynamodb import DynamoDBHook


class DynamoDBHookMixin:
    """``self.hook``: a ``DynamoDBHook`` on the component's ``aws_conn_id``, created at run time."""

    aws_conn_id: str | None

    @cached_property
    def hook(self) -> DynamoDBHook:
        from airflow.providers.amazon.aws.hooks.dynamodb import DynamoDBHook

        return DynamoDBHook(aws_conn_id=self.aws_conn_id)
