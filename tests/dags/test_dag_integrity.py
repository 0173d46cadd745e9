"""Every DAG file imports cleanly, follows the house rules, and reads no Variable at parse time."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

DAGS = Path(__file__).resolve().parents[2] / "dags"
DAG_FILES = sorted(path for path in DAGS.glob("*.py") if path.name != "__init__.py")


def test_there_are_dag_files():
    assert [path.name for path in DAG_FILES] == ["jit_audit_adhoc.py", "jit_audit_export.py"]


def test_dagbag_has_no_import_errors(dagbag):
    assert dagbag.import_errors == {}
    assert {"jit_audit_export", "jit_audit_adhoc"} <= set(dagbag.dags)


@pytest.mark.parametrize("dag_id", ["jit_audit_export", "jit_audit_adhoc"])
def test_house_rules(dagbag, dag_id):
    dag = dagbag.dags[dag_id]
    assert "jit-audit" in dag.tags
    assert dag.doc_md and dag.doc_md.strip().startswith("###")
    assert dag.max_active_runs >= 1
    for task in dag.tasks:
        assert task.owner == "platform-security", task.task_id
        assert task.retry_delay.total_seconds() > 0, task.task_id


def test_export_dag_steps_run_in_the_runbook_order(dagbag):
    dag = dagbag.dags["jit_audit_export"]
    order = ["plan", "wait_for_restorable_time", "start_export", "wait_for_export", "list_data_files",
             "flatten_data_files", "publish_snapshot", "check_retention"]
    for upstream, downstream in zip(order, order[1:], strict=False):
        assert upstream in dag.get_task(downstream).upstream_task_ids | {
            ancestor.task_id for ancestor in dag.get_task(downstream).get_flat_relatives(upstream=True)
        }, f"{upstream} must run before {downstream}"
    assert dag.get_task("wait_for_export").deferrable
    assert dag.get_task("publish_snapshot").outlets


def test_the_export_dag_carries_its_deadline(monkeypatch, airflow_db):
    """[jit_audit] export_deadline_minutes (default 6 h) after the logical date, sent from the triggerer.

    Parsed afresh with the option unset: the session's DagBag may run with it off (``dag.test()``).
    """
    from datetime import timedelta

    from airflow.dag_processing.dagbag import DagBag
    from airflow.sdk import AsyncCallback, DeadlineReference
    from airflow.serialization.serialized_objects import DagSerialization

    monkeypatch.delenv("AIRFLOW__JIT_AUDIT__EXPORT_DEADLINE_MINUTES", raising=False)
    bag = DagBag(dag_folder=str(DAGS))
    export = bag.dags["jit_audit_export"]
    (alert,) = export.deadline
    assert alert.reference == DeadlineReference.DAGRUN_LOGICAL_DATE and alert.interval == timedelta(hours=6)
    # The logical date is the end of the data interval only with the cron *trigger* timetable.
    assert type(export.timetable).__name__ == "CronTriggerTimetable"
    assert isinstance(alert.callback, AsyncCallback)
    callback = DagSerialization.serialize_dag(export)["deadline"][0]["callback"]["__data__"]
    assert callback == {"path": "jit_audit_airflow.notifications.deadline.notify_missed_deadline", "kwargs": {}}
    assert not bag.dags["jit_audit_adhoc"].deadline  # triggered by hand: no deadline


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda path: path.name)
def test_dag_files_are_thin(path):
    """No Variable reads, hooks or AWS clients at module level: parse time stays cheap and offline."""
    tree = ast.parse(path.read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) for alias in node.names}
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not {"boto3", "Variable", "airflow.decorators", "airflow.models"} & imported
    top_level_calls = [
        ast.unparse(node.value.func) for node in tree.body if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)
    ]
    assert top_level_calls == [path.stem], top_level_calls


def test_parsing_reads_no_variable(monkeypatch, airflow_db):
    from airflow.dag_processing.dagbag import DagBag
    from airflow.sdk import Variable

    def refuse(*args, **kwargs):
        raise AssertionError("Variable read at DAG parse time")

    monkeypatch.setattr(Variable, "get", refuse)
    bag = DagBag(dag_folder=str(DAGS))
    assert bag.import_errors == {}
    assert {"jit_audit_export", "jit_audit_adhoc"} <= set(bag.dags)


def test_adhoc_form_is_typed_sectioned_and_described(dagbag):
    dag = dagbag.dags["jit_audit_adhoc"]
    assert type(dag.timetable).__name__ == "NullTimetable"  # triggered by hand only
    for name, param in dag.params.items():
        schema = param.schema
        assert schema.get("title") and param.description, name
        assert schema.get("section"), name
        assert "type" in schema, name
    assert dag.params.get_param("account_id").schema["pattern"] == "^[0-9]{12}$"
