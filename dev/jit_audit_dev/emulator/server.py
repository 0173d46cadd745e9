"""Installing the patches into moto and serving it: :func:`install`, :func:`serve`, :class:`EmulatorThread`."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterable
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any, Unpack

if TYPE_CHECKING:
    from moto.server import ThreadedMotoServer

from jit_audit_dev.emulator.bulk import BULK_LOAD_PATH, _serve_bulk_load
from jit_audit_dev.emulator.exports import (
    _backend_describe_export,
    _backend_export_table,
    _backend_list_exports,
    _handle_describe_export,
    _handle_export_table_to_point_in_time,
    _handle_list_exports,
)
from jit_audit_dev.emulator.faults import (
    _RESET_PATH,
    FAULTS_PATH,
    REQUESTS_PATH,
    _fault_state,
    _json_response,
    _read_body,
    _serve_aws,
    _serve_faults,
    _serve_requests,
    _StartResponse,
)
from jit_audit_dev.emulator.history import (
    WRITE_TIME_HEADER,
    _backend_transact_write_items,
    _backend_update_item,
    _check_backdated_request,
    _table_delete_item,
    _table_put_item,
    _writes_stamped_from,
)
from jit_audit_dev.emulator.pitr import (
    _backend_describe_continuous_backups,
    _backend_update_continuous_backups,
)
from jit_audit_dev.emulator.s3 import _s3_put_object
from jit_audit_dev.emulator.state import (
    _ERROR_PREFIX,
    CLOCK_PATH,
    EmulatorSettings,
    _clock_state,
    _offset_micros,
    _originals,
    _set_clock_offset_micros,
    _Settings,
    set_settings,
)

# WRITE_TIME_HEADER as WSGI names it.
_WRITE_TIME_ENVIRON = "HTTP_" + WRITE_TIME_HEADER.upper().replace("-", "_")
_install_lock = threading.Lock()
_installed = False


def install(
    *,
    pitr_history_days: float = 35,
    pitr_lag_seconds: float = 300,
    export_seconds: float = 2.0,
    items_per_data_file: int = 1000,
    clock_offset_seconds: float = 0.0,
) -> None:
    """Patch moto in this process (idempotent; calling again updates the settings).

    The patches are applied once, on moto's classes, so they serve moto's server threads as well as
    ``mock_aws`` in this process.  Every call replaces *all* settings (omitted ones go back to their
    defaults, the clock offset included), because the settings are process-wide, not per server.

    :param pitr_history_days: how long point-in-time recovery pretends to have been enabled before
        it really was, so that past ``ExportTime`` values are exportable in tests.
    :param pitr_lag_seconds: how far ``LatestRestorableDateTime`` trails the current time.
    :param export_seconds: how long an export stays ``IN_PROGRESS`` before its files are written.
    :param items_per_data_file: items (lines) per ``data/*.json.gz`` object, so that small tables
        still produce several data files.
    :param clock_offset_seconds: added to the real time to give the emulator's "now" (write stamps,
        export times, the PITR window); negative values write "in the past".  Also settable at
        run time through :data:`CLOCK_PATH`.
    """
    global _installed
    if pitr_history_days < 0 or pitr_lag_seconds < 0 or export_seconds < 0:
        raise ValueError("pitr_history_days, pitr_lag_seconds and export_seconds must be >= 0")
    if items_per_data_file < 1:
        raise ValueError("items_per_data_file must be >= 1")
    offset_micros = _offset_micros(clock_offset_seconds)
    with _install_lock:
        set_settings(_Settings(
            pitr_history_days=pitr_history_days,
            pitr_lag_seconds=pitr_lag_seconds,
            export_seconds=export_seconds,
            items_per_data_file=items_per_data_file,
        ))
        _set_clock_offset_micros(offset_micros)
        if not _installed:
            _patch_moto()
            _installed = True


def _patch_moto() -> None:
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table
    from moto.dynamodb.responses import DynamoHandler

    _originals["describe_continuous_backups"] = DynamoDBBackend.describe_continuous_backups
    _originals["update_continuous_backups"] = DynamoDBBackend.update_continuous_backups
    _originals["update_item"] = DynamoDBBackend.update_item
    _originals["transact_write_items"] = DynamoDBBackend.transact_write_items
    _originals["table_put_item"] = Table.put_item
    _originals["table_delete_item"] = Table.delete_item
    # setattr: these are deliberate monkeypatches of moto's classes (mypy forbids method assignment).
    # Write history: every item write reaches Table.put_item / Table.delete_item (PutItem,
    # BatchWriteItem, TransactWriteItems, PartiQL) except UpdateItem, which edits the stored item in
    # place and is therefore recorded at the backend level.
    setattr(Table, "put_item", _table_put_item)  # noqa: B010
    setattr(Table, "delete_item", _table_delete_item)  # noqa: B010
    setattr(DynamoDBBackend, "update_item", _backend_update_item)  # noqa: B010
    setattr(DynamoDBBackend, "transact_write_items", _backend_transact_write_items)  # noqa: B010
    setattr(DynamoDBBackend, "describe_continuous_backups", _backend_describe_continuous_backups)  # noqa: B010
    setattr(DynamoDBBackend, "update_continuous_backups", _backend_update_continuous_backups)  # noqa: B010
    setattr(DynamoDBBackend, "export_table", _backend_export_table)  # noqa: B010
    setattr(DynamoDBBackend, "describe_export", _backend_describe_export)  # noqa: B010
    setattr(DynamoDBBackend, "list_exports", _backend_list_exports)  # noqa: B010
    setattr(DynamoHandler, "export_table_to_point_in_time", _handle_export_table_to_point_in_time)  # noqa: B010
    setattr(DynamoHandler, "describe_export", _handle_describe_export)  # noqa: B010
    setattr(DynamoHandler, "list_exports", _handle_list_exports)  # noqa: B010
    from moto.s3.responses import S3Response

    _originals["s3_put_object"] = S3Response.put_object
    setattr(S3Response, "put_object", _s3_put_object)  # noqa: B010







class _ControlMiddleware:
    """WSGI wrapper in front of moto: the emulator's own endpoints, the request log and the faults.

    It answers :data:`CLOCK_PATH`, :data:`FAULTS_PATH`, :data:`REQUESTS_PATH` and
    :data:`~.bulk.BULK_LOAD_PATH` itself, clears faults and the request log when moto is reset
    (``POST /moto-api/reset``), and passes every AWS request to moto through :func:`_serve_aws`
    (backdating the writes of a request that carries :data:`WRITE_TIME_HEADER`).  Like moto's
    ``/moto-api/`` endpoints it answers on any host name.
    """

    def __init__(self, app: Callable[[dict[str, Any], _StartResponse], Iterable[bytes]]) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: _StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == CLOCK_PATH:
            return self._clock(environ, start_response)
        if path == FAULTS_PATH:
            return _serve_faults(environ, start_response)
        if path == REQUESTS_PATH:
            return _serve_requests(environ, start_response)
        if path == BULK_LOAD_PATH:
            return _serve_bulk_load(environ, start_response)
        if path.startswith("/moto-api/"):
            result = self.app(environ, start_response)
            if path == _RESET_PATH and environ.get("REQUEST_METHOD") == "POST":
                _fault_state.clear_faults()
                _fault_state.clear_requests()
            return result
        return _serve_aws(self._backdating, environ, start_response)

    def _backdating(self, environ: dict[str, Any], start_response: _StartResponse) -> Iterable[bytes]:
        """moto, with the writes of a request carrying WRITE_TIME_HEADER stamped with their own times.

        Such a request is checked whole first and refused (DynamoDB's ValidationException, HTTP 400,
        nothing written) unless every item or key it writes carries its time.
        """
        attribute = environ.get(_WRITE_TIME_ENVIRON)
        if attribute is None:
            return self.app(environ, start_response)
        operation = environ.get("HTTP_X_AMZ_TARGET", "").rpartition(".")[2]
        try:
            try:
                _check_backdated_request(operation, json.loads(_read_body(environ) or b"null"), attribute)
            except (json.JSONDecodeError, AttributeError, TypeError):
                raise ValueError(f"{WRITE_TIME_HEADER}: malformed {operation} request body") from None
        except ValueError as exc:
            error = {"__type": _ERROR_PREFIX + "ValidationException", "message": str(exc)}
            return _json_response(environ, start_response, 400, error, "")
        with _writes_stamped_from(attribute):
            return self.app(environ, start_response)

    @staticmethod
    def _clock(environ: dict[str, Any], start_response: _StartResponse) -> Iterable[bytes]:
        """``GET`` returns ``{"offset_seconds", "now", "now_epoch_seconds"}``; ``POST`` with the JSON
        body ``{"offset_seconds": <number>}`` sets the offset and returns the same document."""
        from werkzeug.wrappers import Request

        request = Request(environ)
        status = 200
        if request.method == "POST":
            try:
                payload = json.loads(request.get_data() or b"null")
                if not isinstance(payload, dict) or "offset_seconds" not in payload:
                    raise ValueError('expected a JSON object {"offset_seconds": <number>}')
                _set_clock_offset_micros(_offset_micros(payload["offset_seconds"]))
                body: dict[str, Any] = _clock_state()
            except ValueError as exc:  # json.JSONDecodeError is a ValueError
                status, body = 400, {"message": str(exc)}
        elif request.method in ("GET", "HEAD"):
            body = _clock_state()
        else:
            status, body = 405, {"message": f"{request.method} not allowed; use GET or POST"}
        return _json_response(environ, start_response, status, body, "GET, HEAD, POST")


def _wsgi_app() -> _ControlMiddleware:
    """moto's all-services app (as ``moto_server`` builds it), behind the emulator's own endpoints."""
    from moto.server import DomainDispatcherApplication, create_backend_app

    return _ControlMiddleware(DomainDispatcherApplication(create_backend_app))


def serve(host: str = "127.0.0.1", port: int = 5000, **settings: Unpack[EmulatorSettings]) -> None:
    """install(**settings) then run moto's server (all services, like ``moto_server``), blocking.

    Threaded, until SIGINT/SIGTERM, after which it returns normally (so a CLI can exit 0).  Logs
    ``jit-audit emulator listening on http://host:port`` to stderr once the socket is bound; with
    ``port=0`` the line carries the port the OS picked, which is how a parent process finds it.
    Werkzeug's per-request access lines are off unless the ``werkzeug`` logger was configured.
    """
    install(**settings)
    from moto.server import MotoRequestHandler
    from werkzeug.serving import make_server

    access_log = logging.getLogger("werkzeug")
    if access_log.level == logging.NOTSET:
        # No per-request lines unless asked for: a parent that pipes our stderr without reading it
        # would otherwise block the server once the pipe fills.  Errors are still logged.
        access_log.setLevel(logging.WARNING)

    server = make_server(
        host,
        port,
        _wsgi_app(),
        threaded=True,
        request_handler=MotoRequestHandler,
    )
    bound_port = int(server.server_address[1])
    os.environ.setdefault("MOTO_PORT", str(bound_port))  # as moto_server does; some URLs use it

    stopping = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        # Ask serve_forever() to return (from another thread: shutdown() waits for it) instead of
        # raising into whatever the main thread was doing, which could leave a lock or a request
        # thread half set up and server_close() waiting (seen once: no exit 60 s after SIGTERM).
        if not stopping.is_set():
            stopping.set()
            threading.Thread(target=server.shutdown, name="emulator-shutdown", daemon=True).start()

    previous: dict[signal.Signals, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, _on_signal)
    print(f"jit-audit emulator listening on http://{host}:{bound_port}", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:  # SIGINT when the handlers could not be installed (not the main thread)
        pass
    finally:
        server.server_close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


_server_class: type[ThreadedMotoServer] | None = None


def _threaded_server_class() -> type[ThreadedMotoServer]:
    """ThreadedMotoServer that serves the clock endpoint, reports bind errors and closes its socket
    (moto 5.2.5 does neither: a failed bind leaves start() waiting forever, and stop() leaves the
    port bound)."""
    global _server_class
    if _server_class is None:
        from moto.server import ThreadedMotoServer

        class _Server(ThreadedMotoServer):
            startup_error: BaseException | None = None

            def _server_entry(self) -> None:
                # ThreadedMotoServer._server_entry, with the clock endpoint in front of moto's app.
                from moto.server import MotoRequestHandler
                from werkzeug.serving import make_server

                try:
                    self._server = make_server(
                        self._ip_address, self._port, _wsgi_app(), True, request_handler=MotoRequestHandler
                    )
                    self._server_ready_event.set()
                    self._server.serve_forever()
                except BaseException as exc:  # handed to start()'s caller
                    self.startup_error = exc
                    self._server_ready_event.set()
                finally:
                    if self._server is not None:
                        self._server.server_close()

        _server_class = _Server
    return _server_class


class EmulatorThread:
    """The emulator on a background thread of this process, for tests and notebooks.

    ``with EmulatorThread(port=0, export_seconds=0.2) as emu: boto3.client(...,
    endpoint_url=emu.endpoint_url)``.  Port 0 picks a free port.  Backends are moto's process-wide
    state, so every EmulatorThread (and ``mock_aws``) in one process sees the same resources.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, **settings: Unpack[EmulatorSettings]) -> None:
        self.host = host
        self.port = port
        self._settings = settings
        self._server: ThreadedMotoServer | None = None

    @property
    def endpoint_url(self) -> str:
        """``http://host:port`` of the running server (raises if not started)."""
        if self._server is None:
            raise RuntimeError("EmulatorThread is not running; call start() first")
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> EmulatorThread:
        """install(**settings), then serve on a daemon thread; returns once the socket is bound."""
        if self._server is not None:
            return self
        install(**self._settings)
        server = _threaded_server_class()(ip_address=self.host, port=self.port, verbose=False)
        server.start()
        error = getattr(server, "startup_error", None)
        if error is not None:
            server.stop()
            raise RuntimeError(f"emulator could not listen on {self.host}:{self.port}") from error
        self.port = server.get_host_and_port()[1]
        self._server = server
        return self

    def stop(self) -> None:
        """Shut the server down and free its port (pending export timers are daemon threads)."""
        server, self._server = self._server, None
        if server is not None:
            server.stop()

    def __enter__(self) -> EmulatorThread:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
