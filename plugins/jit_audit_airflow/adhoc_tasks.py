"""The bodies of the ad-hoc query DAG's tasks: validation first, then the query itself."""

from __future__ import annotations

import logging
import re
from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from jit_audit.layout import normalise_prefix
from jit_audit.query import QueryParamError, parse_query
from jit_audit_airflow.ledger import ledger_settings, recorder
from jit_audit_airflow.settings import pseudonymiser, read_settings, upload_extra_args

log = logging.getLogger(__name__)

#: The runbook's Method 1: summaries from the JIT reporting API, routed before the DynamoDB queries.
API_SUMMARY = "api_summary"
JIT_API_CONN_VARIABLE = "jit_audit_api_conn_id"

_S3_URI = re.compile(r"s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/([^\x00-\x1f\x7f\\]*)\Z")


def output_location(settings: Any, run_id: str, override: str | None) -> tuple[str, str]:
    """Bucket and prefix of the results: ``<export prefix>/adhoc/<run id>/`` unless overridden."""
    if override:
        match = _S3_URI.match(override.strip())
        if not match:
            raise QueryParamError("output_uri", f"must look like s3://bucket/prefix/, got {override!r}")
        return match.group(1), normalise_prefix(match.group(2))
    safe_run_id = re.sub(r"[^A-Za-z0-9._-]+", "-", run_id).strip("-")
    return settings.bucket, normalise_prefix(settings.prefix) + normalise_prefix(f"adhoc/{safe_run_id}")


def _recorder(plan: dict[str, Any], s3: Any) -> Any:
    """The ledger append for this run's result (the export table's ledger; see jit_audit.ledger)."""
    return recorder(plan, s3, kind="adhoc", uri=f"s3://{plan['bucket']}/{plan['prefix']}", label=None)


def validate(params: dict[str, Any], run_id: str) -> dict[str, Any]:
    """Check the form (or API) parameters and the settings; fail at once, naming the field."""
    if params.get("query_by") == API_SUMMARY:
        return validate_api_summary(params, run_id)
    try:
        query = parse_query(params, require_scan_range=True)
        settings = read_settings()
        bucket, prefix = output_location(settings, run_id, params.get("output_uri"))
    except (QueryParamError, ValueError) as error:
        raise AirflowFailException(f"Bad parameter {error}") from error
    # A missing or unusable key fails here, before any AWS call; the key itself stays out of XCom.
    pseudonymiser(settings.pseudonymise_actor_email, settings.pseudonymisation_conn_id)
    log.info("Query %s -> s3://%s/%s%s", query.describe(), bucket, prefix,
             " (actor_email pseudonymised)" if settings.pseudonymise_actor_email else "")
    return {
        "params": dict(params),
        "table": settings.table,
        "aws_conn_id": settings.aws_conn_id,
        "bucket": bucket,
        "prefix": prefix,
        "upload_extra_args": upload_extra_args(settings),
        **ledger_settings(settings),
        "pseudonymise_actor_email": settings.pseudonymise_actor_email,
        "pseudonymisation_conn_id": settings.pseudonymisation_conn_id,
    }


def run_query(plan: dict[str, Any]) -> dict[str, Any]:
    """Run the validated query and publish its JSON Lines, ``_manifest.json`` and ``_SUCCESS``."""
    if plan["params"].get("query_by") == API_SUMMARY:
        return run_api_summary(plan)
    from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    from jit_audit.query import run_to_s3

    query = parse_query(plan["params"], require_scan_range=True)
    # A plain low-level client: DynamoDBHook.client belongs to a boto3 *resource*, which would
    # re-serialise our typed ExpressionAttributeValues ({"S": ...}) as maps and match nothing.
    s3 = S3Hook(aws_conn_id=plan["aws_conn_id"]).get_conn()
    try:
        summary = run_to_s3(
            AwsBaseHook(aws_conn_id=plan["aws_conn_id"], client_type="dynamodb").conn,
            s3,
            plan["table"],
            query,
            plan["bucket"],
            plan["prefix"],
            upload_extra_args=plan["upload_extra_args"],
            pseudonymiser=pseudonymiser(plan.get("pseudonymise_actor_email", False),
                                        plan.get("pseudonymisation_conn_id", "")),
            record=_recorder(plan, s3),
        )
    except QueryParamError as error:
        raise AirflowFailException(f"Bad parameter {error}") from error
    counts = summary["counts"]
    if summary["truncated_at_max_items"]:
        log.warning("Stopped at max_items=%d: there are more matching items", query.max_items)
    log.info("Counts by event type: %s", counts["by_event_type"])
    log.info("Wrote %d items to %s", counts["items"], summary["uri"])
    return {"uri": summary["uri"], "items": counts["items"], "by_event_type": counts["by_event_type"],
            "truncated_at_max_items": summary["truncated_at_max_items"]}


def validate_api_summary(params: dict[str, Any], run_id: str) -> dict[str, Any]:
    """Method 1's checks: channel, [start, end) in whole UTC seconds, output and the API Connection.

    The Connection is read and checked here (base URL, key id, secret; no request is made) so a
    missing or misconfigured one fails the first task, naming it.
    """
    from airflow.sdk import Variable
    from airflow.sdk.exceptions import AirflowNotFoundException

    from jit_audit.jit_api import JitApiError, parse_summary_query
    from jit_audit_airflow.hooks import JitApiHook

    try:
        query = parse_summary_query(params)
        if params.get("event_types"):
            raise QueryParamError("event_types", "summaries carry each request's latest status only; leave it empty")
        settings = read_settings()
        bucket, prefix = output_location(settings, run_id, params.get("output_uri"))
    except (QueryParamError, ValueError) as error:
        raise AirflowFailException(f"Bad parameter {error}") from error
    conn_id = Variable.get(JIT_API_CONN_VARIABLE, default=None) or JitApiHook.default_conn_name
    try:
        client = JitApiHook(jit_api_conn_id=conn_id).get_conn()
    except (AirflowNotFoundException, JitApiError) as error:
        raise AirflowFailException(f"JIT API connection {conn_id!r} (Variable {JIT_API_CONN_VARIABLE}): {error}") from error
    log.info("API summaries %s from %s -> s3://%s/%s", query.describe(), client.base_url, bucket, prefix)
    return {
        "params": dict(params),
        "jit_api_conn_id": conn_id,
        "aws_conn_id": settings.aws_conn_id,
        "bucket": bucket,
        "prefix": prefix,
        "upload_extra_args": upload_extra_args(settings),
        **ledger_settings(settings),
    }


def run_api_summary(plan: dict[str, Any]) -> dict[str, Any]:
    """Fetch every page of summaries and publish them; a refused signature or clock fails without retries."""
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    from jit_audit.jit_api import JitApiAuthError, parse_summary_query, summaries_to_s3
    from jit_audit_airflow.hooks import JitApiHook

    query = parse_summary_query(plan["params"])
    s3 = S3Hook(aws_conn_id=plan["aws_conn_id"]).get_conn()
    try:
        summary = summaries_to_s3(
            JitApiHook(jit_api_conn_id=plan["jit_api_conn_id"]).get_conn(),
            s3,
            query,
            plan["bucket"],
            plan["prefix"],
            upload_extra_args=plan["upload_extra_args"],
            record=_recorder(plan, s3),
        )
    except QueryParamError as error:
        raise AirflowFailException(f"Bad parameter {error}") from error
    except JitApiAuthError as error:  # the same key, secret and clock would be refused again
        raise AirflowFailException(str(error)) from error
    counts = summary["counts"]
    if summary["truncated_at_max_items"]:
        log.warning("Stopped at max_items=%d: the API has more summaries", query.max_items)
    log.info("Summaries by latest status: %s", counts["by_status"])
    log.info("Wrote %d summaries (%d pages) to %s", counts["items"], counts["pages"], summary["uri"])
    return {"uri": summary["uri"], "items": counts["items"], "by_status": counts["by_status"],
            "truncated_at_max_items": summary["truncated_at_max_items"]}
