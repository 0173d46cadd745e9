"""The IAM policies in iam/ against the AWS calls the code really makes, recorded end to end.

``tests/deploy/test_iam_policies.py`` checks the policies against a static table of the calls found in
the source. This module runs each role's real flows against the emulator with every botocore
client recorded (``aws_call_recorder``), turns each recorded call into the IAM actions and
resources it needs, and fails when

* a recorded call needs something its role's policy does not allow, or
* a statement of the policy grants an action that no recorded call needed, unless that action is
  in ``NOT_EXERCISED`` with the reason the flows cannot exercise it.

The flows, per policy:

* export: the DAG ``jit_audit_export`` through ``dag.test()`` (PITR window, export, the triggerer's
  DescribeExport, flatten, publish, the retention check with versioning and a maximum retention
  required), then the same ``check_retention`` task body with Object Lock required (the emulator
  refuses the publish step's CopyObject into a bucket with a default Object Lock retention, so the
  run itself cannot have one);
* ad hoc: the DAG ``jit_audit_adhoc`` in each AWS ``query_by`` mode (request, account, channel,
  event_type);
* alerts: the SNS failure notifier publishing to a topic;
* auditor: ``jit-audit verify`` and ``jit-audit check-retention``, in process.

The placeholders of the policies (``BUCKET``, ``PREFIX``...) are replaced by the emulator's names
before evaluating, with the evaluator of ``test_iam_policies``.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from aws_call_recorder import RecordedCall, record_aws_calls
from test_iam_policies import (
    ADHOC_POLICY,
    ALERTS_POLICY,
    AUDITOR_POLICY,
    EXPORT_POLICY,
    POLICIES,
    TOKENS,
    allowed,
    as_list,
    load,
)

TESTS = Path(__file__).resolve().parents[1]


def sibling(relative: str) -> ModuleType:
    """Another test module, by path, under the name pytest gives it (so it is imported only once).

    The tests/ tree has no ``__init__.py``: pytest imports ``tests/dags/test_export_dag_e2e.py`` as
    ``test_export_dag_e2e``. Reusing its helpers and fixtures keeps one copy of each setup.
    """
    path = TESTS / relative
    module = sys.modules.get(path.stem)
    if module is not None and Path(module.__file__ or "").resolve() == path:
        return module
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    return module


export_e2e = sibling("dags/test_export_dag_e2e.py")
adhoc_e2e = sibling("dags/test_adhoc_dag_e2e.py")
alerts_tests = sibling("airflow/test_alerts.py")

# The fixtures those modules set their flows up with, used here as they are.
seeded = export_e2e.seeded
table = adhoc_e2e.table
sns_queue = alerts_tests.sns_queue

assert export_e2e.BUCKET == adhoc_e2e.BUCKET == alerts_tests.BUCKET
BUCKET, PREFIX, TABLE = export_e2e.BUCKET, export_e2e.PREFIX, "jit_audit"
ACCOUNT_ID, REGION = "123456789012", "us-east-1"  # moto's account; the emulator's region
TOPIC = "jit-audit-alerts"  # alerts_tests.sns_queue's topic
TOKEN_VALUES = {
    "REGION": REGION, "ACCOUNT_ID": ACCOUNT_ID, "TABLE": TABLE, "BUCKET": BUCKET, "PREFIX": PREFIX,
    "ALERTS_TOPIC": TOPIC, "KMS_KEY_ID": "no-kms-key-in-the-emulated-flows",
    # The ledger signing key's id: moto makes up a new one per key, so each flow sets it (ledger_key).
    "LEDGER_KEY_ID": "set-by-the-ledger-key-fixture",
}
assert set(TOKEN_VALUES) == TOKENS

# ------------------------------------------------------------------ what a recorded call needs

#: Actions a policy may grant without a recorded call using them, and why no flow can.
KMS_BY_S3 = ("S3 calls KMS for SSE-KMS objects on the caller's behalf, only with jit_audit_export_kms_key_id; "
             "no client call to record (scope checked in test_iam_policies.test_kms_only_through_s3_for_our_objects)")
ABORT_ON_FAILURE = ("boto3's managed transfer aborts a multipart upload only when one fails; parts above 8 MB go "
                    "multipart, and a deliberate failure mid-upload is not a flow")
#: Per policy, "Sid: action" -> why no flow can use it.
NOT_EXERCISED: dict[Path, dict[str, str]] = {
    EXPORT_POLICY: {"SseKmsOnlyIfJitAuditExportKmsKeyIdIsSet: kms:GenerateDataKey": KMS_BY_S3,
                    "SseKmsOnlyIfJitAuditExportKmsKeyIdIsSet: kms:Decrypt": KMS_BY_S3,
                    "StageAndPublishJsonLines: s3:AbortMultipartUpload": ABORT_ON_FAILURE},
    ADHOC_POLICY: {"SseKmsOnlyIfJitAuditExportKmsKeyIdIsSet: kms:GenerateDataKey": KMS_BY_S3,
                   "SseKmsOnlyIfJitAuditExportKmsKeyIdIsSet: kms:Decrypt": KMS_BY_S3,
                   "WriteResultsUnderAdhoc: s3:AbortMultipartUpload": ABORT_ON_FAILURE},
    AUDITOR_POLICY: {"DecryptSseKmsPartsOnlyIfJitAuditExportKmsKeyIdIsSet: kms:Decrypt": KMS_BY_S3},
    ALERTS_POLICY: {},
}

#: S3 operations -> the action on the object (or on the bucket, for configuration reads).
S3_OBJECT_ACTIONS = {
    "GetObject": "s3:GetObject", "HeadObject": "s3:GetObject",
    "PutObject": "s3:PutObject", "CreateMultipartUpload": "s3:PutObject", "UploadPart": "s3:PutObject",
    "CompleteMultipartUpload": "s3:PutObject", "AbortMultipartUpload": "s3:AbortMultipartUpload",
    "DeleteObject": "s3:DeleteObject", "PutObjectAcl": "s3:PutObjectAcl",
}
#: KMS operations on the ledger's signing key.
KMS_KEY_OPERATIONS = {"Sign": "kms:Sign", "GetPublicKey": "kms:GetPublicKey"}
S3_BUCKET_ACTIONS = {
    "GetBucketLifecycleConfiguration": "s3:GetLifecycleConfiguration",
    "GetBucketVersioning": "s3:GetBucketVersioning",
    "GetObjectLockConfiguration": "s3:GetBucketObjectLockConfiguration",
    "GetBucketEncryption": "s3:GetEncryptionConfiguration",
    "GetPublicAccessBlock": "s3:GetBucketPublicAccessBlock",
}
#: DynamoDB operations whose IAM action has the operation's name, on the table (or index).
DYNAMODB_TABLE_OPERATIONS = {"DescribeTable", "DescribeContinuousBackups", "ExportTableToPointInTime", "Query", "Scan"}
#: DynamoDB writes a point-in-time export to S3 with the caller's permissions (AWS's export guide).
EXPORT_WRITES = ("s3:PutObject", "s3:PutObjectAcl", "s3:AbortMultipartUpload")


@dataclass(frozen=True)
class Need:
    """One IAM authorisation a recorded call needs: an action, on a resource, with condition keys."""

    action: str
    resource: str
    context: tuple[tuple[str, str], ...] = ()
    call: str = field(default="", compare=False)

    def __str__(self) -> str:
        where = f" with {dict(self.context)}" if self.context else ""
        return f"{self.action} on {self.resource}{where} (for {self.call})"


def _object(bucket: str, key: str) -> str:
    return f"arn:aws:s3:::{bucket}/{key}"


def _table_arn(params: Mapping[str, Any]) -> str:
    if "TableArn" in params:
        return str(params["TableArn"])
    return f"arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/{params['TableName']}"


def _copy_source(source: Any) -> tuple[str, str]:
    if isinstance(source, Mapping):
        return source["Bucket"], source["Key"]
    bucket, _, key = str(source).lstrip("/").partition("/")
    return bucket, key


def needs_of(call: RecordedCall) -> list[Need]:
    """The IAM authorisations one call needs; an operation not known here fails the test."""
    p, op, label = call.params, call.operation, str(call)

    def need(action: str, resource: str, **context: str) -> Need:
        return Need(action, resource, tuple(sorted(context.items())), label)

    if call.service == "s3":
        bucket_arn = f"arn:aws:s3:::{p['Bucket']}"
        if op in S3_OBJECT_ACTIONS:
            needs = [need(S3_OBJECT_ACTIONS[op], _object(p["Bucket"], p["Key"]))]
            if op == "PutObject" and ("ObjectLockMode" in p or "ObjectLockRetainUntilDate" in p):
                needs.append(need("s3:PutObjectRetention", _object(p["Bucket"], p["Key"])))
            if op in ("GetObject", "HeadObject") and call.status == 404:
                # S3 answers a missing key with 404 only to callers allowed s3:ListBucket on the
                # bucket (no s3:prefix in that check), otherwise 403 AccessDenied.
                needs.append(need("s3:ListBucket", bucket_arn))
            return needs
        if op in ("CopyObject", "UploadPartCopy"):
            return [need("s3:GetObject", _object(*_copy_source(p["CopySource"]))),
                    need("s3:PutObject", _object(p["Bucket"], p["Key"]))]
        if op in ("ListObjectsV2", "ListObjects"):
            context = {"s3:prefix": p["Prefix"]} if "Prefix" in p else {}
            return [need("s3:ListBucket", bucket_arn, **context)]
        if op == "DeleteObjects":
            return [need("s3:DeleteObject", _object(p["Bucket"], key)) for key in p["Delete"]]
        if op in S3_BUCKET_ACTIONS:
            return [need(S3_BUCKET_ACTIONS[op], bucket_arn)]
    if call.service == "dynamodb":
        if op in DYNAMODB_TABLE_OPERATIONS:
            resource = _table_arn(p) + (f"/index/{p['IndexName']}" if "IndexName" in p else "")
            needs = [need(f"dynamodb:{op}", resource)]
            if op == "ExportTableToPointInTime":
                export_id = call.response.get("ExportArn", "/export/unknown").rsplit("/", 1)[-1]
                written = f"{p['S3Prefix'].strip('/')}/AWSDynamoDB/{export_id}/manifest-summary.json"
                needs += [need(action, _object(p["S3Bucket"], written)) for action in EXPORT_WRITES]
            return needs
        if op == "DescribeExport":
            return [need("dynamodb:DescribeExport", p["ExportArn"])]
        if op == "ListExports":  # no resource-level permissions
            return [need("dynamodb:ListExports", "*")]
    if call.service == "kms" and op in KMS_KEY_OPERATIONS:
        key_id = str(p["KeyId"])
        key_arn = key_id if key_id.startswith("arn:") else f"arn:aws:kms:{REGION}:{ACCOUNT_ID}:key/{key_id}"
        return [need(KMS_KEY_OPERATIONS[op], key_arn)]
    if call.service == "sns" and op == "Publish":
        return [need("sns:Publish", p.get("TopicArn") or p["TargetArn"])]
    raise AssertionError(f"no IAM mapping for {label}: add the actions it needs to needs_of()")


# ------------------------------------------------------------------------------------ evaluator


def concrete(policy: Mapping[str, Any]) -> dict[str, Any]:
    """The policy with its placeholders replaced by the emulator's names."""
    pattern = re.compile(r"\b(" + "|".join(sorted(TOKEN_VALUES, key=len, reverse=True)) + r")\b")
    return json.loads(pattern.sub(lambda match: TOKEN_VALUES[match[1]], json.dumps(policy)))


@dataclass
class PolicyAudit:
    denied: list[str]
    unused: list[str]
    stale_exemptions: list[str]

    @property
    def problems(self) -> list[str]:
        return ([f"not allowed: {item}" for item in self.denied]
                + [f"granted but never used: {item}" for item in self.unused]
                + [f"listed as not exercised but used: {item}" for item in self.stale_exemptions])


def audit(policy: Mapping[str, Any], calls: Iterable[RecordedCall], not_exercised: Mapping[str, str]) -> PolicyAudit:
    """Every recorded call against ``policy``; every (statement, action) against the recorded needs."""
    policy = concrete(policy)
    needs = list(dict.fromkeys(need for call in calls for need in needs_of(call)))
    denied = [str(need) for need in needs if not allowed(policy, need.action, need.resource, dict(need.context))]
    used, unused = set(), []
    for statement in policy["Statement"]:
        alone = {"Statement": [statement]}
        for action in as_list(statement["Action"]):
            grant = f"{statement['Sid']}: {action}"
            if any(need.action == action and allowed(alone, action, need.resource, dict(need.context)) for need in needs):
                used.add(grant)
            elif grant not in not_exercised:
                unused.append(grant)
    return PolicyAudit(denied, unused, sorted(set(not_exercised) & used))


def assert_policy_fits(path: Path, calls: list[RecordedCall]) -> None:
    assert calls, f"nothing was recorded for {path.name}: the flow made no AWS call?"
    result = audit(load(path), calls, NOT_EXERCISED[path])
    assert not result.problems, f"{path.name}:\n" + "\n".join(result.problems)


# ------------------------------------------------------------------- the evaluator can fail


def recorded(service: str, operation: str, status: int = 200, **params: Any) -> RecordedCall:
    return RecordedCall(service, operation, params, status)


@pytest.fixture()
def ledger_key(aws, monkeypatch: pytest.MonkeyPatch) -> str:
    """An asymmetric KMS key signing the ledger (jit_audit_ledger_signing_key_id), as policies name it."""
    arn = aws.client("kms").create_key(KeyUsage="SIGN_VERIFY", KeySpec="ECC_NIST_P256")["KeyMetadata"]["Arn"]
    monkeypatch.setitem(TOKEN_VALUES, "LEDGER_KEY_ID", arn.rsplit("/", 1)[1])
    monkeypatch.setenv("AIRFLOW_VAR_JIT_AUDIT_LEDGER_SIGNING_KEY_ID", arn)
    return arn


def test_every_policy_has_its_exemptions_reviewed() -> None:
    assert set(NOT_EXERCISED) == set(POLICIES)
    for path, exempt in NOT_EXERCISED.items():
        granted = {f"{statement['Sid']}: {action}" for statement in load(path)["Statement"]
                   for action in as_list(statement["Action"])}
        assert set(exempt) <= granted, f"{path.name}: exemptions for grants it does not make"
        assert all(len(reason) > 40 for reason in exempt.values()), "each exemption says why"


def test_a_call_the_policy_does_not_allow_and_an_unused_grant_are_both_reported() -> None:
    calls = [
        recorded("dynamodb", "DescribeTable", TableName=TABLE),
        recorded("dynamodb", "Scan", TableName=TABLE),  # the export role never reads items
        recorded("s3", "GetObject", Bucket=BUCKET, Key=f"{PREFIX}/adhoc/run/_manifest.json"),  # outside its prefixes
    ]
    result = audit(load(EXPORT_POLICY), calls, NOT_EXERCISED[EXPORT_POLICY])
    assert result.denied == [
        f"dynamodb:Scan on arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/{TABLE} (for {calls[1]})",
        f"s3:GetObject on arn:aws:s3:::{BUCKET}/{PREFIX}/adhoc/run/_manifest.json (for {calls[2]})",
    ]
    assert "ReadTableAndStartExports: dynamodb:ExportTableToPointInTime" in result.unused
    assert "CheckRetention: s3:GetBucketVersioning" in result.unused
    assert "ReadTableAndStartExports: dynamodb:DescribeTable" not in result.unused
    assert "StageAndPublishJsonLines: s3:AbortMultipartUpload" not in result.unused, "exempted, with a reason"
    assert "DynamoDBWritesTheRawExport: s3:AbortMultipartUpload" in result.unused, "exempted in one statement only"
    with pytest.raises(AssertionError, match="not allowed: dynamodb:Scan"):
        assert_policy_fits(EXPORT_POLICY, calls)


def test_a_missing_key_needs_list_bucket_without_a_prefix_condition() -> None:
    """A GetObject answered 404 needs s3:ListBucket on the bucket: a prefix-conditioned grant is not enough."""
    missing = recorded("s3", "GetObject", 404, Bucket=BUCKET,
                       Key=f"{PREFIX}/jsonl/table={TABLE}/snapshot_date=2026-11-25/_manifest.json")
    missing.error_code = "NoSuchKey"
    only_prefixed = {"Version": "2012-10-17", "Statement": [
        {"Sid": "Objects", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::BUCKET/PREFIX/jsonl/*"},
        {"Sid": "List", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::BUCKET",
         "Condition": {"StringLike": {"s3:prefix": "PREFIX/jsonl/*"}}},
    ]}
    result = audit(only_prefixed, [missing], {})
    assert result.denied == [f"s3:ListBucket on arn:aws:s3:::{BUCKET} (for {missing})"]
    assert result.unused == ["List: s3:ListBucket"], "a prefixed grant does not serve the 404 check"
    unconditional = {**only_prefixed, "Statement": [only_prefixed["Statement"][0],
                                                    {**only_prefixed["Statement"][1], "Condition": {}}]}
    assert audit(unconditional, [missing], {}).problems == []


def test_an_exemption_that_a_flow_does_use_is_reported_stale() -> None:
    abort = recorded("s3", "AbortMultipartUpload", Bucket=BUCKET, Key=f"{PREFIX}/jsonl/_staging/x")
    assert audit(load(EXPORT_POLICY), [abort], NOT_EXERCISED[EXPORT_POLICY]).stale_exemptions == [
        "StageAndPublishJsonLines: s3:AbortMultipartUpload"]


def test_an_unknown_operation_is_not_silently_allowed() -> None:
    with pytest.raises(AssertionError, match="no IAM mapping for dynamodb:DeleteTable"):
        needs_of(recorded("dynamodb", "DeleteTable", TableName=TABLE))


# ----------------------------------------------------------------------- the recorded flows


def _set_variables(monkeypatch: pytest.MonkeyPatch, **values: str) -> None:
    for name, value in values.items():
        monkeypatch.setenv(f"AIRFLOW_VAR_JIT_AUDIT_{name.upper()}", value)


@pytest.fixture()
def object_lock_bucket(aws):
    """The export bucket created with Object Lock (so versioned) before ``seeded`` fills it.

    Without a default retention: the emulator refuses the publish step's CopyObject into a bucket
    with one (it wants a checksum header that only requests with a body carry), and it sets Object
    Lock configurations only on empty buckets. The Object Lock check then runs and finds exactly that.
    """
    aws.client("s3").create_bucket(Bucket=BUCKET, ObjectLockEnabledForBucket=True)


def only_object_lock_fails(output: str) -> bool:
    rows = [line.split(" | ") for line in output.splitlines() if " | " in line][1:]
    failing = [row[0].strip() for row in rows if row[-1] not in ("OK", "SKIPPED")]
    return failing == ["object lock"] and any(row[0].startswith("snapshots past maximum") for row in rows)


@pytest.mark.e2e
def test_export_and_auditor_policies_fit_their_recorded_calls(
    aws, dagbag, object_lock_bucket, seeded, ledger_key, monkeypatch, capsys
) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    from jit_audit.cli import main
    from jit_audit_airflow.export_tasks import check_retention

    assert aws.client("s3").get_object_lock_configuration(Bucket=BUCKET)["ObjectLockConfiguration"] == {
        "ObjectLockEnabled": "Enabled"}, "object_lock_bucket must run before seeded creates the bucket"
    _set_variables(monkeypatch, require_versioning="true", retention_max_days="730")
    logical_date = export_e2e.day(1)
    with record_aws_calls() as export_run:
        dag_run = dagbag.dags["jit_audit_export"].test(logical_date=logical_date)
    tasks = {ti.task_id: ti for ti in dag_run.get_task_instances()}
    assert dag_run.state == "success", {task: ti.state for task, ti in tasks.items()}
    plan = tasks["plan"].xcom_pull(task_ids="plan")
    with record_aws_calls() as export_check, pytest.raises(AirflowFailException) as failed:
        check_retention({**plan, "require_object_lock": True})
    (finding,) = str(failed.value).splitlines()[1:]
    assert "has no S3 Object Lock default retention in COMPLIANCE mode" in finding

    snapshot = f"s3://{BUCKET}/{PREFIX}/jsonl/table={TABLE}/snapshot_date={logical_date.date().isoformat()}/"
    where = ["--endpoint-url", aws.endpoint_url, "--region", REGION]
    capsys.readouterr()
    with record_aws_calls() as auditor:
        assert main(["verify", snapshot, "--kms-key-id", ledger_key, *where]) == 0
        assert main(["verify", f"s3://{BUCKET}/{PREFIX}/", *where]) == 0
        assert main(["check-retention", "--table", TABLE, "--bucket", BUCKET, "--prefix", PREFIX, "--max-days", "730",
                     "--require-versioning", "--require-object-lock", *where]) == 1
    assert only_object_lock_fails(capsys.readouterr().out)

    assert export_run.services() == {"s3", "dynamodb", "kms"}  # kms: the signed ledger entry
    assert export_check.services() == {"s3", "dynamodb"}
    assert auditor.services() == {"s3", "dynamodb", "kms"}
    locked = [call for call in export_run.calls if call.operation == "PutObject" and "ObjectLockMode" in call.params]
    assert [call.params["Key"] for call in locked] == [f"{PREFIX}/jsonl/table={TABLE}/_ledger/000000000000.json"]
    assert_policy_fits(EXPORT_POLICY, export_run.calls + export_check.calls)
    assert_policy_fits(AUDITOR_POLICY, auditor.calls)


@pytest.mark.e2e
def test_adhoc_policy_fits_its_recorded_calls(aws, dagbag, object_lock_bucket, table, ledger_key, capsys) -> None:
    from jit_audit.cli import main

    item = next(item for item in table if not item["request_id"]["S"].startswith("edge-"))
    anytime = {"start": "2026-01-01T00:00:00Z", "end": "2027-01-01T00:00:00Z"}
    modes = [
        {"query_by": "request", "request_id": item["request_id"]["S"]},
        {"query_by": "account", "account_id": item["account_id"]["S"], **anytime},
        {"query_by": "channel", "channel_id": "edgechannel", **anytime},
        {"query_by": "event_type", "event_types": ["ERROR"], "segments": 2, **anytime},
    ]
    with record_aws_calls() as adhoc:
        runs = [adhoc_e2e.run(dagbag, conf) for conf in modes]
    for conf, (dag_run, tasks) in zip(modes, runs, strict=True):
        assert dag_run.state == "success", (conf, {task: ti.state for task, ti in tasks.items()})
        assert adhoc_e2e.results(aws, dag_run)[1], f"{conf['query_by']}: nothing found, so little exercised"
    operations = {(call.operation, call.params.get("IndexName")) for call in adhoc.calls if call.service == "dynamodb"}
    assert operations == {("Query", None), ("Query", "gsi_account_event"), ("Query", "gsi_channel_event"),
                          ("Scan", None)}
    assert_policy_fits(ADHOC_POLICY, adhoc.calls)

    # The auditor verifies the results through the ledger they were recorded in.
    capsys.readouterr()
    with record_aws_calls() as auditor:
        assert main(["verify", f"s3://{BUCKET}/{PREFIX}/", "--kms-key-id", ledger_key,
                     "--endpoint-url", aws.endpoint_url, "--region", REGION]) == 0
    assert f"OK: {len(modes)} ledger entries, {len(modes)} publication(s)" in capsys.readouterr().out
    # Reading ad-hoc results is allowed (whether every auditor grant is needed is the export flow's check).
    assert audit(load(AUDITOR_POLICY), auditor.calls, NOT_EXERCISED[AUDITOR_POLICY]).denied == []
    assert any(call.params.get("Key", "").startswith(f"{PREFIX}/adhoc/") for call in auditor.calls)


@pytest.mark.e2e
def test_alerts_policy_fits_its_recorded_calls(aws, dagbag, sns_queue) -> None:
    from jit_audit_airflow.notifications import SnsFailureNotifier

    with record_aws_calls() as alerts:
        SnsFailureNotifier()(alerts_tests.minimal_context(dagbag))
    assert len(alerts_tests.sns_messages(aws, sns_queue["queue_url"])) == 1
    assert [call.operation for call in alerts.calls] == ["Publish"]
    assert_policy_fits(ALERTS_POLICY, alerts.calls)
