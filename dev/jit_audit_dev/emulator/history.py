"""Write history: every item write recorded on moto's table, for incremental and point-in-time exports.

A write is stamped with the emulator's clock, unless its request carries :data:`WRITE_TIME_HEADER`
(the seeder's backdated writes): then each item is stamped with the time its named attribute begins with.
A bulk load (:mod:`.bulk`) records each of its items as a :class:`_LoadedWrite`, the put of a new item
kept as its export line; the first write that addresses one moves it into moto's table first.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.dynamo_type import Item
    from moto.dynamodb.models.table import Table

from jit_audit_dev.emulator.state import _EPOCH, _iso_micros, _micros, _now_micros, _originals

_HISTORY_ATTR = "_jit_audit_write_history"
#: The emulator-only request header that backdates writes: its value names a string attribute that
#: begins with an ISO 8601 time with a zone (``2026-11-25T10:00:00.123Z#...``); each item the request
#: writes is recorded at that time instead of the emulator's now.  PutItem and BatchWriteItem only.
WRITE_TIME_HEADER = "X-Jit-Audit-Emulator-Write-Time-Attribute"
# The operations a backdated request may be: the ones whose request body holds every item (or key) it writes.
_BACKDATED_OPERATIONS = ("PutItem", "BatchWriteItem")
_LEADING_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?(?:Z|[+-]\d\d:\d\d)")


@dataclass(frozen=True, slots=True)
class _Write:
    """One item write, in DynamoDB JSON (moto's ``Item.to_json()["Attributes"]`` dicts)."""

    micros: int  # emulator-clock epoch microseconds
    keys: dict[str, Any]
    old: dict[str, Any] | None  # None: the item did not exist before
    new: dict[str, Any] | None  # None: the write deleted it


@dataclass(frozen=True, slots=True)
class _LoadedWrite:
    """A bulk-loaded item (:mod:`.bulk`): the put of an item the table never had, at ``micros``.

    It holds what a full export writes for the item (its line and moto's size estimate) instead of
    a moto item and an image of dicts, which for millions of items would take gigabytes and minutes.
    """

    micros: int
    key: str  # _key_of(the item's key attributes)
    line: str  # the export's line: {"Item":{...}} and a newline
    size: int  # _item_size(the item)
    key_names: tuple[str, ...]  # the table's key attributes, hash key first

    def as_write(self) -> _Write:
        """The same write as a :class:`_Write` (parses the line)."""
        image = json.loads(self.line)["Item"]
        return _Write(self.micros, {name: image[name] for name in self.key_names}, None, image)


class _History:
    """A table incarnation's writes, oldest first.

    Hung on moto's Table object, so it lives and dies with the table (DeleteTable, moto's reset).
    Copying returns the same object: TransactWriteItems deep-copies tables to roll back, and the
    copy must keep appending to the one history (and not duplicate it).
    """

    __slots__ = ("backdated_from", "loaded", "lock", "writes")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.writes: list[_Write | _LoadedWrite] = []
        # The earliest stamp of a backdated write (epoch µs), which the PITR window must cover.
        self.backdated_from: int | None = None
        # Bulk-loaded items not yet in moto's table, by key (see _materialise).
        self.loaded: dict[str, _LoadedWrite] = {}

    def __copy__(self) -> _History:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> _History:
        return self


# Per request thread: suppress (UpdateItem's own inner put is not a separate write), buffer
# (TransactWriteItems: writes become history only if the whole transaction succeeds) and
# write_time_attribute (a backdated request: the attribute each write's stamp is read from).
_tls = threading.local()


def _history(table: Table) -> _History:
    history = table.__dict__.get(_HISTORY_ATTR)
    if history is None:
        history = table.__dict__.setdefault(_HISTORY_ATTR, _History())  # atomic under the GIL
    return cast(_History, history)


def _key_of(keys: dict[str, Any]) -> str:
    """An item's identity in the history: its key attributes (DynamoDB JSON) as canonical JSON."""
    from moto.dynamodb.models.utilities import DynamoJsonEncoder

    return json.dumps(keys, cls=DynamoJsonEncoder, sort_keys=True)


def _item_size(image: dict[str, Any]) -> int:
    """moto's size estimate of an item (Item.size(): attribute names plus values), from its image."""
    from moto.dynamodb.models.dynamo_type import DynamoType, bytesize

    return sum(bytesize(name) + DynamoType(value).size() for name, value in image.items())


def _materialise(table: Table, key_source: dict[str, Any]) -> None:
    """Before a write addresses a bulk-loaded item, put it into moto's table (unrecorded: the
    history has its write already), so the write finds it exactly as if it had been PutItem'd:
    its old image, a condition on it, a delete of it."""
    history = table.__dict__.get(_HISTORY_ATTR)
    if not isinstance(history, _History) or not history.loaded:
        return
    try:
        key = _key_of({name: key_source[name] for name in table.table_key_attrs})
    except (KeyError, TypeError):
        return  # not a whole key: moto refuses the request itself
    from moto.dynamodb.models.dynamo_type import DynamoType, Item

    # Under the lock from pop to insert: a second write to the same key (another request thread)
    # waits until the item is in moto's table instead of finding it in neither place.
    with history.lock:
        loaded = history.loaded.pop(key, None)
        if loaded is None:
            return
        image = json.loads(loaded.line)["Item"]
        hash_value = DynamoType(image[table.hash_key_attr])
        range_value = DynamoType(image[table.range_key_attr]) if table.range_key_attr else None
        item = Item(hash_value, range_value, image)
        if range_value is not None:
            table.items[hash_value][range_value] = item
        else:
            table.items[hash_value] = item  # type: ignore[assignment]  # moto's own line does the same


def _image(item: Item | None) -> dict[str, Any] | None:
    # A fresh structure: moto edits stored items in place (UpdateItem), the snapshot must not move.
    return cast(dict[str, Any], item.to_json()["Attributes"]) if item is not None else None


def _record(table: Table, old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
    image = new if new is not None else old
    if image is None:
        return
    keys = {name: image[name] for name in table.table_key_attrs if name in image}
    attribute: str | None = getattr(_tls, "write_time_attribute", None)
    if attribute is None:
        micros = _now_micros()
    else:
        # The request was checked before moto saw it: every item and key it writes carries the time.
        micros = cast(int, _leading_time_micros(image[attribute]))
        _note_backdated(table, micros)
    write = _Write(micros, keys, old, new)
    buffer: list[tuple[Table, _Write]] | None = getattr(_tls, "buffer", None)
    if buffer is not None:
        buffer.append((table, write))
        return
    _append(table, write)


def _append(table: Table, write: _Write) -> None:
    history = _history(table)
    with history.lock:
        history.writes.append(write)


def _note_backdated(table: Table, micros: int) -> None:
    history = _history(table)
    with history.lock:
        if history.backdated_from is None or micros < history.backdated_from:
            history.backdated_from = micros


def _backdated_from(table: Table) -> datetime | None:
    """The earliest backdated write of the table, if any: point-in-time recovery must reach back to it."""
    history = table.__dict__.get(_HISTORY_ATTR)
    if not isinstance(history, _History):
        return None
    with history.lock:
        micros = history.backdated_from
    return None if micros is None else _EPOCH + timedelta(microseconds=micros)


def _leading_time_micros(value: Any) -> int | None:
    """Epoch µs of the ISO 8601 time (with a zone) a DynamoDB string value begins with, else None."""
    text = value.get("S") if isinstance(value, dict) else None
    match = _LEADING_TIME.match(text) if isinstance(text, str) else None
    if match is None:
        return None
    return _micros(datetime.fromisoformat(match.group(0).replace("Z", "+00:00")))


def _check_backdated_request(operation: str, body: dict[str, Any], attribute: str) -> None:
    """Refuse (ValueError) a backdated request unless every item or key it writes carries its write
    time in ``attribute``, no later than the emulator's now: checked before moto writes anything.

    A malformed body raises AttributeError or TypeError.
    """
    if operation not in _BACKDATED_OPERATIONS:
        raise ValueError(f"{WRITE_TIME_HEADER} applies to {' and '.join(_BACKDATED_OPERATIONS)} only, not {operation}")
    if operation == "PutItem":
        written = [body.get("Item")]
    else:
        written = []
        for requests in (body.get("RequestItems") or {}).values():
            for request in requests:
                put = request.get("PutRequest")
                written.append(put.get("Item") if put else (request.get("DeleteRequest") or {}).get("Key"))
    now = _now_micros()
    for image in written:
        micros = _leading_time_micros(image.get(attribute) if isinstance(image, dict) else None)
        if micros is None:
            raise ValueError(
                f"{WRITE_TIME_HEADER}: every item and key written must have a string attribute {attribute!r} "
                "beginning with an ISO 8601 time with a zone, e.g. 2026-11-25T10:00:00.123Z"
            )
        if micros > now:
            raise ValueError(
                f"{WRITE_TIME_HEADER}: a write cannot be dated {_iso_micros(micros)}, after the emulator's now "
                f"{_iso_micros(now)}"
            )


@contextmanager
def _writes_stamped_from(attribute: str) -> Iterator[None]:
    """Within this request's thread, stamp each recorded write with the time in ``attribute``."""
    _tls.write_time_attribute = attribute
    try:
        yield
    finally:
        _tls.write_time_attribute = None


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
    _materialise(self, item_attrs)
    if _suppressed():
        return cast("Item", _originals["table_put_item"](self, item_attrs, *args, **kwargs))
    old = _image(_stored_item(self, item_attrs))
    item = cast("Item", _originals["table_put_item"](self, item_attrs, *args, **kwargs))
    _record(self, old, _image(item))
    return item


def _table_delete_item(self: Table, hash_key: Any, range_key: Any) -> Item | None:
    if self.range_key_attr is None or range_key is not None:  # moto's DynamoType keys
        keys = {self.hash_key_attr: hash_key.to_json()}
        if self.range_key_attr is not None:
            keys[self.range_key_attr] = range_key.to_json()
        _materialise(self, keys)
    item = cast("Item | None", _originals["table_delete_item"](self, hash_key, range_key))
    if item is not None and not _suppressed():  # deleting a missing item writes nothing
        _record(self, _image(item), None)
    return item


def _backend_update_item(
    self: DynamoDBBackend, table_name: str, key: dict[str, Any], *args: Any, **kwargs: Any
) -> Item:
    table = self.tables.get(table_name)
    if table is not None:
        _materialise(table, key)
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
