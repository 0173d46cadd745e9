"""Point-in-time recovery: the restorable window, computed at each call."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table

from jit_audit_dev.emulator.history import _backdated_from
from jit_audit_dev.emulator.state import (
    _DEFAULT_RECOVERY_PERIOD_DAYS,
    _aware,
    _now,
    _originals,
    _validation_error,
    current_settings,
)


def _pitr_view(continuous_backups: dict[str, Any], table: Table | None) -> dict[str, Any]:
    """A copy of moto's stored description with the restorable window computed for *now*.

    moto stores ``unix_time()`` of the moment PITR was enabled under EarliestRestorableDateTime and
    never updates it; we read it as the enable time and never write the stored dict, so the window
    keeps sliding with the clock the way AWS's does.
    """
    view = dict(continuous_backups)
    stored = dict(view.get("PointInTimeRecoveryDescription") or {})
    if stored.get("PointInTimeRecoveryStatus") == "ENABLED":
        earliest, latest = _pitr_window(stored, _now(), table)
        stored["EarliestRestorableDateTime"] = earliest
        stored["LatestRestorableDateTime"] = latest
        stored.setdefault("RecoveryPeriodInDays", _DEFAULT_RECOVERY_PERIOD_DAYS)
    else:
        stored = {"PointInTimeRecoveryStatus": stored.get("PointInTimeRecoveryStatus", "DISABLED")}
    view["PointInTimeRecoveryDescription"] = stored
    return view


def _pitr_window(stored: dict[str, Any], now: datetime, table: Table | None) -> tuple[datetime, datetime]:
    """(EarliestRestorableDateTime, LatestRestorableDateTime) at ``now``.

    Recovery is taken to have been on since ``pitr_history_days`` before it was enabled, or since
    the table's earliest backdated write if that is older (a backdated write says it happened then),
    but never for longer than the recovery period.
    """
    settings = current_settings()
    enabled_at = _aware(stored.get("EarliestRestorableDateTime")) or now
    since = enabled_at - timedelta(days=settings.pitr_history_days)
    backdated_from = _backdated_from(table) if table is not None else None
    if backdated_from is not None:
        since = min(since, backdated_from)
    period_days = int(stored.get("RecoveryPeriodInDays") or _DEFAULT_RECOVERY_PERIOD_DAYS)
    earliest = max(since, now - timedelta(days=period_days))
    # Keep the window well-formed just after enabling with pitr_history_days=0.
    latest = max(now - timedelta(seconds=settings.pitr_lag_seconds), earliest)
    return earliest, latest


def _backend_describe_continuous_backups(self: DynamoDBBackend, table_name: str) -> dict[str, Any]:
    return _pitr_view(_originals["describe_continuous_backups"](self, table_name), self.tables.get(table_name))


def _backend_update_continuous_backups(
    self: DynamoDBBackend, table_name: str, point_in_time_spec: dict[str, Any]
) -> dict[str, Any]:
    period = point_in_time_spec.get("RecoveryPeriodInDays")
    if period is not None and not 1 <= int(period) <= _DEFAULT_RECOVERY_PERIOD_DAYS:
        # botocore only checks the minimum client-side; the service enforces 1..35.
        raise _validation_error(
            f"1 validation error detected: Value '{period}' at "
            "'pointInTimeRecoverySpecification.recoveryPeriodInDays' failed to satisfy constraint: "
            f"Member must have value {'less' if int(period) > 1 else 'greater'} than or equal to "
            f"{_DEFAULT_RECOVERY_PERIOD_DAYS if int(period) > 1 else 1}"
        )
    table = self.tables.get(table_name)  # a missing table is moto's error to raise, below
    before = dict(table.continuous_backups.get("PointInTimeRecoveryDescription") or {}) if table else {}
    result = _originals["update_continuous_backups"](self, table_name, point_in_time_spec)
    stored = result.get("PointInTimeRecoveryDescription") or {}
    if (
        before.get("PointInTimeRecoveryStatus") != "ENABLED"
        and stored.get("PointInTimeRecoveryStatus") == "ENABLED"
    ):
        # moto stamps the enable time with the real clock; use the emulator's (offset) clock.
        enabled_at = _now().timestamp()
        stored["EarliestRestorableDateTime"] = enabled_at
        stored["LatestRestorableDateTime"] = enabled_at
    return _pitr_view(result, table)
