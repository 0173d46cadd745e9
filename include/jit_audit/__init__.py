"""jit-audit-export's core: plain Python with no Airflow import.

Flattening, manifest reconciliation, key layout, export bookkeeping, retention rules and the
local AWS emulator live here so that the CLI, the Airflow tasks and the tests share one library.
"""
