"""Hooks for services other than AWS (AWS goes through the Amazon provider's hooks)."""

from jit_audit_airflow.hooks.jit_api import JitApiHook

__all__ = ["JitApiHook"]
