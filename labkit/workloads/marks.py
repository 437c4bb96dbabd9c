r"""How a lab message names itself: its run, its msg_id and its send time.

Every message labkit's producers send carries its run id, its ``msg_id`` and the wall-clock
time it was handed to the client, so that any reader, in any process, can match what it reads
to what was sent, count copies and measure end-to-end latency. By default the three travel in
a 24-byte **mark** at the start of the value, before the payload:

======= ======= ===========================================================================
bytes   format  field
0-3     ``4s``  ``b"lab\x01"``: the lab's magic, format 1
4-7     ``4s``  the run id: its 8 hex digits as 4 bytes (``ProducerRun.run_id``)
8-15    ``>Q``  msg_id, 0.. in send order within the run
16-23   ``>q``  send time, nanoseconds since the epoch (wall clock)
======= ======= ===========================================================================

So a 100-byte message is a 24-byte mark and 76 bytes of payload. The mark costs one
``struct.pack`` and one concatenation per message, where two headers cost the client
conversions of its own; it also survives any tool that copies values (``kcat``, a
consume-transform-produce worker).

Where a lesson is about headers, ``id_in="headers"`` carries the same three in two headers
instead, and the value is the payload alone:

- ``lab.id``: ``b"<run_id>:<msg_id>"``
- ``lab.ts``: send time, nanoseconds since the epoch, 8 bytes big-endian

Readers keep what names a message with ``mark_of`` while they read (a 24-byte slice, or the
headers), or with ``marks_of`` for a whole batch, and decode it later with ``lab_ids`` or, for
many at once, ``decode``.
"""

from __future__ import annotations

import operator
import struct
import uuid
from collections.abc import Sequence

import numpy as np
import pandas as pd
from confluent_kafka import Message

MAGIC = b"lab\x01"
MARK = struct.Struct(">8sQq")  # magic + run id (8 bytes), msg_id, send ns
MARK_SIZE = MARK.size
ID_AT = struct.Struct(">Q")  # the msg_id, at byte 8 of a mark
ID_PLACES = ("value", "headers")
NOT_LAB = ("", -1, float("nan"))
_SLICE = operator.itemgetter(slice(0, MARK_SIZE))
_MAGIC_U8 = np.frombuffer(MAGIC, dtype=np.uint8)
_FEWEST_FOR_A_BLOCK = 16  # below this, one NumPy check costs more than a mark_of each
_DECODE = np.dtype([("magic", "S4"), ("run", ">u4"), ("msg_id", ">u8"), ("sent_ns", ">i8")])


def new_run_id() -> str:
    """A fresh run id: 8 hex digits (the 4 bytes a mark carries)."""
    return uuid.uuid4().hex[:8]


def head(run_id: str) -> bytes:
    """The first 8 bytes of every mark of a run: the magic and the run id.

    Raises:
        ValueError: ``run_id`` is not 8 hex digits.
    """
    try:
        raw = bytes.fromhex(run_id)
    except ValueError:
        raw = b""
    if len(raw) != 4:
        raise ValueError(f"run_id={run_id!r} must be 8 hex digits (see new_run_id)")
    return MAGIC + raw


def mark(run_id: str, msg_id: int, sent_ns: int) -> bytes:
    """The 24-byte mark of one message (the producers pack it inline, for speed)."""
    return MARK.pack(head(run_id), msg_id, sent_ns)


def headers(run_id: str, msg_id: int, sent_ns: int) -> list[tuple[str, bytes]]:
    """The ``lab.id`` and ``lab.ts`` headers that name a message with ``id_in="headers"``."""
    return [("lab.id", f"{run_id}:{msg_id}".encode()), ("lab.ts", struct.pack(">q", sent_ns))]


def mark_of(msg) -> bytes | tuple | None:
    """What a reader keeps of a message to name it later, cheaply.

    The value's 24-byte mark if it has one, else its headers as a tuple (a tuple of atomic
    values stays out of the cyclic GC's way), else None.
    """
    value = msg.value()
    if value is not None and value[:4] == MAGIC and len(value) >= MARK_SIZE:
        return value[:MARK_SIZE]
    found = msg.headers()
    return tuple(found) if found else None


def marks_of(msgs: Sequence[Message]) -> bytes | list:
    """What a reader keeps of a batch of messages to name them later, with no Python call each.

    If every message's value starts with a mark: the marks, sliced and joined in C, as one
    ``bytes`` of ``len(msgs) * MARK_SIZE`` (no object per message, nothing for the cyclic GC
    to scan). Otherwise a list of ``mark_of`` per message. ``each`` turns either back into one
    item per message.
    """
    n = len(msgs)
    if n < _FEWEST_FOR_A_BLOCK:
        return [mark_of(m) for m in msgs]
    try:
        block = b"".join(map(_SLICE, map(Message.value, msgs)))
    except TypeError:  # a value that is None
        block = b""
    # Each slice is at most MARK_SIZE bytes, so the length holds only if every one is whole.
    if len(block) == n * MARK_SIZE and (
            np.frombuffer(block, dtype=np.uint8).reshape(n, MARK_SIZE)[:, :4] == _MAGIC_U8).all():
        return block
    return [mark_of(m) for m in msgs]


def each(kept: bytes | list) -> list:
    """One kept item per message (what ``mark_of`` returns) from what ``marks_of`` returned."""
    if isinstance(kept, bytes):
        return [kept[i:i + MARK_SIZE] for i in range(0, len(kept), MARK_SIZE)]
    return kept


def read(kept) -> tuple[str, int, int]:
    """Decode what ``mark_of`` kept into (run_id, msg_id, send time in ns since the epoch).

    Raises:
        ValueError: it names no lab message (no mark and no lab headers).
    """
    if isinstance(kept, bytes) and len(kept) >= MARK_SIZE and kept[:4] == MAGIC:
        first, msg_id, sent_ns = MARK.unpack_from(kept)
        return first[4:].hex(), msg_id, sent_ns
    found = dict(kept or ())
    try:
        run_id, msg_id = found["lab.id"].decode().split(":")
        (sent_ns,) = struct.unpack(">q", found["lab.ts"])
    except (KeyError, ValueError, AttributeError, struct.error):
        raise ValueError("not a lab message: its value has no lab mark and it has no lab.id "
                         "and lab.ts headers") from None
    return run_id, int(msg_id), sent_ns


def lab_ids(kept) -> tuple[str, int, float]:
    """(run_id, msg_id, send time in s) of what ``mark_of`` kept; ("", -1, nan) if not a lab one."""
    try:
        run_id, msg_id, sent_ns = read(kept)
    except ValueError:
        return NOT_LAB
    return run_id, msg_id, sent_ns / 1e9


def decode(kept: Sequence) -> pd.DataFrame:
    """Decode many kept marks at once: columns run_id, msg_id, t_produced (s since the epoch).

    Marks are decoded as one NumPy array; headers (``id_in="headers"``) one by one. Rows that
    name no lab message get ("", -1, nan).
    """
    n = len(kept)
    run_id = np.full(n, "", dtype=object)
    msg_id = np.full(n, -1, dtype=np.int64)
    sent = np.full(n, np.nan)
    marked = [i for i, k in enumerate(kept)
              if isinstance(k, bytes) and len(k) == MARK_SIZE and k[:4] == MAGIC]
    if marked:
        run_id[marked], msg_id[marked], sent[marked] = _fields(b"".join([kept[i] for i in marked]))
    if len(marked) < n:
        chosen = set(marked)
        for i, k in enumerate(kept):
            if i not in chosen:
                run_id[i], msg_id[i], sent[i] = lab_ids(k)
    return pd.DataFrame({"run_id": run_id, "msg_id": msg_id, "t_produced": sent})


def decode_batches(batches: Sequence[bytes | list]) -> pd.DataFrame:
    """``decode`` of what ``marks_of`` returned for each of many batches, in their order.

    When every batch is a block (every message was marked), the blocks are decoded as one
    array as they are, without being cut into marks and joined again.
    """
    if not all(isinstance(b, bytes) for b in batches):
        return decode([k for b in batches for k in each(b)])
    run_id, msg_id, sent = _fields(b"".join(batches))
    return pd.DataFrame({"run_id": run_id, "msg_id": msg_id, "t_produced": sent})


def _fields(joined: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """run_id (object), msg_id and send time (s) of marks joined end to end."""
    fields = np.frombuffer(joined, dtype=_DECODE)
    runs, which = np.unique(fields["run"], return_inverse=True)
    return (np.array([f"{r:08x}" for r in runs], dtype=object)[which],
            fields["msg_id"].astype(np.int64), fields["sent_ns"] / 1e9)
