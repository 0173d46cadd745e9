"""JitApiHook: the client built from an Airflow Connection (``AIRFLOW_CONN_JIT_API_DEFAULT``), used for real."""

from __future__ import annotations

import json

import pytest
from airflow.sdk import Connection
from jit_api_server import JitApiServer, running, summary

from jit_audit.jit_api import JitApiAuthError, JitApiError
from jit_audit_airflow.hooks import JitApiHook
from jit_audit_airflow.hooks.jit_api import base_url_from_connection

KEY_ID = "airflow-reader"
SECRET = "hook-secret-5a4b3c2d1e"
FIXTURE = [summary(index, "CH1", f"2026-01-{index + 1:02d}T12:00:00Z", "GRANTED") for index in range(1, 6)]


@pytest.fixture()
def server():
    with running(JitApiServer(keys={KEY_ID: SECRET}, summaries=FIXTURE, page_size=2)) as api:
        yield api


def set_connection(monkeypatch, conn_id: str = "jit_api_default", **fields) -> None:
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": "http", **fields}))


def test_the_default_connection_from_the_environment_signs_and_pages(server, monkeypatch):
    set_connection(monkeypatch, host=server.base_url, login=KEY_ID, password=SECRET, extra={"max_attempts": 2})
    hook = JitApiHook()
    assert hook.jit_api_conn_id == JitApiHook.default_conn_name == "jit_api_default"
    client = hook.get_conn()
    assert (client.base_url, client.key_id, client.max_attempts) == (server.base_url, KEY_ID, 2)
    items = client.request_summaries("CH1", "2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z")
    assert items == FIXTURE
    assert [seen.status for seen in server.requests] == [200, 200, 200]
    assert {seen.headers["x-jit-keyid"] for seen in server.requests} == {KEY_ID}


def test_another_connection_id_and_a_wrong_secret(server, monkeypatch):
    set_connection(monkeypatch, "jit_api_other", host=server.base_url, login=KEY_ID, password="wrong")
    with pytest.raises(JitApiAuthError, match="check the key id 'airflow-reader'"):
        JitApiHook(jit_api_conn_id="jit_api_other").get_conn().request_summaries(
            "CH1", "2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z")
    assert [seen.error for seen in server.requests] == ["bad_signature"]


@pytest.mark.parametrize("missing", ["login", "password"])
def test_a_connection_without_credentials_is_refused_by_name(monkeypatch, missing):
    fields = {"host": "https://jit.example.com", "login": KEY_ID, "password": SECRET}
    del fields[missing]
    set_connection(monkeypatch, **fields)
    with pytest.raises(JitApiError, match="'jit_api_default' needs the key id as login and the secret as password"):
        JitApiHook().get_conn()


def test_plain_http_to_a_remote_host_is_refused(monkeypatch):
    set_connection(monkeypatch, host="http://jit.example.com/api", login=KEY_ID, password=SECRET)
    with pytest.raises(JitApiError, match="refusing plain http"):
        JitApiHook().get_conn()


@pytest.mark.parametrize(
    ("connection", "url"),
    [
        (Connection(conn_id="a", conn_type="http", host="https://jit.example.com/api"), "https://jit.example.com/api"),
        (Connection.from_uri("https://k:s@jit.example.com:8443/api", conn_id="b"), "https://jit.example.com:8443/api"),
        (Connection(conn_id="c", conn_type="http", host="jit.example.com", schema="https", port=443,
                    extra=json.dumps({"base_path": "/v1/"})), "https://jit.example.com:443/v1"),
        (Connection(conn_id="d", conn_type="http", host="jit.example.com"), "https://jit.example.com"),
        (Connection(conn_id="e", conn_type="http", host="127.0.0.1", schema="http", port=8080), "http://127.0.0.1:8080"),
    ],
)
def test_base_url_from_each_connection_form(connection, url):
    assert base_url_from_connection(connection) == url


def test_the_secret_is_masked_in_task_logs(monkeypatch):
    from airflow.sdk._shared.secrets_masker import redact

    set_connection(monkeypatch, host="https://jit.example.com", login=KEY_ID, password=SECRET)
    JitApiHook().get_conn()
    assert redact(f"the secret is {SECRET}") == "the secret is ***"
