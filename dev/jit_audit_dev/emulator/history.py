"""Write history: every item write recorded on moto's table, for incremental and point-in-time exports."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.dynamo_type import Item
    from moto.dynamodb.models.table import Table

from jit_audit_dev.emulator.state import _now_micros, _originals

_HISTORY_ATTR = "_jit_audit_write_history"


@dataclass(frozen=True, slots=True)
class _Write:
    """One item write, in DynamoDB JSON (moto's ``Item.to_json()["Attributes"]`` dicts)."""

    micros: int  # emulator-clock epoch microseconds
    keys: dict[str, Any]
    old: dict[str, Any] | None  # None: the item did not exist before
    new: dict[str, Any] | None  # None: the write deleted it


class _History:
    """A table incarnation's writes, oldest first.

    Hung on moto's Table object, so it lives and dies with the table (DeleteTable, moto's reset).
    Copying returns the same object: TransactWriteItems deep-copies tables to roll back, and the
    copy must keep appending to the one history (and not duplicate it).
    """

    __slots__ = ("lock", "writes")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.writes: list[_Write] = []

    def __copy__(self) -> _History:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> _History:
        return self


# Per request thread: suppress (UpdateItem's own inner put is not a separate write) and buffer
# (TransactWriteItems: writes become history only if the whole transaction succeeds).
_tls = threading.local()


def _history(table: Table) -> _History:
    history = table.__dict__.get(_HISTORY_ATTR)
    if history is None:
        history = table.__dict__.setdefault(_HISTORY_ATTR, _History())  # atomic under the GIL
    return cast(_History, history)


def _image(item: Item | None) -> dict[str, Any] | None:
    # A fresh structure: moto edits stored items in place (UpdateItem), the snapshot must not move.
    return cast(dict[str, Any], item.to_json()["Attributes"]) if item is not None else None


def _record(table: Table, old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
    image = new if new is not None else old
    if image is None:
        return
    keys = {name: image[name] for name in table.table_key_attrs if name in image}
    write = _Write(_now_micros(), keys, old, new)
    buffer: list[tuple[Table, _Write]] | None = getattr(_tls, "buffer", None)
    if buffer is not None:
        buffer.append((table, write))
        return
    _append(table, write)


def _append(table: Table, write: _Write) -> None:
    history = _history(table)
    with history.lock:
        history.writes.append(write)


def _suppressed() -> bool:
    return bool(getattr(_tls, "suppress", 0))


def _stored_item(table: Table, key: dict[str, Any]) -> Item | None:
    """The item a request's key (or full item) addresses, or None (also for malformed keys)."""
    from moto.dynamodb.models.dynamo_type import DynamoType

    try:
        hash_value = DynamoType(key[table.hash_key_attr])
        range_value = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
        return table.get_item(hash_value, range_value)
    except Exception:  # moto raises its own validation error for the request itself
        return None


def _table_put_item(self: Table, item_attrs: dict[str, Any], *args: Any, **kwargs: Any) -> Item:
    if _suppressed():
        return cast("Item", _originals["table_put_item"](self, item_attrs, *args, **kwargs))
    old = _image(_stored_item(self, item_attrs))
    item = cast("Item", _originals["table_put_item"](self, item_attrs, *args, **kwargs))
    _record(self, old, _image(item))
    return item


def _table_delete_item(self: Table, hash_key: Any, range_key: Any) -> Item | None:
    item = cast("Item | None", _originals["table_delete_item"](self, hash_key, range_key))
    if item is not None and not _suppressed():  # deleting a missing item writes nothing
        _record(self, _image(item), None)
    return item


def _backend_update_item(
    self: DynamoDBBackend, table_name: str, key: dict[str, Any], *args: Any, **kwargs: Any
) -> Item:
    table = self.tables.get(table_name)
    old = _image(_stored_item(table, key)) if table is not None else None
    _tls.suppress = getattr(_tls, "suppress", 0) + 1
    try:
        item = cast("Item", _originals["update_item"](self, table_name, key, *args, **kwargs))
    finally:
        _tls.suppress -= 1
    if not _suppressed():
        _record(self.get_table(table_name), old, _image(item))
    return item


def _backend_transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
    if getattr(_tls, "buffer", None) is not None:  # not reentrant in moto either; be safe
        _originals["transact_write_items"](self, transact_items)
        return
    buffer: list[tuple[Table, _Write]] = []
    _tls.buffer = buffer
    try:
        _originals["transact_write_items"](self, transact_items)
    finally:
        _tls.buffer = None
    for table, write in buffer:  # reached only when the transaction committed
        _append(table, write)
