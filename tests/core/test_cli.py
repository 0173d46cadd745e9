"""``jit-audit`` as people run it: AWS configured the standard way, files in and out.

``query`` and ``scan`` use boto3 clients on the standard configuration chain, so what works for the
aws CLI and every boto3 tool works here: an endpoint whose path ends in ``/``, a profile in an AWS
config file with its own ``endpoint_url``, region, FIPS or dual-stack setting, and proxies from
``HTTP_PROXY``/``HTTPS_PROXY``. Each test runs the command in its own process, against the emulator,
with an environment built from scratch (no AWS settings of the machine leak in).

``flatten`` reads a file or stdin and writes stdout, a local file (gzip by the name) or an ``s3://``
object, and leaves nothing behind when the input is bad.
"""

from __future__ import annotations

import gzip
import http.client
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from jit_audit_dev.seed import ACCOUNTS, seed

TABLE = "jit_audit"
BUCKET = "jit-audit-cli"
SCAN = ["scan", "--event-type", "ERROR", "--event-type", "DENIED", "--segments", "3"]
ACCOUNT_QUERY = ["query", "--by", "account", "--id", ACCOUNTS[0], "--start", "2000-01-01T00:00:00Z",
                 "--end", "2100-01-01T00:00:00Z"]


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The machine's environment without any AWS or proxy setting, plus ``extra``."""
    env = {name: value for name, value in os.environ.items()
           if not name.startswith("AWS_") and name.lower() not in ("http_proxy", "https_proxy", "no_proxy")}
    env.update(AWS_CONFIG_FILE=str(tmp_path / "no-config"), AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "no-creds"),
               AWS_EC2_METADATA_DISABLED="true")
    env.update(extra)
    return env


def _run(args: list[str], env: dict[str, str], stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "jit_audit.cli", *args], env=env, input=stdin,
                          capture_output=True, timeout=120)


def _keys(env: dict[str, str]) -> dict[str, str]:
    return {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", **env}


@pytest.fixture()
def seeded(aws: Any) -> Any:
    seed(aws.resource("dynamodb"), TABLE, requests=40)
    return aws


@pytest.fixture()
def reference(seeded: Any, tmp_path: Path) -> dict[str, bytes]:
    """Each command's output through a plain ``--endpoint-url`` and ``--region``."""
    env = _keys(_env(tmp_path))
    out = {}
    for name, args in (("scan", SCAN), ("account", ACCOUNT_QUERY)):
        done = _run([*args, "--endpoint-url", seeded.endpoint_url, "--region", "us-east-1"], env)
        assert done.returncode == 0, done.stderr.decode()
        out[name] = b"".join(sorted(done.stdout.splitlines(keepends=True)))
        assert out[name].count(b"\n") > 3, f"too few {name} items to compare: {out[name]!r}"
    return out


def _sorted(stdout: bytes) -> bytes:
    return b"".join(sorted(stdout.splitlines(keepends=True)))


def test_an_endpoint_whose_path_ends_in_a_slash_works(seeded: Any, reference: dict[str, bytes],
                                                      tmp_path: Path) -> None:
    env = _keys(_env(tmp_path))
    for name, args in (("scan", SCAN), ("account", ACCOUNT_QUERY)):
        done = _run([*args, "--endpoint-url", f"{seeded.endpoint_url}/", "--region", "us-east-1"], env)
        assert done.returncode == 0, done.stderr.decode()
        assert _sorted(done.stdout) == reference[name], name


def _config(tmp_path: Path, profiles: dict[str, dict[str, str]]) -> dict[str, str]:
    config = tmp_path / "config"
    config.write_text("".join(f"[profile {name}]\n" + "".join(f"{key} = {value}\n" for key, value in settings.items())
                              for name, settings in profiles.items()))
    credentials = tmp_path / "credentials"
    credentials.write_text("".join(f"[{name}]\naws_access_key_id = testing\naws_secret_access_key = testing\n"
                                   for name in profiles))
    return _env(tmp_path, AWS_CONFIG_FILE=str(config), AWS_SHARED_CREDENTIALS_FILE=str(credentials))


def test_a_profile_gives_the_endpoint_region_and_keys_and_its_endpoint_wins_over_fips(seeded: Any, reference: dict[str, bytes],
                                                                  tmp_path: Path) -> None:
    """No --endpoint-url, no --region, no key in the environment: all of it from the profile.

    The profile also asks for FIPS endpoints and standard retries; its own endpoint_url wins over
    FIPS, as in every AWS SDK (which endpoint FIPS alone selects: the test below).
    """
    env = _config(tmp_path, {"emulator": {"region": "us-east-1", "endpoint_url": f"{seeded.endpoint_url}/",
                                          "use_fips_endpoint": "true", "retry_mode": "standard",
                                          "max_attempts": "2"}})
    env["AWS_PROFILE"] = "emulator"
    for name, args in (("scan", SCAN), ("account", ACCOUNT_QUERY)):
        done = _run(args, env)
        assert done.returncode == 0, done.stderr.decode()
        assert _sorted(done.stdout) == reference[name], name
    # The same settings for one service only (services = ... in the config file).
    config = tmp_path / "config"
    config.write_text(f"[profile emulator]\nregion = us-east-1\nservices = emulated\n"
                      f"[services emulated]\ndynamodb =\n  endpoint_url = {seeded.endpoint_url}\n")
    done = _run(SCAN, env)
    assert done.returncode == 0, done.stderr.decode()
    assert _sorted(done.stdout) == reference["scan"]


class _Proxy:
    """A forward proxy on loopback that records what it is asked for.

    Plain HTTP requests (absolute URIs) are forwarded to their target; ``CONNECT`` (HTTPS) is
    recorded and refused with 403, so a test sees which AWS host a client wanted without the internet.
    """

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_CONNECT(self) -> None:  # noqa: N802 (http.server's naming)
                proxy.seen.append(("CONNECT", self.path))
                self.send_error(403, "this test proxy does not tunnel")

            def _forward(self) -> None:
                target = urlsplit(self.path)
                proxy.seen.append((self.command, target.netloc))
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {name: value for name, value in self.headers.items()
                           if name.lower() not in ("proxy-connection", "connection", "keep-alive")}
                upstream = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
                upstream.request(self.command, target.path + (f"?{target.query}" if target.query else ""),
                                 body=body, headers=headers)
                response = upstream.getresponse()
                payload = response.read()
                self.send_response(response.status)
                for name, value in response.getheaders():
                    if name.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                upstream.close()

            do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = _forward  # noqa: N815

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def proxy() -> Iterator[_Proxy]:
    server = _Proxy()
    yield server
    server.stop()


def test_requests_go_through_an_http_proxy(seeded: Any, reference: dict[str, bytes], proxy: _Proxy,
                                           tmp_path: Path) -> None:
    env = _keys(_env(tmp_path, HTTP_PROXY=proxy.url, HTTPS_PROXY=proxy.url))
    done = _run([*SCAN, "--endpoint-url", seeded.endpoint_url, "--region", "us-east-1"], env)
    assert done.returncode == 0, done.stderr.decode()
    assert _sorted(done.stdout) == reference["scan"]
    emulator = urlsplit(seeded.endpoint_url).netloc
    assert ("POST", emulator) in proxy.seen, proxy.seen
    assert {host for _, host in proxy.seen} == {emulator}


@pytest.mark.parametrize(
    ("settings", "host"),
    [
        ({"use_fips_endpoint": "true"}, "dynamodb-fips.us-east-1.amazonaws.com:443"),
        ({"use_dualstack_endpoint": "true"}, "dynamodb.us-east-1.api.aws:443"),
        ({"use_fips_endpoint": "true", "use_dualstack_endpoint": "true"}, "dynamodb-fips.us-east-1.api.aws:443"),
    ],
    ids=["fips", "dualstack", "fips-dualstack"],
)
def test_fips_and_dual_stack_settings_choose_the_endpoint(settings: dict[str, str], host: str, proxy: _Proxy,
                                                          tmp_path: Path) -> None:
    """Which endpoint the profile's settings select, seen at the HTTPS proxy (which refuses the tunnel)."""
    env = _config(tmp_path, {"audit": {"region": "us-east-1", "max_attempts": "1", **settings}})
    env.update(AWS_PROFILE="audit", HTTPS_PROXY=proxy.url)
    done = _run(SCAN, env)
    assert done.returncode == 1, done.stderr.decode()
    assert ("CONNECT", host) in proxy.seen, proxy.seen
    stderr = done.stderr.decode()
    assert stderr.startswith("jit-audit scan: ") and "Traceback" not in stderr, stderr


def test_partial_credentials_are_a_one_line_error(tmp_path: Path) -> None:
    env = _env(tmp_path, AWS_ACCESS_KEY_ID="testing")  # no secret key
    done = _run([*SCAN, "--endpoint-url", "http://127.0.0.1:9", "--region", "us-east-1"], env)
    stderr = done.stderr.decode()
    assert done.returncode == 1 and "Traceback" not in stderr, stderr
    assert stderr.startswith("jit-audit scan: ") and "AWS_SECRET_ACCESS_KEY" in stderr, stderr


# --------------------------------------------------------------------------- flatten

EXPORT_LINES = (b'{"Item":{"request_id":{"S":"r1"},"n":{"N":"1.50"},"ok":{"BOOL":true}}}\n'
                b'{"Item":{"request_id":{"S":"r2"},"tags":{"SS":["a","b"]}}}\n')
FLAT = b'{"request_id":"r1","n":1.50,"ok":true}\n{"request_id":"r2","tags":["a","b"]}\n'


def test_flatten_reads_a_file_or_stdin_and_writes_stdout_or_a_file(tmp_path: Path) -> None:
    env = _env(tmp_path)
    plain, zipped = tmp_path / "export.json", tmp_path / "export.json.gz"
    plain.write_bytes(EXPORT_LINES)
    zipped.write_bytes(gzip.compress(EXPORT_LINES))
    for args, stdin in (([str(plain)], None), ([str(zipped)], None), ([], EXPORT_LINES), (["-"], EXPORT_LINES)):
        done = _run(["flatten", *args], env, stdin)
        assert (done.returncode, done.stdout, done.stderr) == (0, FLAT, b""), args
    out_gz, out_plain = tmp_path / "out" / "flat.jsonl.gz", tmp_path / "out" / "flat.jsonl"
    out_gz.parent.mkdir()
    assert _run(["flatten", str(zipped), "--out", str(out_gz)], env).returncode == 0
    assert gzip.decompress(out_gz.read_bytes()) == FLAT
    assert _run(["flatten", str(plain), "--out", str(out_plain)], env).returncode == 0
    assert out_plain.read_bytes() == FLAT
    assert sorted(path.name for path in out_gz.parent.iterdir()) == ["flat.jsonl", "flat.jsonl.gz"]


def test_a_local_flatten_does_not_import_boto3(tmp_path: Path) -> None:
    """boto3 and botocore cost a short flatten ~0.1 s of CPU and ~20 MiB (make bench): only an s3:// output loads them."""
    plain = tmp_path / "export.json"
    plain.write_bytes(EXPORT_LINES)
    probe = ("import sys; from jit_audit.cli import main; code = main(sys.argv[1:]); "
             "sys.stdout.flush(); print('boto3' in sys.modules, 'botocore' in sys.modules, code, file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", probe, "flatten", str(plain), "--out", str(tmp_path / "flat.jsonl.gz")],
                          env=_env(tmp_path), capture_output=True)
    assert done.stderr.decode().split() == ["False", "False", "0"], done.stderr
    assert gzip.decompress((tmp_path / "flat.jsonl.gz").read_bytes()) == FLAT


def test_flatten_leaves_nothing_behind_on_bad_input(tmp_path: Path) -> None:
    env = _env(tmp_path)
    bad = tmp_path / "bad.json"
    bad.write_bytes(EXPORT_LINES + b'{"Item":{"request_id":{"S":"r3"}}\n')
    target = tmp_path / "out"
    target.mkdir()
    (target / "flat.jsonl").write_bytes(b"an earlier, complete file\n")
    done = _run(["flatten", str(bad), "--out", str(target / "flat.jsonl")], env)
    assert done.returncode == 1
    assert done.stderr.decode().startswith(f"jit-audit flatten: {bad}, line 3: "), done.stderr
    assert (target / "flat.jsonl").read_bytes() == b"an earlier, complete file\n", "the earlier file was touched"
    assert [path.name for path in target.iterdir()] == ["flat.jsonl"], "a partial file was left behind"
    missing = _run(["flatten", str(tmp_path / "nope.json")], env)
    assert (missing.returncode, missing.stdout) == (2, b"")
    assert missing.stderr.decode() == f"jit-audit flatten: cannot open {tmp_path / 'nope.json'}: No such file or directory\n"


def test_flatten_to_s3_uploads_only_a_complete_file(aws: Any, tmp_path: Path) -> None:
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    env = _keys(_env(tmp_path))
    source = tmp_path / "export.json.gz"
    source.write_bytes(gzip.compress(EXPORT_LINES))
    where = ["--endpoint-url", aws.endpoint_url, "--region", "us-east-1"]
    done = _run(["flatten", str(source), "--out", f"s3://{BUCKET}/flat/part.jsonl.gz", *where], env)
    assert done.returncode == 0, done.stderr.decode()
    assert gzip.decompress(s3.get_object(Bucket=BUCKET, Key="flat/part.jsonl.gz")["Body"].read()) == FLAT
    bad = _run(["flatten", "--out", f"s3://{BUCKET}/flat/bad.jsonl", *where], env, b"not json\n")
    assert bad.returncode == 1
    assert "bad.jsonl" not in str(s3.list_objects_v2(Bucket=BUCKET).get("Contents"))
    usage = _run(["flatten", str(source), "--out", f"s3://{BUCKET}/", *where], env)
    assert usage.returncode == 2 and "must be s3://<bucket>/<key>" in usage.stderr.decode()


def test_flatten_output_errors_are_not_input_errors_and_modes_follow_the_umask(tmp_path: Path) -> None:
    env = _env(tmp_path)
    source = tmp_path / "export.json"
    source.write_bytes(EXPORT_LINES)
    nowhere = tmp_path / "missing" / "flat.jsonl"
    done = _run(["flatten", str(source), "--out", str(nowhere)], env)
    assert (done.returncode, done.stderr.decode()) == (2, f"jit-audit flatten: cannot write {nowhere}: "
                                                          "No such file or directory\n")
    # A new file gets what open() would give it under the umask; a replaced file keeps its mode.
    target = tmp_path / "flat.jsonl"
    done = subprocess.run(["sh", "-c", 'umask 077 && exec "$0" -m jit_audit.cli flatten "$1" --out "$2"',
                           sys.executable, str(source), str(target)], env=env, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode()
    assert target.stat().st_mode & 0o777 == 0o600
    target.chmod(0o640)
    assert _run(["flatten", str(source), "--out", str(target)], env).returncode == 0
    assert target.stat().st_mode & 0o777 == 0o640 and target.read_bytes() == FLAT


def test_flatten_to_a_bucket_that_is_not_there_is_a_one_line_error(aws: Any, tmp_path: Path) -> None:
    env = _keys(_env(tmp_path))
    source = tmp_path / "export.json"
    source.write_bytes(EXPORT_LINES)
    done = _run(["flatten", str(source), "--out", "s3://no-such-bucket-here/flat.jsonl", "--endpoint-url",
                 aws.endpoint_url, "--region", "us-east-1"], env)
    stderr = done.stderr.decode()
    assert done.returncode == 2 and "Traceback" not in stderr, stderr
    assert stderr.startswith("jit-audit flatten: cannot upload to s3://no-such-bucket-here/flat.jsonl: ") \
        and "NoSuchBucket" in stderr and stderr.count("\n") == 1, stderr


CHANGE_LINE = (b'{"Metadata":{"WriteTimestampMicros":{"N":"1764064800123456"}},"Keys":{"request_id":{"S":"r1"}},'
               b'"NewImage":{"request_id":{"S":"r1"},"event_type":{"S":"GRANTED"}}}\n')


def _summary(view: str | None, export_type: str = "INCREMENTAL_EXPORT") -> bytes:
    """A manifest-summary.json as DynamoDB writes it for an export of ``export_type`` and ``view``."""
    import json

    document: dict[str, Any] = {
        "version": "2023-08-01", "exportArn": "arn:aws:dynamodb:us-east-1:123456789012:table/jit_audit/export/0-a",
        "itemCount": 1, "manifestFilesS3Key": "AWSDynamoDB/0-a/manifest-files.json", "outputFormat": "DYNAMODB_JSON",
        "exportType": export_type,
    }
    if export_type == "INCREMENTAL_EXPORT":
        document.update(exportFromTime="2026-11-24T00:00:00Z", exportToTime="2026-11-25T00:00:00Z")
        if view is not None:
            document["outputView"] = view
    else:
        document["exportTime"] = "2026-11-25T00:00:00Z"
    return json.dumps(document).encode()


def _operation(done: subprocess.CompletedProcess[bytes]) -> str:
    import json

    assert (done.returncode, done.stderr) == (0, b""), done.stderr.decode()
    return str(json.loads(done.stdout)["operation"])


def test_flatten_takes_the_view_from_view_or_the_manifest_and_only_without_either_says_put(tmp_path: Path) -> None:
    """A line with only a new image is an INSERT in a NEW_AND_OLD_IMAGES export (an update has both), and
    an insert or an update (PUT) in a NEW_IMAGE one; unknown view: PUT."""
    env = _env(tmp_path)
    source = tmp_path / "changes.json"
    source.write_bytes(CHANGE_LINE)
    assert _operation(_run(["flatten", str(source)], env)) == "PUT"
    assert _operation(_run(["flatten", str(source), "--view", "NEW_AND_OLD_IMAGES"], env)) == "INSERT"
    assert _operation(_run(["flatten", "--view", "NEW_IMAGE"], env, CHANGE_LINE)) == "PUT"
    for view, operation in (("NEW_AND_OLD_IMAGES", "INSERT"), ("NEW_IMAGE", "PUT")):
        summary = tmp_path / f"{view}.json"
        summary.write_bytes(_summary(view))
        assert _operation(_run(["flatten", str(source), "--manifest", str(summary)], env)) == operation, view
    full = tmp_path / "full.json"
    full.write_bytes(_summary(None, "FULL_EXPORT"))
    assert _run(["flatten", "--manifest", str(full)], env, EXPORT_LINES).stdout == FLAT


def test_flatten_refuses_two_views_an_unknown_one_and_a_manifest_that_names_none(tmp_path: Path) -> None:
    env = _env(tmp_path)
    source = tmp_path / "changes.json"
    source.write_bytes(CHANGE_LINE)
    summary = tmp_path / "manifest-summary.json"
    summary.write_bytes(_summary("NEW_IMAGE"))
    both = _run(["flatten", str(source), "--view", "NEW_IMAGE", "--manifest", str(summary)], env)
    assert (both.returncode, both.stdout) == (2, b"") and b"not allowed with argument --view" in both.stderr
    unknown = _run(["flatten", str(source), "--view", "OLD_IMAGE"], env)
    assert (unknown.returncode, unknown.stdout) == (2, b"") and b"invalid choice: 'OLD_IMAGE'" in unknown.stderr
    summary.write_bytes(_summary(None))
    silent = _run(["flatten", str(source), "--manifest", str(summary)], env)
    assert (silent.returncode, silent.stdout) == (2, b"")
    assert silent.stderr.decode() == (f"jit-audit flatten: --manifest {summary}: outputView None is not one of "
                                      "NEW_IMAGE, NEW_AND_OLD_IMAGES; give --view instead\n")
    missing = _run(["flatten", str(source), "--manifest", str(tmp_path / "nope.json")], env)
    assert (missing.returncode, missing.stderr.decode()) == (
        2, f"jit-audit flatten: --manifest {tmp_path / 'nope.json'}: cannot open it: No such file or directory\n")
    summary.write_bytes(b"[]")
    assert _run(["flatten", str(source), "--manifest", str(summary)], env).returncode == 2


def test_flatten_reads_the_view_from_a_manifest_in_s3(aws: Any, tmp_path: Path) -> None:
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="exports/AWSDynamoDB/0-a/manifest-summary.json",
                  Body=_summary("NEW_AND_OLD_IMAGES"))
    env = _keys(_env(tmp_path))
    where = ["--endpoint-url", aws.endpoint_url, "--region", "us-east-1"]
    uri = f"s3://{BUCKET}/exports/AWSDynamoDB/0-a/manifest-summary.json"
    assert _operation(_run(["flatten", "--manifest", uri, *where], env, CHANGE_LINE)) == "INSERT"
    gone = _run(["flatten", "--manifest", uri + ".missing", *where], env, CHANGE_LINE)
    assert (gone.returncode, gone.stdout) == (2, b"")
    assert gone.stderr.decode().startswith(f"jit-audit flatten: --manifest {uri}.missing: cannot read it (")
    assert b"NoSuchKey" in gone.stderr and gone.stderr.count(b"\n") == 1
