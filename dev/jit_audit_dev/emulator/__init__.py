"""The local AWS emulator: moto's server, with DynamoDB exports, PITR, write history, S3 conditional
writes, a settable clock, fault injection and a request log that behave as AWS documents.

For local runs and tests only; what it adds to moto and why is in docs/emulator.md. Organised by
role, as moto organises a service:

* :mod:`.state` - settings, the clock, shared helpers;
* :mod:`.pitr` - the point-in-time recovery window;
* :mod:`.history` - the write history of every item (and the seeder's backdated writes);
* :mod:`.bulk` - bulk loads: millions of generated items in the write history, for benchmarks;
* :mod:`.exports` - full (point-in-time) and incremental table exports and their API handlers;
* :mod:`.s3` - atomic conditional writes;
* :mod:`.faults` - fault injection and the request log;
* :mod:`.server` - :func:`install` (patches moto in this process), :func:`serve`, :class:`EmulatorThread`.

Importing it imports no moto and patches nothing until :func:`install` (or :func:`serve` /
:class:`EmulatorThread`) runs.
"""

from jit_audit_dev.emulator.bulk import BULK_LOAD_PATH
from jit_audit_dev.emulator.faults import FAULTS_PATH, REQUESTS_PATH
from jit_audit_dev.emulator.history import WRITE_TIME_HEADER
from jit_audit_dev.emulator.server import EmulatorThread, install, serve
from jit_audit_dev.emulator.state import CLOCK_PATH, EmulatorSettings

__all__ = [
    "BULK_LOAD_PATH",
    "CLOCK_PATH",
    "FAULTS_PATH",
    "REQUESTS_PATH",
    "WRITE_TIME_HEADER",
    "EmulatorSettings",
    "EmulatorThread",
    "install",
    "serve",
]
