"""`make up`: the whole stack on this machine for a person, until Ctrl-C.

Starts the local AWS emulator (free loopback port), seeds the jit_audit table and the export
bucket, migrates a SQLite metadata DB, then runs Airflow's four components on 127.0.0.1
(jit_audit_dev.stack.Stack, the same stack the live tests start). With ``--executor celery``
(``make up EXECUTOR=celery``): PostgreSQL, Redis and ``--workers`` Celery workers as well, the
topology of docker-compose.yaml. Ctrl-C (or SIGTERM) stops every process it started, children included.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any

from jit_audit_dev.stack import BUCKET, REPO, TABLE, Stack, StackError, port_is_free


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=8080, help="Airflow UI/API port on 127.0.0.1 (default 8080)")
    parser.add_argument("--workdir", type=Path, default=REPO / ".up",
                        help="AIRFLOW_HOME, SQLite DB and logs (default .up/, emptied at start)")
    parser.add_argument("--export-seconds", type=float, default=10, help="how long an emulated export runs")
    parser.add_argument("--executor", choices=("local", "celery"), default="local",
                        help="local: LocalExecutor on SQLite (default); celery: CeleryExecutor with "
                             "PostgreSQL and Redis (Debian's packages) and --workers workers")
    parser.add_argument("--workers", type=int, default=2, help="Celery workers (--executor celery; default 2)")
    args = parser.parse_args()
    if not port_is_free(args.port):
        print(f"port {args.port} on 127.0.0.1 is in use; pass --port (make up PORT=...)", file=sys.stderr)
        return 1

    def say(text: str) -> None:
        print(f"== {text}", flush=True)

    def terminate(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with SIGINT ignored
    shutil.rmtree(args.workdir, ignore_errors=True)
    stack = Stack(args.workdir, api_port=args.port, export_seconds=args.export_seconds,
                  executor=args.executor, workers=args.workers, say=say)
    try:
        stack.start()
        stack.api("PATCH", "/api/v2/dags/jit_audit_adhoc", {"is_paused": False})
        print(
            f"\nAirflow UI      {stack.api_url}/\n"
            f"user            {stack.username}\n"
            f"password        {stack.password}\n"
            f"AWS emulator    {stack.endpoint_url}  (bucket {BUCKET}, table {TABLE}; dummy keys 'testing')\n"
            + (f"Celery workers  {', '.join(stack.worker_names)}\n" if stack.workers else "")
            + f"logs            {stack.logs}/\n"
            "jit_audit_adhoc is unpaused (trigger it from its page); jit_audit_export is paused: unpause it or\n"
            "start a backfill from its page.\n\nPress Ctrl-C to stop everything.",
            flush=True,
        )
        while True:
            time.sleep(1)
            stack.check_alive()
    except KeyboardInterrupt:
        say("stopping")
        return 0
    except StackError as error:
        print(f"\n{error}", file=sys.stderr)
        return 1
    finally:
        # A second Ctrl-C or SIGTERM must not cut the cleanup short.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stack.stop()
        print("stopped every process it started", flush=True)


if __name__ == "__main__":
    sys.exit(main())
