"""The export's settings: names, defaults, documentation and validation in one place.

Airflow reads them from Variables at run time (never at parse time); the CLI and tests pass a plain
mapping. A bad value is refused here, before any AWS call, with the Variable's name in the message.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from jit_audit.grouping import DEFAULT_MAX_GROUPS, DEFAULT_TARGET_BYTES, MIB

# Bucket names: 3-63 chars of lowercase letters, digits, dots and hyphens (AWS's rules).
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]\Z")
# Table names: 3-255 chars of letters, digits, '_', '-', '.'.
_TABLE = re.compile(r"[A-Za-z0-9_.-]{3,255}\Z")
_PREFIX_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f\\]")
# Connection ids: what Airflow itself accepts (letters, digits, '_', '.', '-'), at most 250 chars.
_CONN_ID = re.compile(r"[A-Za-z0-9_.-]{1,250}\Z")
# KMS keys as S3 takes them: a key id, an alias, or a key/alias ARN.
_KMS_KEY = re.compile(
    r"(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32}|alias/[A-Za-z0-9/_-]{1,250}"
    r"|arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:(?:key/[A-Za-z0-9-]{1,64}|alias/[A-Za-z0-9/_-]{1,250}))\Z"
)


#: KMS signing algorithms for ledger entries (jit_audit.ledger verifies both with the public key).
LEDGER_SIGNING_ALGORITHMS = ("ECDSA_SHA_256", "RSASSA_PSS_SHA_256")


@dataclass(frozen=True)
class SettingSpec:
    """One Airflow Variable the export reads."""

    variable: str
    default: str
    description: str


SETTINGS: tuple[SettingSpec, ...] = (
    SettingSpec("jit_audit_table", "jit_audit", "DynamoDB table to export."),
    SettingSpec("jit_audit_export_bucket", "jit-audit-exports", "S3 bucket that receives exports and JSON Lines."),
    SettingSpec("jit_audit_export_prefix", "exports", "Key prefix inside the bucket (no leading slash needed)."),
    SettingSpec("jit_audit_aws_conn_id", "aws_default", "Airflow connection used for DynamoDB and S3."),
    SettingSpec("jit_audit_export_kms_key_id", "", "KMS key id/ARN: when set, exports are written with SSE-KMS."),
    SettingSpec("jit_audit_export_bucket_owner", "", "Account id owning the bucket, when it is another account."),
    SettingSpec("jit_audit_export_timeout_minutes", "360", "How long to wait for DynamoDB to finish an export."),
    SettingSpec("jit_audit_retention_min_days", "365", "S3 lifecycle must keep exports at least this many days."),
    SettingSpec("jit_audit_retention_max_days", "", "If set, S3 lifecycle must expire exports within this many days."),
    SettingSpec("jit_audit_pitr_min_recovery_days", "35", "Minimum point-in-time recovery period of the table."),
    SettingSpec("jit_audit_export_mode", "full", "full: a snapshot per run; incremental: a full baseline once, then changes."),
    SettingSpec("jit_audit_incremental_period_minutes", "1440", "Incremental mode: each run exports the changes of this many minutes before its export time (15-1440; match the schedule)."),
    SettingSpec("jit_audit_require_versioning", "false", "Retention check: the bucket must have versioning enabled."),
    SettingSpec("jit_audit_require_object_lock", "false", "Retention check: the bucket must have S3 Object Lock with a default COMPLIANCE retention of at least jit_audit_retention_min_days."),
    SettingSpec("jit_audit_require_encryption", "true", "Retention check: the bucket must have default encryption (SSE-KMS with jit_audit_export_kms_key_id when that is set)."),
    SettingSpec("jit_audit_require_public_access_block", "true", "Retention check: the bucket's public access block must have all four settings on."),
    SettingSpec("jit_audit_pseudonymise_actor_email", "false", "Replace actor_email addresses in every output (exports and ad-hoc results) with a keyed HMAC (hmac-sha256:<hex>), so reviewers can correlate actors without seeing addresses."),
    SettingSpec("jit_audit_ledger_signing_key_id", "", "KMS asymmetric key (id, alias or ARN; key usage SIGN_VERIFY): when set, every publication ledger entry is signed with it (docs/integrity.md)."),
    SettingSpec("jit_audit_ledger_signing_algorithm", "ECDSA_SHA_256", "KMS signing algorithm for ledger entries: ECDSA_SHA_256 (an ECC_NIST_P256 key) or RSASSA_PSS_SHA_256 (an RSA key)."),
    SettingSpec("jit_audit_pseudonymisation_conn_id", "jit_audit_pseudonymisation", "Airflow connection whose password is the HMAC key (at least 32 bytes) when actor_email is pseudonymised."),
    SettingSpec("jit_audit_flatten_max_tasks", str(DEFAULT_MAX_GROUPS), "Most flatten tasks a run maps (1-65536, and at most Airflow's [core] max_map_length, 1024 by default): the export's data files are grouped into at most this many tasks, whatever their number (docs/flattening.md)."),
    SettingSpec("jit_audit_flatten_target_mib", str(DEFAULT_TARGET_BYTES // MIB), "About this many MiB of data files per flatten task (1-65536). Each file also counts 4 MiB for its round trips (at 256, small files go about 64 to a task); past jit_audit_flatten_max_tasks tasks, tasks grow instead."),
)


class SettingsError(ValueError):
    """A setting has a value the export cannot use."""


@dataclass(frozen=True)
class ExportSettings:
    table: str
    bucket: str
    prefix: str
    aws_conn_id: str
    kms_key_id: str | None
    bucket_owner: str | None
    export_timeout_minutes: int
    retention_min_days: int
    retention_max_days: int | None
    pitr_min_recovery_days: int
    export_mode: str
    incremental_period_minutes: int
    require_versioning: bool = False
    require_object_lock: bool = False
    require_encryption: bool = True
    require_public_access_block: bool = True
    pseudonymise_actor_email: bool = False
    pseudonymisation_conn_id: str = "jit_audit_pseudonymisation"
    ledger_signing_key_id: str | None = None
    ledger_signing_algorithm: str = "ECDSA_SHA_256"
    #: The flatten step's grouping (jit_audit.grouping): at most this many tasks...
    flatten_max_tasks: int = DEFAULT_MAX_GROUPS
    #: ...of about this many bytes of data files each.
    flatten_target_bytes: int = DEFAULT_TARGET_BYTES

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _int(name: str, text: str, low: int, high: int) -> int:
    try:
        value = int(text.strip())
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, got {text!r}") from None
    if not low <= value <= high:
        raise SettingsError(f"{name} must be between {low} and {high}, got {value}")
    return value


def load_settings(
    lookup: Callable[[str], str | None], label: Callable[[str], str] = lambda variable: f"Variable {variable}"
) -> ExportSettings:
    """Build validated settings from ``lookup(variable_name)`` (None or missing: the default).

    Errors name a setting as ``label(variable_name)`` says: "Variable jit_audit_table" by default; the
    CLI names its own flags instead.
    """
    raw = {}
    for spec in SETTINGS:
        value = lookup(spec.variable)
        raw[spec.variable] = spec.default if value is None else str(value)

    table = raw["jit_audit_table"].strip()
    if not _TABLE.match(table):
        raise SettingsError(f"{label('jit_audit_table')}: {table!r} is not a valid DynamoDB table name")
    bucket = raw["jit_audit_export_bucket"].strip()
    if not _BUCKET.match(bucket):
        raise SettingsError(f"{label('jit_audit_export_bucket')}: {bucket!r} is not a valid S3 bucket name")
    prefix = raw["jit_audit_export_prefix"].strip().strip("/")
    if _PREFIX_FORBIDDEN.search(prefix) or len(prefix) > 512:
        raise SettingsError(f"{label('jit_audit_export_prefix')} has control characters or is too long")
    if {".", ".."} & set(prefix.split("/")) or "//" in prefix:
        raise SettingsError(f"{label('jit_audit_export_prefix')} must not contain '.', '..' or empty path "
                            f"segments (S3 keeps them literally; many tools do not), got {prefix!r}")
    conn_id = _connection_id(label("jit_audit_aws_conn_id"), raw["jit_audit_aws_conn_id"])
    kms_key_id = raw["jit_audit_export_kms_key_id"].strip() or None
    if kms_key_id is not None and not _KMS_KEY.match(kms_key_id):
        raise SettingsError(f"{label('jit_audit_export_kms_key_id')}: {kms_key_id!r} is not a KMS key id, alias or ARN")
    owner = raw["jit_audit_export_bucket_owner"].strip() or None
    if owner is not None and not re.fullmatch(r"[0-9]{12}", owner):
        raise SettingsError(f"{label('jit_audit_export_bucket_owner')} must be a 12-digit account id, got {owner!r}")
    min_days = _int(label("jit_audit_retention_min_days"), raw["jit_audit_retention_min_days"], 1, 36500)
    max_text = raw["jit_audit_retention_max_days"].strip()
    max_days = _int(label("jit_audit_retention_max_days"), max_text, 1, 36500) if max_text else None
    if max_days is not None and max_days < min_days:
        raise SettingsError(
            f"{label('jit_audit_retention_max_days')} ({max_days}) is below {label('jit_audit_retention_min_days')} ({min_days})"
        )
    pseudonymise = _bool(label("jit_audit_pseudonymise_actor_email"), raw["jit_audit_pseudonymise_actor_email"])
    pseudonymisation_conn_id = raw["jit_audit_pseudonymisation_conn_id"].strip()
    if pseudonymise and not pseudonymisation_conn_id:
        raise SettingsError(f"{label('jit_audit_pseudonymisation_conn_id')} must name a connection when "
                            f"{label('jit_audit_pseudonymise_actor_email')} is true")
    if pseudonymisation_conn_id:
        _connection_id(label("jit_audit_pseudonymisation_conn_id"), pseudonymisation_conn_id)
    signing_key_id = raw["jit_audit_ledger_signing_key_id"].strip() or None
    if signing_key_id is not None and not _KMS_KEY.match(signing_key_id):
        raise SettingsError(f"{label('jit_audit_ledger_signing_key_id')}: {signing_key_id!r} is not a KMS key id, "
                            "alias or ARN")
    signing_algorithm = raw["jit_audit_ledger_signing_algorithm"].strip().upper()
    if signing_algorithm not in LEDGER_SIGNING_ALGORITHMS:
        raise SettingsError(f"{label('jit_audit_ledger_signing_algorithm')} must be one of {', '.join(LEDGER_SIGNING_ALGORITHMS)}, "
                            f"got {raw['jit_audit_ledger_signing_algorithm']!r}")
    return ExportSettings(
        table=table,
        bucket=bucket,
        prefix=prefix,
        aws_conn_id=conn_id,
        kms_key_id=kms_key_id,
        bucket_owner=owner,
        export_timeout_minutes=_int(label("jit_audit_export_timeout_minutes"), raw["jit_audit_export_timeout_minutes"], 1, 7 * 24 * 60
        ),
        retention_min_days=min_days,
        retention_max_days=max_days,
        pitr_min_recovery_days=_int(label("jit_audit_pitr_min_recovery_days"), raw["jit_audit_pitr_min_recovery_days"], 1, 35
        ),
        export_mode=_mode(label("jit_audit_export_mode"), raw["jit_audit_export_mode"]),
        # DynamoDB accepts incremental windows from 15 minutes to 24 hours.
        incremental_period_minutes=_int(label("jit_audit_incremental_period_minutes"), raw["jit_audit_incremental_period_minutes"], 15, 1440
        ),
        require_versioning=_bool(label("jit_audit_require_versioning"), raw["jit_audit_require_versioning"]),
        require_object_lock=_bool(label("jit_audit_require_object_lock"), raw["jit_audit_require_object_lock"]),
        require_encryption=_bool(label("jit_audit_require_encryption"), raw["jit_audit_require_encryption"]),
        require_public_access_block=_bool(label("jit_audit_require_public_access_block"), raw["jit_audit_require_public_access_block"]
        ),
        pseudonymise_actor_email=pseudonymise,
        pseudonymisation_conn_id=pseudonymisation_conn_id,
        ledger_signing_key_id=signing_key_id,
        ledger_signing_algorithm=signing_algorithm,
        flatten_max_tasks=_int(label("jit_audit_flatten_max_tasks"), raw["jit_audit_flatten_max_tasks"], 1, 65536),
        flatten_target_bytes=MIB * _int(label("jit_audit_flatten_target_mib"), raw["jit_audit_flatten_target_mib"], 1, 65536),
    )


def _connection_id(name: str, text: str) -> str:
    value = text.strip()
    if not value:
        raise SettingsError(f"{name} must not be empty")
    if not _CONN_ID.match(value):
        raise SettingsError(f"{name} must be a connection id (letters, digits, '_', '.', '-'), got {value!r}")
    return value


_TRUE = ("true", "1", "yes")
_FALSE = ("false", "0", "no")


def _bool(name: str, text: str) -> bool:
    """Strict booleans: true/false, 1/0, yes/no (any case); anything else is refused."""
    value = text.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise SettingsError(f"{name} must be true or false (also 1/0, yes/no), got {text!r}")


def _mode(name: str, text: str) -> str:
    mode = text.strip().lower()
    if mode not in ("full", "incremental"):
        raise SettingsError(f"{name} must be 'full' or 'incremental', got {text!r}")
    return mode
