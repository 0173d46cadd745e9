"""A worker process for tests/faults: runs export task bodies until the test SIGKILLs it.

``python worker.py <step> <json arguments>``; the environment (Airflow home, the AWS connection,
the jit_audit Variables) is the test session's. Each finished unit of work is printed as one JSON
line, as a task's XCom would record it.
"""

from __future__ import annotations

import json
import sys


def main() -> int:
    step, arguments = sys.argv[1], json.loads(sys.argv[2])
    plan = arguments["plan"]
    if step == "start_export":
        from faultlib import export_operator  # this script's folder is first on sys.path

        print(json.dumps({"export_arn": export_operator(plan).execute({})}), flush=True)
    elif step == "flatten":
        from jit_audit_airflow.export_tasks import flatten_data_files

        for group in arguments["groups"]:  # one mapped task after another on this worker
            print(json.dumps(flatten_data_files(plan, group)), flush=True)
    elif step == "publish":
        from jit_audit_airflow.export_tasks import publish_snapshot

        result = publish_snapshot(plan, arguments["export_arn"], arguments["parts"], run_id=arguments["run_id"])
        print(json.dumps(result), flush=True)
    else:
        raise SystemExit(f"unknown step {step!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
