"""Airflow 3 components for jit-audit-export: operators, sensors, triggers and notifiers.

The core logic lives in the plain-Python package ``jit_audit``; this package only adapts it to
Airflow (hooks, deferral, XCom, assets).
"""
