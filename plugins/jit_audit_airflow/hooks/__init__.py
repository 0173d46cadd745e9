"""Hooks for services other than AWS; AWS goes through the Amazon provider's hooks (``dynamodb``: the
mixin that gives this package's DynamoDB operator and sensors the provider's ``DynamoDBHook``)."""

from jit_audit_airflow.hooks.jit_api import JitApiHook

__all__ = ["JitApiHook"]
