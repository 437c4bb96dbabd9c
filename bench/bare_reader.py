"""A bare confluent-kafka reader, in a process of its own: the end-to-end bench's like-for-like
reference for labkit's readers.

It is assigned every partition of one topic from the beginning (no group, so no rebalance),
calls ``poll()`` for one message at a time with the client's defaults, and stamps each lab
message with ``time.time_ns()`` when ``poll()`` returned it. The send time comes from the
message's 24-byte mark (see ``labkit.workloads.marks``; read here with ``struct`` alone, so the
reader holds no labkit code on its path). It prints ``ready`` once its first fetches have been
answered, reads until it has ``count`` lab messages (its topic is fresh: one run wrote it)
or has read nothing for ``--idle-s`` seconds, and saves ``[msg_id, end-to-end ns]`` rows
to ``out`` (``.npy``).

Run by ``e2e_bench.py``; by hand: ``python bench/bare_reader.py HOST:PORT TOPIC 3 N out.npy``.
"""

from __future__ import annotations

import argparse
import struct
import sys
import time

import numpy as np
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

MARK = struct.Struct(">4s4sQq")  # magic, run id, msg_id, send ns: labkit.workloads.marks.MARK
MAGIC = b"lab\x01"


def main(argv: list[str] | None = None) -> None:
    """Read one run's messages and save their end-to-end latencies."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bootstrap")
    parser.add_argument("topic")
    parser.add_argument("partitions", type=int)
    parser.add_argument("count", type=int, help="lab messages to read before stopping")
    parser.add_argument("out", help="where to np.save the [msg_id, e2e ns] rows")
    parser.add_argument("--idle-s", type=float, default=30.0)
    args = parser.parse_args(argv)
    consumer = Consumer({"bootstrap.servers": args.bootstrap, "group.id": "bare-reader",
                         "enable.auto.commit": False})
    rows: list[tuple[int, int]] = []
    try:
        consumer.assign([TopicPartition(args.topic, p, OFFSET_BEGINNING)
                         for p in range(args.partitions)])
        consumer.poll(1.0)  # connects and starts fetching; the topic is still empty
        print("ready", flush=True)
        poll, now, unpack, append = consumer.poll, time.time_ns, MARK.unpack_from, rows.append
        last = time.monotonic()
        while len(rows) < args.count and time.monotonic() - last < args.idle_s:
            msg = poll(0.1)
            if msg is None or msg.error():
                continue
            received = now()
            value = msg.value()
            if value is None or len(value) < MARK.size:
                continue
            magic, _run, msg_id, sent = unpack(value)
            if magic == MAGIC:
                append((msg_id, received - sent))
                last = time.monotonic()
    finally:
        consumer.close()
    np.save(args.out, np.array(rows, dtype=np.int64).reshape(-1, 2))


if __name__ == "__main__":
    sys.exit(main())
