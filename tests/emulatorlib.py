"""The local AWS emulator as a process for the tests: ``jit-audit-dev emulator`` on a free loopback port.

A plain module (not conftest.py), so any test module can import it whatever pytest collects.
"""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from typing import Any

import boto3

from jit_audit_dev.stack import free_port


def emulator_client(endpoint_url: str, service: str, region: str = "us-east-1") -> Any:
    """A boto3 client of the emulator at ``endpoint_url``, with the dummy keys it takes."""
    return boto3.client(service, endpoint_url=endpoint_url, region_name=region,
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def wait_for_export(ddb: Any, export_arn: str, timeout: float = 10.0) -> dict[str, Any]:
    """DescribeExport until the export is no longer IN_PROGRESS; its description."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        description: dict[str, Any] = ddb.describe_export(ExportArn=export_arn)["ExportDescription"]
        if description["ExportStatus"] != "IN_PROGRESS":
            return description
        time.sleep(0.05)
    raise AssertionError(f"export {export_arn} still IN_PROGRESS after {timeout}s")


class Emulator:
    """A ``jit-audit-dev emulator`` process on a free loopback port (``command``: how to run the script)."""

    def __init__(self, command: tuple[str, ...] = (sys.executable, "-m", "jit_audit_dev.cli"), **options: object) -> None:
        self.port = free_port()
        self.endpoint_url = f"http://127.0.0.1:{self.port}"
        args = [*command, "emulator", "--port", str(self.port)]
        for name, value in options.items():
            args += [f"--{name.replace('_', '-')}", str(value)]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{self.endpoint_url}/moto-api/", timeout=1)
                return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"emulator did not start: {self.process.stderr.read().decode()}") from None  # type: ignore[union-attr]
                time.sleep(0.1)

    def reset(self) -> None:
        """Forget every resource (moto's reset endpoint), so tests start from an empty account."""
        request = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST")
        urllib.request.urlopen(request, timeout=10)

    def client(self, service: str):
        import boto3

        return boto3.client(service, endpoint_url=self.endpoint_url, region_name="us-east-1")

    def resource(self, service: str):
        import boto3

        return boto3.resource(service, endpoint_url=self.endpoint_url, region_name="us-east-1")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
