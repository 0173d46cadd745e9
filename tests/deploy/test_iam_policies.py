"""The least-privilege IAM policies in iam/: well-formed, tied to the code's AWS calls, and scoped.

Three layers:

1. Shape: each file is an IAM identity policy (Version 2012-10-17, a Statement list of Allow
   statements with Action and Resource), with no wildcard actions and no ``*`` resource except for
   actions AWS offers no resource-level permission for.
2. Actions: a static table below lists, per role, every AWS call the code makes (file and boto3
   method) and the IAM actions it needs. Each entry must still be in its file, each AWS call found
   in the runtime code must be in the table, and each policy must grant exactly its role's actions.
3. Resources: a small evaluator checks the policies against the S3 keys and ARNs the code really
   uses (built with the code's own layout functions), and that nothing outside them is allowed.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import botocore.session
import pytest
from botocore import xform_name

from jit_audit.layout import SnapshotLayout
from jit_audit.query import INDEXES

REPO = Path(__file__).resolve().parents[2]
IAM = REPO / "iam"
EXPORT_POLICY = IAM / "jit-audit-export-policy.json"
ADHOC_POLICY = IAM / "jit-audit-adhoc-policy.json"
ALERTS_POLICY = IAM / "jit-audit-alerts-sns-policy.json"
AUDITOR_POLICY = IAM / "jit-audit-auditor-policy.json"
POLICIES = [EXPORT_POLICY, ADHOC_POLICY, ALERTS_POLICY, AUDITOR_POLICY]
DEPLOYING = REPO / "docs" / "deploying.md"

#: Placeholders the policies may contain; docs/deploying.md says what to put in each.
TOKENS = {"REGION", "ACCOUNT_ID", "TABLE", "BUCKET", "PREFIX", "KMS_KEY_ID", "LEDGER_KEY_ID", "ALERTS_TOPIC"}
#: Actions AWS grants only on ``"Resource": "*"`` (no resource types in the Service Authorization Reference).
NO_RESOURCE_LEVEL = {"dynamodb:ListExports"}
#: Managed policies may hold at most 6,144 characters, whitespace not counted.
MAX_POLICY_CHARS = 6144

# ------------------------------------------------------------------ what the code calls, per role
# (file, boto3 method as the code writes it) -> IAM actions the call needs.
# Notes: ExportTableToPointInTime makes DynamoDB write the export to S3 with the caller's
# permissions (s3:PutObject, s3:PutObjectAcl, s3:AbortMultipartUpload, per AWS's export guide).
# upload_fileobj and copy are boto3 managed transfers: above 8 MB they become multipart uploads
# (CreateMultipartUpload/UploadPart[Copy]/CompleteMultipartUpload are s3:PutObject, and
# AbortMultipartUpload on failure is s3:AbortMultipartUpload); copy first HEADs the source
# (s3:GetObject). Paginated ListObjectsV2 is s3:ListBucket; DeleteObjects is s3:DeleteObject per key.

TRANSFER_PUT = {"s3:PutObject", "s3:AbortMultipartUpload"}

EXPORT_CALLS: dict[tuple[str, str], set[str]] = {
    ("include/jit_audit/exports.py", "describe_continuous_backups"): {"dynamodb:DescribeContinuousBackups"},
    ("include/jit_audit/exports.py", "describe_table"): {"dynamodb:DescribeTable"},
    ("include/jit_audit/exports.py", "list_exports"): {"dynamodb:ListExports"},
    ("include/jit_audit/exports.py", "describe_export"): {"dynamodb:DescribeExport"},
    ("include/jit_audit/exports.py", "export_table_to_point_in_time"): {
        "dynamodb:ExportTableToPointInTime", "s3:PutObject", "s3:PutObjectAcl", "s3:AbortMultipartUpload",
    },
    ("plugins/jit_audit_airflow/triggers/dynamodb.py", "describe_export"): {"dynamodb:DescribeExport"},
    # flatten streams each data file the export's manifest lists into a staged part (read through
    # jit_audit.s3.get_object_explained, below); one S3 no longer has (fault row 5b) is NoSuchKey only
    # to callers with s3:ListBucket on the bucket (no s3:prefix in that check), else AccessDenied.
    ("include/jit_audit/staging.py", "upload_fileobj"): TRANSFER_PUT,
    ("include/jit_audit/snapshot.py", "copy"): {"s3:GetObject", *TRANSFER_PUT},
    # The shared S3 helpers (jit_audit.s3): the export's manifests and the ledger's entries read whole,
    # staging, published partitions (has_baseline, published_snapshots when a maximum retention is set)
    # and the ledger listed, stale parts deleted, _manifest.json and _SUCCESS put with a checksum;
    # `jit-audit ledger init`, run once by whoever holds the export role, reads manifests with them too.
    ("include/jit_audit/s3.py", "get_object"): {"s3:GetObject"},
    # object_size: the sizes of an incremental export's data files in the folder such exports share.
    ("include/jit_audit/s3.py", "head_object"): {"s3:GetObject"},
    ("include/jit_audit/s3.py", "list_objects_v2"): {"s3:ListBucket"},
    ("include/jit_audit/s3.py", "delete_objects"): {"s3:DeleteObject"},
    ("include/jit_audit/s3.py", "put_object"): {"s3:PutObject"},
    ("include/jit_audit/retention/lifecycle.py", "get_bucket_lifecycle_configuration"): {"s3:GetLifecycleConfiguration"},
    ("include/jit_audit/retention/bucket.py", "get_bucket_versioning"): {"s3:GetBucketVersioning"},
    ("include/jit_audit/retention/bucket.py", "get_object_lock_configuration"): {"s3:GetBucketObjectLockConfiguration"},
    ("include/jit_audit/retention/bucket.py", "get_bucket_encryption"): {"s3:GetEncryptionConfiguration"},
    ("include/jit_audit/retention/bucket.py", "get_public_access_block"): {"s3:GetBucketPublicAccessBlock"},
    # The publication ledger: append with If-None-Match (a COMPLIANCE retention on the entry when the
    # bucket has Object Lock: s3:PutObjectRetention).
    ("include/jit_audit/ledger.py", "put_object"): {"s3:PutObject", "s3:PutObjectRetention"},
    ("include/jit_audit/ledger.py", "get_object_lock_configuration"): {"s3:GetBucketObjectLockConfiguration"},
}

ADHOC_CALLS: dict[tuple[str, str], set[str]] = {
    # getattr(client, "query" | "scan"): the DAG's run_query and `jit-audit query|scan` alike.
    ("include/jit_audit/query.py", "query"): {"dynamodb:Query"},
    ("include/jit_audit/query.py", "scan"): {"dynamodb:Scan"},
    ("include/jit_audit/cli.py", "query"): {"dynamodb:Query"},
    ("include/jit_audit/cli.py", "scan"): {"dynamodb:Scan"},
    # `jit-audit flatten --out s3://...` (an operator's upload of a flattened file, e.g. under adhoc/).
    ("include/jit_audit/cli.py", "upload_file"): TRANSFER_PUT,
    # results.publish_results, which both query.run_to_s3 and jit_api.summaries_to_s3 (query_by
    # api_summary) publish through, with the shared S3 helpers (jit_audit.s3). refuse_foreign_prefix
    # reads <output>/_manifest.json, which is usually missing: S3 says NoSuchKey only to callers with
    # s3:ListBucket (otherwise AccessDenied). Stale parts are listed and deleted, _manifest.json and
    # _SUCCESS put with a checksum; the ledger's entries are read and listed with them too.
    ("include/jit_audit/results.py", "upload_fileobj"): TRANSFER_PUT,
    ("include/jit_audit/s3.py", "get_object"): {"s3:GetObject", "s3:ListBucket"},
    ("include/jit_audit/s3.py", "list_objects_v2"): {"s3:ListBucket"},
    ("include/jit_audit/s3.py", "delete_objects"): {"s3:DeleteObject"},
    ("include/jit_audit/s3.py", "put_object"): {"s3:PutObject"},
    # Each result is recorded in the export table's ledger (as the export role does).
    ("include/jit_audit/ledger.py", "put_object"): {"s3:PutObject", "s3:PutObjectRetention"},
    ("include/jit_audit/ledger.py", "get_object_lock_configuration"): {"s3:GetBucketObjectLockConfiguration"},
}

#: `jit-audit verify` and `jit-audit check-retention`, run by auditors: read-only on the published
#: JSON Lines, the table's backup settings and the bucket's configuration.
AUDITOR_CALLS: dict[tuple[str, str], set[str]] = {
    ("include/jit_audit/verify.py", "get_object"): {"s3:GetObject"},
    ("include/jit_audit/verify.py", "list_objects_v2"): {"s3:ListBucket"},
    # `jit-audit flatten --manifest s3://...` reads an export's manifest-summary.json for its view.
    ("include/jit_audit/cli.py", "get_object"): {"s3:GetObject"},
    # jit_audit.s3: manifests and ledger entries read whole, the ledger and the published partitions
    # listed (by verify, and by published_snapshots when a maximum retention is set).
    ("include/jit_audit/s3.py", "get_object"): {"s3:GetObject"},
    # object_size: the sizes of an incremental export's data files in the folder such exports share.
    ("include/jit_audit/s3.py", "head_object"): {"s3:GetObject"},
    ("include/jit_audit/s3.py", "list_objects_v2"): {"s3:ListBucket"},
    ("include/jit_audit/exports.py", "describe_continuous_backups"): {"dynamodb:DescribeContinuousBackups"},
    ("include/jit_audit/retention/lifecycle.py", "get_bucket_lifecycle_configuration"): {"s3:GetLifecycleConfiguration"},
    ("include/jit_audit/retention/bucket.py", "get_bucket_versioning"): {"s3:GetBucketVersioning"},
    ("include/jit_audit/retention/bucket.py", "get_object_lock_configuration"): {"s3:GetBucketObjectLockConfiguration"},
    ("include/jit_audit/retention/bucket.py", "get_bucket_encryption"): {"s3:GetEncryptionConfiguration"},
    ("include/jit_audit/retention/bucket.py", "get_public_access_block"): {"s3:GetBucketPublicAccessBlock"},
}

#: The SNS failure alerts: the provider's SnsNotifier -> SnsHook.publish_to_target -> Publish.
ALERT_CALLS: dict[tuple[str, str], set[str]] = {
    ("plugins/jit_audit_airflow/notifications/sns.py", "SnsNotifier"): {"sns:Publish"},
}

#: SSE-KMS, used only when the Variable jit_audit_export_kms_key_id is set: S3 asks KMS for a data
#: key to write (GenerateDataKey) and to read or continue a multipart upload (Decrypt).
KMS_ACTIONS = {"kms:GenerateDataKey", "kms:Decrypt"}
#: Ledger signing, only when jit_audit_ledger_signing_key_id is set: the publishers sign entries
#: (ledger.KmsSigner: kms.sign), auditors fetch the public key to check them (verify: get_public_key).
LEDGER_SIGN, LEDGER_VERIFY = {"kms:Sign"}, {"kms:GetPublicKey"}

ROLE_ACTIONS = {
    EXPORT_POLICY: set().union(*EXPORT_CALLS.values()) | KMS_ACTIONS | LEDGER_SIGN,
    ADHOC_POLICY: set().union(*ADHOC_CALLS.values()) | KMS_ACTIONS | LEDGER_SIGN,
    ALERTS_POLICY: set().union(*ALERT_CALLS.values()),
    AUDITOR_POLICY: set().union(*AUDITOR_CALLS.values()) | {"kms:Decrypt"} | LEDGER_VERIFY,
}

#: Quoted words that look like AWS operations but are not calls: (file, word) -> what they are.
NOT_CALLS = {("include/jit_audit/jit_api.py", "query"): "the 'query' field of the API summary's _manifest.json"}
TRANSFER_METHODS = {"upload_fileobj", "upload_file", "download_fileobj", "download_file", "copy"}


# --------------------------------------------------------------------------------------- helpers


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def statements(policy: dict[str, Any]) -> list[dict[str, Any]]:
    return policy["Statement"]


def actions_of(policy: dict[str, Any]) -> set[str]:
    return {action for statement in statements(policy) for action in as_list(statement["Action"])}


def iam_glob(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    """IAM wildcard matching: ``*`` any run of characters (``/`` included), ``?`` one character."""
    regex = "".join(".*" if char == "*" else "." if char == "?" else re.escape(char) for char in pattern)
    return re.fullmatch(regex, value, re.IGNORECASE if ignore_case else 0) is not None


def conditions_hold(condition: dict[str, Any], context: dict[str, str]) -> bool:
    """StringEquals / StringLike, as IAM evaluates them: a key missing from the request fails."""
    for operator, tests in condition.items():
        for key, expected in tests.items():
            if key not in context:
                return False
            if operator == "StringEquals":
                matched = context[key] in as_list(expected)
            elif operator == "StringLike":
                matched = any(iam_glob(value, context[key]) for value in as_list(expected))
            else:
                raise AssertionError(f"condition operator {operator} is not understood by this test")
            if not matched:
                return False
    return True


def allowed(policy: dict[str, Any], action: str, resource: str, context: dict[str, str] | None = None) -> bool:
    context = context or {}
    decision = False
    for statement in statements(policy):
        if not any(iam_glob(pattern, action, ignore_case=True) for pattern in as_list(statement["Action"])):
            continue
        if not any(iam_glob(pattern, resource) for pattern in as_list(statement["Resource"])):
            continue
        if not conditions_hold(statement.get("Condition", {}), context):
            continue
        if statement["Effect"] == "Deny":
            return False
        decision = True
    return decision


def aws_operations() -> set[str]:
    session = botocore.session.get_session()
    operations = set(TRANSFER_METHODS)
    for service in ("dynamodb", "s3"):
        operations |= {xform_name(name) for name in session.get_service_model(service).operation_names}
    return operations


def calls_in(text: str, operations: set[str]) -> set[str]:
    """AWS operations a source file invokes: ``.method(`` or a quoted name (paginators, getattr)."""
    methods = {name for receiver, name in re.findall(r"(\w*)\.([a-z][a-z0-9_]*)\(", text) if receiver != "copy"}
    quoted = set(re.findall(r"[\"']([a-z][a-z0-9_]*)[\"']", text))
    return (methods | quoted) & operations  # (copy.copy() is the standard library, not S3)


def runtime_sources() -> list[Path]:
    files = sorted((REPO / "include" / "jit_audit").rglob("*.py"))
    return files + sorted((REPO / "plugins" / "jit_audit_airflow").rglob("*.py"))


# Placeholder values: what docs/deploying.md tells people to replace.
TABLE_ARN = "arn:aws:dynamodb:REGION:ACCOUNT_ID:table/TABLE"
BUCKET_ARN = "arn:aws:s3:::BUCKET"
KMS_KEY_ARN = "arn:aws:kms:REGION:ACCOUNT_ID:key/KMS_KEY_ID"
LEDGER_KEY_ARN = "arn:aws:kms:REGION:ACCOUNT_ID:key/LEDGER_KEY_ID"
S3_VIA_KMS = "s3.REGION.amazonaws.com"
EXPORT_ID = "01764115200000-a1b2c3d4"


def obj(key: str) -> str:
    return f"{BUCKET_ARN}/{key}"


def layouts() -> list[SnapshotLayout]:
    """A full snapshot and an incremental window, as the DAG lays them out."""
    export_time = datetime(2026, 11, 26, tzinfo=UTC)
    full = SnapshotLayout(bucket="BUCKET", prefix="PREFIX", table="TABLE", snapshot_date=date(2026, 11, 26),
                          export_time=export_time)
    incremental = SnapshotLayout(bucket="BUCKET", prefix="/PREFIX/", table="TABLE", snapshot_date=date(2026, 11, 26),
                                 export_time=export_time, window_start=export_time - timedelta(days=1))
    return [full, incremental]


def adhoc_prefix() -> str:
    """Where the ad-hoc DAG writes by default, from the DAG's own function."""
    from jit_audit_airflow.adhoc_tasks import output_location

    bucket, prefix = output_location(
        SimpleNamespace(bucket="BUCKET", prefix="PREFIX"), "manual__2026-11-26T10:00:00+00:00", None
    )
    assert bucket == "BUCKET"
    return prefix


@pytest.fixture(scope="module")
def export_policy() -> dict[str, Any]:
    return load(EXPORT_POLICY)


@pytest.fixture(scope="module")
def adhoc_policy() -> dict[str, Any]:
    return load(ADHOC_POLICY)


# ------------------------------------------------------------------------------------------ shape


def test_every_policy_file_is_known() -> None:
    assert sorted(IAM.glob("*.json")) == sorted(POLICIES), "a policy in iam/ without tests (or a missing one)"


@pytest.mark.parametrize("path", POLICIES, ids=lambda path: path.name)
def test_policy_shape(path: Path) -> None:
    policy = load(path)
    assert set(policy) == {"Version", "Statement"}
    assert policy["Version"] == "2012-10-17"
    assert isinstance(policy["Statement"], list) and policy["Statement"]
    sids = [statement.get("Sid") for statement in policy["Statement"]]
    assert all(sid and re.fullmatch(r"[A-Za-z0-9]+", sid) for sid in sids), f"Sids must be alphanumeric: {sids}"
    assert len(set(sids)) == len(sids), f"duplicate Sid in {path.name}"
    for statement in policy["Statement"]:
        assert set(statement) <= {"Sid", "Effect", "Action", "Resource", "Condition"}, statement
        assert statement["Effect"] == "Allow", statement["Sid"]
        actions, resources = as_list(statement["Action"]), as_list(statement["Resource"])
        assert actions and resources, statement["Sid"]
        for action in actions:
            assert re.fullmatch(r"[a-z0-9-]+:[A-Za-z0-9]+", action), f"{statement['Sid']}: no wildcard actions ({action})"
        if "*" in resources:
            assert resources == ["*"] and set(actions) <= NO_RESOURCE_LEVEL, (
                f"{statement['Sid']}: Resource * only for actions without resource-level permissions {NO_RESOURCE_LEVEL}"
            )
            continue
        for resource in resources:
            assert resource.startswith("arn:aws:"), resource
            # Wildcards only as the last path segment (".../export/*", "<prefix>/raw/*").
            assert "*" not in resource or (resource.endswith("/*") and resource.count("*") == 1), resource
            assert "?" not in resource, resource
    assert len(re.sub(r"\s", "", path.read_text())) <= MAX_POLICY_CHARS


@pytest.mark.parametrize("path", POLICIES, ids=lambda path: path.name)
def test_placeholders_are_the_documented_tokens(path: Path) -> None:
    used = set(re.findall(r"\b[A-Z][A-Z_]*[A-Z]\b", path.read_text()))
    assert used <= TOKENS, f"{path.name} uses undocumented placeholders {sorted(used - TOKENS)}"
    assert not re.search(r"\$\{|\b\d{12}\b|\b[a-z]{2}-[a-z]+-\d\b", path.read_text()), (
        f"{path.name}: use the tokens, not ${{...}}, account ids or real regions"
    )
    docs = DEPLOYING.read_text()
    for token in used:
        assert f"`{token}`" in docs, f"docs/deploying.md does not explain {token}"
    assert f"iam/{path.name}" in docs, f"docs/deploying.md does not mention iam/{path.name}"


# ---------------------------------------------------------------------------------------- actions


def test_the_call_table_matches_the_code() -> None:
    """Every listed call is still made where listed, and every AWS call in the code is listed."""
    operations = aws_operations()
    listed: dict[str, set[str]] = {}
    for file, call in [*EXPORT_CALLS, *ADHOC_CALLS, *AUDITOR_CALLS]:
        listed.setdefault(file, set()).add(call)
    for file, calls in listed.items():
        found = calls_in((REPO / file).read_text(), operations)
        assert calls <= found, f"{file} no longer calls {sorted(calls - found)}: update the table and iam/"
    for file, name in ALERT_CALLS:
        assert re.search(rf"\b{name}\b", (REPO / file).read_text()), f"{file} no longer uses {name}"
    for path in runtime_sources():
        relative = str(path.relative_to(REPO))
        not_calls = {word for file, word in NOT_CALLS if file == relative}
        unlisted = calls_in(path.read_text(), operations) - listed.get(relative, set()) - not_calls
        assert not unlisted, (
            f"{relative} calls {sorted(unlisted)}: add the IAM actions they need to the table here and to iam/"
        )


@pytest.mark.parametrize("path", POLICIES, ids=lambda path: path.name)
def test_policy_grants_exactly_the_actions_its_calls_need(path: Path) -> None:
    granted = actions_of(load(path))
    expected = ROLE_ACTIONS[path]
    assert not expected - granted, f"{path.name} lacks {sorted(expected - granted)}"
    assert not granted - expected, f"{path.name} grants {sorted(granted - expected)}, which no call needs"


def test_roles_do_not_overlap_in_what_they_change() -> None:
    export_only = {"dynamodb:ExportTableToPointInTime", "s3:PutObjectAcl", "s3:GetLifecycleConfiguration"}
    assert not export_only & ROLE_ACTIONS[ADHOC_POLICY]
    assert not {"dynamodb:Query", "dynamodb:Scan"} & ROLE_ACTIONS[EXPORT_POLICY], "the export never reads items"


# -------------------------------------------------------------------------------------- resources


def test_export_role_on_the_table_and_its_exports(export_policy: dict[str, Any]) -> None:
    for action in ("dynamodb:DescribeTable", "dynamodb:DescribeContinuousBackups", "dynamodb:ExportTableToPointInTime"):
        assert allowed(export_policy, action, TABLE_ARN), action
        assert not allowed(export_policy, action, "arn:aws:dynamodb:REGION:ACCOUNT_ID:table/OTHER"), action
    assert allowed(export_policy, "dynamodb:DescribeExport", f"{TABLE_ARN}/export/{EXPORT_ID}")
    assert not allowed(export_policy, "dynamodb:DescribeExport", f"arn:aws:dynamodb:REGION:ACCOUNT_ID:table/OTHER/export/{EXPORT_ID}")
    assert allowed(export_policy, "dynamodb:ListExports", "*")


@pytest.mark.parametrize("layout", layouts(), ids=["full", "incremental"])
def test_export_role_on_the_s3_layout(export_policy: dict[str, Any], layout: SnapshotLayout) -> None:
    # DynamoDB writes <S3Prefix>/AWSDynamoDB/<export id>/... with the caller's permissions; we read it.
    export_root = f"{layout.raw_prefix}/AWSDynamoDB/{EXPORT_ID}"
    for key in (f"{export_root}/_started", f"{export_root}/manifest-summary.json", f"{export_root}/data/abc.json.gz"):
        for action in ("s3:PutObject", "s3:PutObjectAcl", "s3:AbortMultipartUpload", "s3:GetObject"):
            assert allowed(export_policy, action, obj(key)), (action, key)
        assert not allowed(export_policy, "s3:DeleteObject", obj(key)), "raw exports are never deleted"
    # Staging, the published parts, _manifest.json and _SUCCESS.
    for key in (layout.staging_part_key(0), layout.published_part_key(3), layout.partition.manifest_key, layout.partition.success_key):
        for action in ("s3:PutObject", "s3:GetObject", "s3:DeleteObject", "s3:AbortMultipartUpload"):
            assert allowed(export_policy, action, obj(key)), (action, key)
    for prefix in (layout.published_prefix, layout.staging_prefix, layout.snapshots_prefix):
        assert allowed(export_policy, "s3:ListBucket", BUCKET_ARN, {"s3:prefix": prefix}), prefix
    assert allowed(export_policy, "s3:GetLifecycleConfiguration", BUCKET_ARN)


def test_export_role_stays_inside_its_prefixes(export_policy: dict[str, Any]) -> None:
    for key in ("PREFIX/adhoc/run/part-00000.jsonl.gz", "other/x", "PREFIX", "PREFIXother/jsonl/x"):
        for action in ("s3:PutObject", "s3:GetObject", "s3:DeleteObject"):
            assert not allowed(export_policy, action, obj(key)), (action, key)
    # Listing is the exception: publish's GetObject of a missing _manifest.json must be NoSuchKey, which
    # S3 answers only to callers with s3:ListBucket on the bucket, unconditioned (recorded in
    # test_iam_recorded_calls). Listing shows keys, never contents.
    assert allowed(export_policy, "s3:ListBucket", BUCKET_ARN)
    assert not allowed(export_policy, "s3:ListBucket", "arn:aws:s3:::OTHER")
    assert not allowed(export_policy, "s3:GetObject", "arn:aws:s3:::OTHER/PREFIX/jsonl/x")


def test_adhoc_role_on_the_table_and_both_indexes(adhoc_policy: dict[str, Any]) -> None:
    assert allowed(adhoc_policy, "dynamodb:Query", TABLE_ARN)
    assert allowed(adhoc_policy, "dynamodb:Scan", TABLE_ARN)
    assert set(INDEXES) == {"account", "channel"}
    for index, _partition_key in INDEXES.values():
        assert allowed(adhoc_policy, "dynamodb:Query", f"{TABLE_ARN}/index/{index}"), index
    assert not allowed(adhoc_policy, "dynamodb:Query", f"{TABLE_ARN}/index/some_other_index")
    assert not allowed(adhoc_policy, "dynamodb:Scan", "arn:aws:dynamodb:REGION:ACCOUNT_ID:table/OTHER")
    for action in ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DescribeTable"):
        assert not allowed(adhoc_policy, action, TABLE_ARN), action


def test_adhoc_role_on_its_results(adhoc_policy: dict[str, Any]) -> None:
    prefix = adhoc_prefix()
    assert prefix.startswith("PREFIX/adhoc/") and prefix.endswith("/")
    for key in (f"{prefix}part-00000.jsonl.gz", f"{prefix}_manifest.json", f"{prefix}_SUCCESS"):
        for action in ("s3:PutObject", "s3:GetObject", "s3:DeleteObject", "s3:AbortMultipartUpload"):
            assert allowed(adhoc_policy, action, obj(key)), (action, key)
    assert allowed(adhoc_policy, "s3:ListBucket", BUCKET_ARN, {"s3:prefix": prefix})
    # The missing-_manifest.json check (GetObject, no s3:prefix in the request) must get NoSuchKey.
    assert allowed(adhoc_policy, "s3:ListBucket", BUCKET_ARN)


def test_adhoc_role_cannot_touch_snapshots_or_raw_exports(adhoc_policy: dict[str, Any]) -> None:
    for layout in layouts():
        for key in (layout.published_part_key(0), layout.partition.success_key, f"{layout.raw_prefix}/AWSDynamoDB/x/data/a.json.gz"):
            for action in ("s3:PutObject", "s3:GetObject", "s3:DeleteObject"):
                assert not allowed(adhoc_policy, action, obj(key)), (action, key)


@pytest.mark.parametrize(("path", "objects"), [
    (EXPORT_POLICY, ["PREFIX/raw/table=TABLE/x/data/a.json.gz", "PREFIX/jsonl/table=TABLE/snapshot_date=2026-11-26/part-00000.jsonl.gz"]),
    (ADHOC_POLICY, ["PREFIX/adhoc/run/part-00000.jsonl.gz"]),
], ids=["export", "adhoc"])
def test_kms_only_through_s3_for_our_objects(path: Path, objects: list[str]) -> None:
    policy = load(path)
    for key in objects:
        for arn in (obj(key), BUCKET_ARN):  # the object, or the bucket when S3 Bucket Keys are on
            context = {"kms:ViaService": S3_VIA_KMS, "kms:EncryptionContext:aws:s3:arn": arn}
            for action in sorted(KMS_ACTIONS):
                assert allowed(policy, action, KMS_KEY_ARN, context), (action, arn)
        direct = {"kms:EncryptionContext:aws:s3:arn": obj(key)}
        assert not allowed(policy, "kms:Decrypt", KMS_KEY_ARN, direct), "KMS only via S3"
    elsewhere = {"kms:ViaService": S3_VIA_KMS, "kms:EncryptionContext:aws:s3:arn": "arn:aws:s3:::OTHER/x"}
    assert not allowed(policy, "kms:Decrypt", KMS_KEY_ARN, elsewhere)
    assert not allowed(policy, "kms:Decrypt", "arn:aws:kms:REGION:ACCOUNT_ID:key/OTHER",
                       {"kms:ViaService": S3_VIA_KMS, "kms:EncryptionContext:aws:s3:arn": BUCKET_ARN})


def test_alerts_role_publishes_to_one_topic() -> None:
    policy = load(ALERTS_POLICY)
    assert allowed(policy, "sns:Publish", "arn:aws:sns:REGION:ACCOUNT_ID:ALERTS_TOPIC")
    assert not allowed(policy, "sns:Publish", "arn:aws:sns:REGION:ACCOUNT_ID:other-topic")


def test_the_ledger_key_signs_for_publishers_and_verifies_for_auditors_only() -> None:
    for path in (EXPORT_POLICY, ADHOC_POLICY):
        policy = load(path)
        assert allowed(policy, "kms:Sign", LEDGER_KEY_ARN)
        assert not allowed(policy, "kms:Sign", KMS_KEY_ARN), "only the ledger key signs"
        assert not allowed(policy, "kms:GetPublicKey", LEDGER_KEY_ARN)
    auditor = load(AUDITOR_POLICY)
    assert allowed(auditor, "kms:GetPublicKey", LEDGER_KEY_ARN)
    assert not allowed(auditor, "kms:Sign", LEDGER_KEY_ARN), "an auditor can check signatures, never make them"


def test_ledger_entries_are_writable_by_publishers_readable_by_auditors() -> None:
    entry = obj("PREFIX/jsonl/table=TABLE/_ledger/000000000007.json")
    for path in (EXPORT_POLICY, ADHOC_POLICY):
        for action in ("s3:PutObject", "s3:GetObject", "s3:PutObjectRetention"):
            assert allowed(load(path), action, entry), (path.name, action)
    auditor = load(AUDITOR_POLICY)
    assert allowed(auditor, "s3:GetObject", entry)
    assert not allowed(auditor, "s3:PutObject", entry)
    assert allowed(auditor, "s3:ListBucket", BUCKET_ARN, {"s3:prefix": "PREFIX/jsonl/table=TABLE/_ledger/"})
    assert allowed(auditor, "s3:GetObject", obj(adhoc_prefix() + "_manifest.json"))
    assert not allowed(load(ADHOC_POLICY), "s3:PutObject", obj("PREFIX/jsonl/table=TABLE/snapshot_date=2026-11-26/x"))
