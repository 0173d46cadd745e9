"""S3 conditional writes decided atomically, as S3 does."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    pass

from jit_audit_dev.emulator.state import _originals

# moto checks If-None-Match / If-Match and then writes, unlocked: two concurrent conditional writes
# of one key could both succeed. S3 decides them atomically (one wins, the other gets 412), and the
# publication ledger relies on that, so the emulator writes objects one at a time.
_put_object_lock = threading.Lock()


def _s3_put_object(self: Any) -> Any:
    with _put_object_lock:
        return _originals["s3_put_object"](self)
