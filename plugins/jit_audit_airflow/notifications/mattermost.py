"""Failure alerts to a chat channel through a Mattermost incoming webhook (Slack-compatible body).

The webhook URL lives in an Airflow Connection (default ``jit_audit_alerts_webhook``), in either form:

* a URI: ``AIRFLOW_CONN_JIT_AUDIT_ALERTS_WEBHOOK='https://chat.example.com/hooks/<token>'``
  (Airflow parses it into conn type ``https``, host, port and, for the path, ``schema``);
* the full URL in ``host`` (what the UI's HTTP form and JSON take):
  ``{"conn_type": "http", "host": "https://chat.example.com/hooks/<token>"}``.

Optional extras: ``username``, ``icon_url``, ``channel`` (Mattermost's overrides; the webhook must
allow them), ``timeout`` (seconds, default 10) and ``enabled`` (``false`` switches alerts off).
The token in the URL's path is a secret: it is masked, and only ``https://chat.example.com/hooks/***``
ever reaches a log line. ``urllib`` posts the alert (``HttpHook`` would log the full URL).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow.sdk import BaseHook

from jit_audit.alerts import Alert, MissedDeadline, chat_payload, redact_url
from jit_audit_airflow.notifications.failure import (
    AlertDeliveryError,
    FailureAlertNotifier,
    scrub,
)

if TYPE_CHECKING:
    from airflow.sdk import Connection

DEFAULT_CONN_ID = "jit_audit_alerts_webhook"
DEFAULT_TIMEOUT_SECONDS = 10.0


def webhook_url(conn: Connection) -> str:
    """The webhook URL a Connection holds: the full URL in ``host``, or a parsed URI."""
    host = (conn.host or "").strip()
    if "://" in host:
        url = host
    else:
        scheme = conn.conn_type if conn.conn_type in ("http", "https") else "https"
        port = f":{conn.port}" if conn.port else ""
        url = f"{scheme}://{host}{port}/{(conn.schema or '').lstrip('/')}"
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path.strip("/") == "":
        raise AlertDeliveryError(
            f"connection {conn.conn_id!r} holds no webhook URL (got {redact_url(url)}): put the full "
            "https://<server>/hooks/<token> URL in its host, or define it as that URI"
        )
    return url


def _secret_parts(url: str) -> list[str]:
    """The path segments after the first (``hooks/<token>`` -> the token): what redaction hides."""
    segments = [segment for segment in urlsplit(url).path.split("/") if segment]
    return [url, *segments[1:]]


class IncomingWebhookHook(BaseHook):
    """Posts JSON to an incoming webhook whose URL is kept in an Airflow Connection.

    :param webhook_conn_id: the Connection holding the URL (see the module's docstring)
    """

    conn_name_attr = "webhook_conn_id"
    default_conn_name = DEFAULT_CONN_ID
    conn_type = "http"
    hook_name = "Incoming webhook"

    def __init__(self, webhook_conn_id: str = DEFAULT_CONN_ID, connection: Connection | None = None) -> None:
        super().__init__()
        self.webhook_conn_id = webhook_conn_id
        self._connection = connection

    @cached_property
    def connection(self) -> Connection:
        return self._connection or self.get_connection(self.webhook_conn_id)

    @cached_property
    def url(self) -> str:
        from airflow.sdk.log import mask_secret

        url = webhook_url(self.connection)
        for secret in _secret_parts(url)[1:]:
            mask_secret(secret)
        return url

    @property
    def redacted_url(self) -> str:
        return redact_url(self.url)

    @cached_property
    def extra(self) -> dict[str, Any]:
        return self.connection.extra_dejson

    def redact(self, text: str) -> str:
        """``text`` without the webhook URL or its token."""
        try:
            return scrub(text, _secret_parts(self.url))
        except Exception:
            return text

    def get_conn(self) -> str:
        return self.url

    def post(self, payload: dict[str, Any]) -> int:
        """POST ``payload`` as JSON; raise :class:`AlertDeliveryError` (token-free) unless 2xx."""
        timeout = float(self.extra.get("timeout", DEFAULT_TIMEOUT_SECONDS))
        request = urllib.request.Request(
            self.url, data=json.dumps(payload).encode(), method="POST",
            headers={"Content-Type": "application/json", "User-Agent": "jit-audit-export-alerts"},
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (http/https only, checked)
                return int(response.status)
        except urllib.error.HTTPError as error:
            body = self.redact(error.read(500).decode(errors="replace"))
            raise AlertDeliveryError(f"{self.redacted_url} answered HTTP {error.code}: {' '.join(body.split())}") from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise AlertDeliveryError(f"{self.redacted_url} unreachable: {self.redact(str(reason))}") from None


class MattermostFailureNotifier(FailureAlertNotifier):
    """DAG-level ``on_failure_callback``: one chat message per failed run, with what to do next.

    The deadline callback sends its missed-deadline alert through it too (:meth:`send`).

    :param webhook_conn_id: Connection holding the webhook URL (absent: chat alerts are off)
    :param username: overrides the webhook's display name (else the Connection's ``username`` extra)
    :param icon_url: overrides the webhook's icon (else the ``icon_url`` extra)
    :param channel: overrides the webhook's channel (else the ``channel`` extra)
    """

    kind = "Chat webhook alert"
    template_fields: Sequence[str] = ("webhook_conn_id", "username", "icon_url", "channel")

    def __init__(self, *, webhook_conn_id: str | None = DEFAULT_CONN_ID, username: str | None = None,
                 icon_url: str | None = None, channel: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.webhook_conn_id = webhook_conn_id
        self.username = username
        self.icon_url = icon_url
        self.channel = channel

    @cached_property
    def hook(self) -> IncomingWebhookHook | None:
        """The webhook, or None when its Connection is absent or switched off."""
        conn = self.alert_connection(self.webhook_conn_id)
        return IncomingWebhookHook(self.webhook_conn_id or DEFAULT_CONN_ID, connection=conn) if conn else None

    def redact(self, text: str) -> str:
        hook = self.__dict__.get("hook")  # only a hook already built: redaction must not fetch anything
        return hook.redact(text) if hook is not None else text

    def deliver(self, alert: Alert) -> bool:
        hook = self.hook
        if hook is None:
            return False
        payload = chat_payload(
            alert,
            username=self.username or hook.extra.get("username"),
            icon_url=self.icon_url or hook.extra.get("icon_url"),
            channel=self.channel or hook.extra.get("channel"),
        )
        status = hook.post(payload)
        kind = "Missed-deadline" if isinstance(alert, MissedDeadline) else "Failure"
        self.log.info("%s alert for %s / %s sent to %s (HTTP %s)", kind, alert.dag_id, alert.run_id,
                      hook.redacted_url, status)
        return True
