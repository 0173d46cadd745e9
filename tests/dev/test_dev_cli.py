"""``jit-audit-dev``: the dev package's console script serves the emulator and seeds it, as people run it;
``jit-audit`` (the product) has neither command."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
from emulatorlib import Emulator

BIN = Path(sys.executable).parent


def test_emulator_and_seed_commands() -> None:
    emulator = Emulator(command=(str(BIN / "jit-audit-dev"),), export_seconds=0.5)
    endpoint = emulator.endpoint_url
    try:
        env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "PATH": "/usr/bin:/bin"}
        seeded = subprocess.run([str(BIN / "jit-audit-dev"), "seed", "--endpoint-url", endpoint, "--region",
                                 "us-east-1", "--requests", "12", "--bucket", "dev-cli-bucket"],
                                capture_output=True, text=True, env=env, timeout=120)
        assert seeded.returncode == 0, seeded.stderr
        assert seeded.stdout.startswith("seeded ") and "of 12 requests into jit_audit" in seeded.stdout
        events = int(seeded.stdout.split()[1])
        aws = {"endpoint_url": endpoint, "region_name": "us-east-1", "aws_access_key_id": "testing",
               "aws_secret_access_key": "testing"}
        dynamodb = boto3.client("dynamodb", **aws)
        assert dynamodb.scan(TableName="jit_audit", Select="COUNT")["Count"] == events >= 24
        pitr = dynamodb.describe_continuous_backups(TableName="jit_audit")["ContinuousBackupsDescription"][
            "PointInTimeRecoveryDescription"]
        assert pitr["PointInTimeRecoveryStatus"] == "ENABLED"
        # The events span the 30 days (--days) before the start of yesterday, and the recovery window
        # reaches back to the first one, which was written at its event time.
        match = re.search(r"^events \(each written at its event time\) from (\S+) to (\S+)$", seeded.stdout, re.M)
        assert match, seeded.stdout
        first, last = (datetime.fromisoformat(text) for text in match.groups())
        end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)
        assert end - timedelta(days=30) <= first < last < end
        assert pitr["EarliestRestorableDateTime"] <= first
        assert boto3.client("s3", **aws).get_bucket_lifecycle_configuration(Bucket="dev-cli-bucket")["Rules"]
    finally:
        emulator.stop()
    assert emulator.process.returncode == 0, "the emulator must exit cleanly on SIGTERM"


def test_the_product_command_has_no_dev_tools() -> None:
    for command in ("emulator", "seed"):
        done = subprocess.run([str(BIN / "jit-audit"), command, "--help"], capture_output=True, text=True)
        assert done.returncode == 2 and "invalid choice" in done.stderr, (command, done.stderr)
