"""jit-audit-export's development tools: never shipped in the product's wheel or runtime image.

* :mod:`jit_audit_dev.emulator` - the local AWS emulator (moto's server, extended where moto falls
  short of AWS's documented behaviour; docs/emulator.md);
* :mod:`jit_audit_dev.seed` - a realistic ``jit_audit`` table and an export bucket;
* :mod:`jit_audit_dev.stack` - the local stack (emulator, seeded table, Airflow's components) that
  ``make demo``, ``make up`` and the live tests share;
* ``jit-audit-dev emulator`` / ``jit-audit-dev seed`` (:mod:`jit_audit_dev.cli`).
"""
