"""The JIT service's reporting API (runbook Method 1) as an Airflow hook.

The Connection (default ``jit_api_default``) holds everything; no key or secret lives in code:

* ``login``: the key id (sent as ``X-JIT-KeyID``); ``password``: the HMAC secret (never sent);
* the base URL, in either form:

  - the full URL in ``host``: ``{"conn_type": "http", "host": "https://jit.example.com/api",
    "login": "<key id>", "password": "<secret>"}`` (the only way to say plain ``http://``, which
    the client allows on loopback only);
  - a URI: ``AIRFLOW_CONN_JIT_API_DEFAULT='https://<key id>:<secret>@jit.example.com:8443/api'``
    (Airflow keeps the path in ``schema``); or host, port and ``schema`` set to ``https`` as
    Airflow's ``HttpHook`` has it, with the path in the extra ``base_path``.

  The scheme is https unless the URL says ``http://`` (or ``schema`` is ``http``): the UI's *HTTP*
  connection type says nothing about TLS.
* optional extras: ``timeout`` (seconds, default 30), ``max_attempts`` (default 4),
  ``backoff_seconds`` (default 0.5), ``base_path``.

See ``docs/jit-api.md`` for the signing scheme and paging.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

from jit_audit.jit_api import JitApiClient, JitApiError

if TYPE_CHECKING:
    from airflow.sdk import Connection

DEFAULT_CONN_ID = "jit_api_default"


def base_url_from_connection(conn: Connection) -> str:
    """The API's base URL from a Connection's host, port, schema and ``base_path`` extra."""
    host = (conn.host or "").strip()
    if not host:
        raise JitApiError(f"connection {conn.conn_id!r} has no host: put the API's https:// base URL there")
    if "://" in host:
        return host
    schema = (conn.schema or "").strip()
    if schema.lower() in ("http", "https"):
        scheme, path = schema.lower(), str(conn.extra_dejson.get("base_path") or "")
    else:
        scheme, path = "https", schema or str(conn.extra_dejson.get("base_path") or "")
    port = f":{conn.port}" if conn.port else ""
    return f"{scheme}://{host}{port}/{path.strip('/')}".rstrip("/")


class JitApiHook(BaseHook):
    """Signed access to the JIT reporting API, configured by an Airflow Connection.

    :param jit_api_conn_id: the Connection holding the base URL, key id and secret
    """

    conn_name_attr = "jit_api_conn_id"
    default_conn_name = DEFAULT_CONN_ID
    conn_type = "http"
    hook_name = "JIT reporting API"

    def __init__(self, jit_api_conn_id: str = DEFAULT_CONN_ID, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.jit_api_conn_id = jit_api_conn_id

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """What the Connection form calls its fields, so nobody has to read this file to fill it."""
        return {
            "hidden_fields": [],
            "relabeling": {"host": "Base URL (https://...)", "login": "Key id", "password": "Secret"},
            "placeholders": {"host": "https://jit.example.com/api", "login": "X-JIT-KeyID",
                             "extra": '{"timeout": 30, "max_attempts": 4}'},
        }

    @cached_property
    def connection(self) -> Connection:
        return self.get_connection(self.jit_api_conn_id)

    def get_conn(self) -> JitApiClient:
        """A client for the Connection's API; fails naming the Connection if a field is missing."""
        conn = self.connection  # reading it masks its password in every task log line
        if not conn.login or not conn.password:
            raise JitApiError(f"connection {conn.conn_id!r} needs the key id as login and the secret as password")
        extra = conn.extra_dejson
        try:
            timeout = float(extra.get("timeout", 30))
            max_attempts = int(extra.get("max_attempts", 4))
            backoff_seconds = float(extra.get("backoff_seconds", 0.5))
        except (TypeError, ValueError):
            raise JitApiError(f"connection {conn.conn_id!r}: timeout, max_attempts and backoff_seconds must be numbers") from None
        return JitApiClient(base_url_from_connection(conn), conn.login, conn.password, timeout=timeout,
                            max_attempts=max_attempts, backoff_seconds=backoff_seconds)
