"""The export bucket's protection, as the ``jit_audit_require_*`` settings ask, and the reads it takes.

Versioning, S3 Object Lock in COMPLIANCE mode with a default retention of at least ``min_days``,
default encryption (SSE-KMS with the configured key, when there is one) and a full public access
block. Each read needs its own IAM action, so only what the requirements check is read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jit_audit.retention.findings import Checklist

PUBLIC_ACCESS_FLAGS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")


@dataclass(frozen=True)
class BucketRequirements:
    """What the ``jit_audit_require_*`` settings ask of the export bucket."""

    versioning: bool = False
    object_lock: bool = False
    encryption: bool = True
    public_access_block: bool = True
    kms_key_id: str | None = None

    @classmethod
    def from_settings(cls, values: Mapping[str, Any]) -> BucketRequirements:
        """From ``ExportSettings.to_dict()`` or a run's plan; missing keys (an older plan) take the defaults."""
        defaults = cls()
        return cls(
            versioning=values.get("require_versioning", defaults.versioning),
            object_lock=values.get("require_object_lock", defaults.object_lock),
            encryption=values.get("require_encryption", defaults.encryption),
            public_access_block=values.get("require_public_access_block", defaults.public_access_block),
            kms_key_id=values.get("kms_key_id"),
        )


@dataclass(frozen=True)
class BucketState:
    """The bucket's protection as S3 reports it; None: not configured.

    ``versioning``: GetBucketVersioning's Status ("Enabled" / "Suspended"), ``object_lock``:
    GetObjectLockConfiguration's ``ObjectLockConfiguration``, ``encryption``: GetBucketEncryption's
    ``Rules``, ``public_access_block``: GetPublicAccessBlock's ``PublicAccessBlockConfiguration``.
    """

    versioning: str | None = None
    object_lock: dict[str, Any] | None = None
    encryption: list[dict[str, Any]] | None = None
    public_access_block: dict[str, Any] | None = None


def _object_lock_days(retention: dict[str, Any]) -> int | None:
    # AWS returns one of Days and Years; some emulators return both, the other as 0.
    if retention.get("Days"):
        return int(retention["Days"])
    if retention.get("Years"):
        return int(retention["Years"]) * 365
    return None


def _same_key(configured: str, actual: str) -> bool:
    """A key id, alias or ARN matches S3's KMSMasterKeyID when equal or its final component."""
    return configured == actual or actual.endswith(("/" + configured, ":" + configured)) or configured.endswith(
        ("/" + actual, ":" + actual)
    )


def _check_versioning(checklist: Checklist, bucket: str, state: BucketState) -> None:
    """Versioning Enabled (``jit_audit_require_versioning``)."""
    actual = state.versioning or "never enabled"
    if state.versioning == "Enabled":
        checklist.add("bucket versioning", "Enabled", actual)
    else:
        checklist.add("bucket versioning", "Enabled", actual, f"Versioning is not enabled on bucket {bucket}.",
                      f"aws s3api put-bucket-versioning --bucket {bucket} --versioning-configuration Status=Enabled")


def _check_object_lock(checklist: Checklist, bucket: str, state: BucketState, min_days: int) -> None:
    """Object Lock in COMPLIANCE mode keeping new objects ``min_days`` (``jit_audit_require_object_lock``)."""
    expected = f"Enabled, COMPLIANCE, >= {min_days} days"
    lock = state.object_lock or {}
    retention = lock.get("Rule", {}).get("DefaultRetention", {})
    days = _object_lock_days(retention)
    enabled = lock.get("ObjectLockEnabled") == "Enabled"
    if not enabled:
        actual = "not configured"
    elif not retention:
        actual = "Enabled, no default retention"
    else:
        actual = f"Enabled, {retention.get('Mode', '?')}, {days} days"
    fix = (
        f"aws s3api put-object-lock-configuration --bucket {bucket} --object-lock-configuration "
        f"'{{\"ObjectLockEnabled\":\"Enabled\",\"Rule\":{{\"DefaultRetention\":"
        f"{{\"Mode\":\"COMPLIANCE\",\"Days\":{min_days}}}}}}}'"
        + ("" if enabled else " (needs versioning; Object Lock cannot be enabled on some existing buckets: "
           "then create a new bucket with --object-lock-enabled-for-bucket)")
    )
    if enabled and retention.get("Mode") == "COMPLIANCE" and days is not None and days >= min_days:
        checklist.add("object lock", expected, actual)
    else:
        checklist.add("object lock", expected, actual,
                      f"Bucket {bucket} has no S3 Object Lock default retention in COMPLIANCE mode of at least "
                      f"{min_days} days ({actual}).", fix)


def _check_encryption(checklist: Checklist, bucket: str, state: BucketState, kms_key_id: str | None) -> None:
    """Default encryption (``jit_audit_require_encryption``): SSE-KMS with ``kms_key_id`` when set, else any."""
    rules = state.encryption or []
    defaults = [rule.get("ApplyServerSideEncryptionByDefault", {}) for rule in rules]
    defaults = [entry for entry in defaults if entry.get("SSEAlgorithm")]
    actual = ", ".join(
        entry["SSEAlgorithm"] + (f" ({entry['KMSMasterKeyID']})" if entry.get("KMSMasterKeyID") else "")
        for entry in defaults
    ) or "not configured"
    if key := kms_key_id:
        expected = f"aws:kms with {key}"
        good = any(
            entry["SSEAlgorithm"].startswith("aws:kms") and _same_key(key, entry.get("KMSMasterKeyID", ""))
            for entry in defaults
        )
        fix = (f"aws s3api put-bucket-encryption --bucket {bucket} --server-side-encryption-configuration "
               f"'{{\"Rules\":[{{\"ApplyServerSideEncryptionByDefault\":{{\"SSEAlgorithm\":\"aws:kms\","
               f"\"KMSMasterKeyID\":\"{key}\"}},\"BucketKeyEnabled\":true}}]}}'")
    else:
        expected = "AES256 or aws:kms"
        good = bool(defaults)
        fix = (f"aws s3api put-bucket-encryption --bucket {bucket} --server-side-encryption-configuration "
               f"'{{\"Rules\":[{{\"ApplyServerSideEncryptionByDefault\":{{\"SSEAlgorithm\":\"AES256\"}}}}]}}'")
    if good:
        checklist.add("default encryption", expected, actual)
    else:
        checklist.add("default encryption", expected, actual,
                      f"Bucket {bucket}'s default encryption is {actual}, expected {expected}.", fix)


def _check_public_access_block(checklist: Checklist, bucket: str, state: BucketState) -> None:
    """All four public access block settings true (``jit_audit_require_public_access_block``)."""
    block = state.public_access_block
    off = [flag for flag in PUBLIC_ACCESS_FLAGS if not (block or {}).get(flag)]
    expected = "all four settings true"
    if block is None:
        actual = "not configured"
    elif off:
        actual = "false: " + ", ".join(off)
    else:
        actual = "all four true"
    if off:
        checklist.add("public access block", expected, actual,
                      f"Bucket {bucket}'s public access block is incomplete ({actual}).",
                      f"aws s3api put-public-access-block --bucket {bucket} --public-access-block-configuration "
                      + ",".join(f"{flag}=true" for flag in PUBLIC_ACCESS_FLAGS))
    else:
        checklist.add("public access block", expected, actual)


def check_bucket(
    checklist: Checklist, bucket: str, state: BucketState, required: BucketRequirements, min_days: int
) -> None:
    """Each protection ``required`` asks for is there."""
    if required.versioning:
        _check_versioning(checklist, bucket, state)
    if required.object_lock:
        _check_object_lock(checklist, bucket, state, min_days)
    if required.encryption:
        _check_encryption(checklist, bucket, state, required.kms_key_id)
    if required.public_access_block:
        _check_public_access_block(checklist, bucket, state)


def _error_code(error: Any) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def bucket_versioning(client: Any, bucket: str) -> str | None:
    """GetBucketVersioning's Status: "Enabled", "Suspended", or None if versioning was never enabled."""
    return client.get_bucket_versioning(Bucket=bucket).get("Status")


def object_lock_configuration(client: Any, bucket: str) -> dict[str, Any] | None:
    """GetObjectLockConfiguration's configuration, or None when the bucket has none."""
    try:
        return client.get_object_lock_configuration(Bucket=bucket).get("ObjectLockConfiguration")
    except client.exceptions.ClientError as error:
        if _error_code(error) in ("ObjectLockConfigurationNotFoundError", "NoSuchObjectLockConfiguration"):
            return None
        raise


def bucket_encryption(client: Any, bucket: str) -> list[dict[str, Any]] | None:
    """GetBucketEncryption's rules, or None when the bucket has no default encryption."""
    try:
        response = client.get_bucket_encryption(Bucket=bucket)
    except client.exceptions.ClientError as error:
        if _error_code(error) == "ServerSideEncryptionConfigurationNotFoundError":
            return None
        raise
    return response.get("ServerSideEncryptionConfiguration", {}).get("Rules", [])


def public_access_block(client: Any, bucket: str) -> dict[str, Any] | None:
    """GetPublicAccessBlock's configuration, or None when the bucket has none."""
    try:
        return client.get_public_access_block(Bucket=bucket).get("PublicAccessBlockConfiguration")
    except client.exceptions.ClientError as error:
        if _error_code(error) == "NoSuchPublicAccessBlockConfiguration":
            return None
        raise


def bucket_state(client: Any, bucket: str, requirements: BucketRequirements) -> BucketState:
    """Fetch only what ``requirements`` checks (each call needs its own IAM action)."""
    return BucketState(
        versioning=bucket_versioning(client, bucket) if requirements.versioning else None,
        object_lock=object_lock_configuration(client, bucket) if requirements.object_lock else None,
        encryption=bucket_encryption(client, bucket) if requirements.encryption else None,
        public_access_block=public_access_block(client, bucket) if requirements.public_access_block else None,
    )
