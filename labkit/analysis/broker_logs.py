"""What a broker's own log says about a partition: when it led or followed, and what it cut.

Pure: parses the text of a Kafka 4 broker's ``server.log`` (``LocalCluster.log_tail``), no
Kafka client. Two kinds of line matter to the replication lessons:

- ``[Broker id=1] Follower t-0 starts at leader epoch 1 from offset 1658 ... Current leader
  is 2``: the broker stopped leading (or started following) with 1658 records in its log;
- ``[ReplicaFetcher replicaId=1, ...] Truncating partition t-0 with
  TruncationState(offset=201, ...)``: it then cut its log back to offset 201, to match the
  leader of the new epoch: the records from 201 to 1658 are gone from it.
"""

from __future__ import annotations

import re

import pandas as pd

TRUNCATION_COLUMNS = ("time", "topic", "partition", "log_end", "truncated_to", "records",
                      "new_leader", "leader_epoch")
"""The columns of ``truncations``, one row per truncation of a partition's log.

time (the log line's local time, a Timestamp), topic, partition, log_end (the log end offset
when the broker became a follower), truncated_to (the offset it cut back to), records
(log_end - truncated_to: the records it removed), new_leader and leader_epoch (of the
epoch it followed).
"""

_STAMP = r"^\[(?P<time>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\] INFO "
_FOLLOWER = re.compile(_STAMP + r"\[Broker id=\d+\] Follower (?P<tp>\S+) starts at leader epoch "
                       r"(?P<epoch>\d+) from offset (?P<offset>\d+).*Current leader is "
                       r"(?P<leader>-?\d+)")
_TRUNCATE = re.compile(_STAMP + r"\[ReplicaFetcher [^\]]*\] Truncating partition (?P<tp>\S+) "
                       r"with TruncationState\(offset=(?P<offset>\d+)")


def _topic_partition(name: str) -> tuple[str, int]:
    topic, _, partition = name.rpartition("-")
    return topic, int(partition)


def truncations(log_text: str, topics) -> pd.DataFrame:
    """Every truncation of ``topics``' partitions in a broker's log, with the log end before.

    Each ``Truncating partition`` line is paired with the last ``Follower ... starts``
    line of its partition before it, which gave the log end offset.

    Args:
        log_text: the broker's ``server.log`` text.
        topics: the topic names to look at.

    Returns:
        One row per truncation (``TRUNCATION_COLUMNS``), in log order.
    """
    wanted = set(topics)
    follows: dict[tuple[str, int], tuple[int, int, int]] = {}
    rows = []
    for line in log_text.splitlines():
        if (match := _FOLLOWER.match(line)) is not None:
            tp = _topic_partition(match["tp"])
            if tp[0] in wanted:
                follows[tp] = (int(match["offset"]), int(match["leader"]), int(match["epoch"]))
        elif (match := _TRUNCATE.match(line)) is not None:
            tp = _topic_partition(match["tp"])
            if tp[0] in wanted and tp in follows:
                log_end, leader, epoch = follows[tp]
                to = int(match["offset"])
                rows.append({"time": pd.Timestamp(match["time"].replace(",", ".")),
                             "topic": tp[0], "partition": tp[1], "log_end": log_end,
                             "truncated_to": to, "records": max(0, log_end - to),
                             "new_leader": leader, "leader_epoch": epoch})
    return pd.DataFrame(rows, columns=list(TRUNCATION_COLUMNS))
