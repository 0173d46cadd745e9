"""jit-audit-export's core: plain Python with no Airflow import.

Flattening, manifest reconciliation, the key layout, exports, staging and publishing, the
publication ledger and its verification, ad-hoc queries and the retention rules live here, so that
the CLI, the Airflow tasks and the tests share one library. (The local AWS emulator and the seeder
are dev tools: the separate ``jit_audit_dev`` package.)
"""
