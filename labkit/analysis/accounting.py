"""One accounting of messages: which were lost, which duplicated.

Every count in the lab of what became of messages comes from here: a producer run audited
against its topic (``labkit.analysis.audit``), what a consumer group processed
(``metrics.delivery_counts``, ``partition_delivery``), a side effect counted against its input
and a commit mode through a member's crash (``labkit.analysis.consumer_faults``), what a
share group processed twice (``labkit.analysis.share_groups``) and what the producer's
delivery reports said (``delivery_reports``). Ordering is the audit's alone (it needs the log's
offsets).

A message is named by a key: its ``msg_id`` (one run), or a ``(run_id, msg_id)`` tuple
(several runs). The vocabulary, one for all:

============== ==============================================================================
expected       messages that should arrive (e.g. acknowledged), each once
found          rows (copies) of expected messages that did arrive
distinct       expected messages found at least once
duplicates     copies beyond the first of each message: found - distinct
duplicated_ids messages found more than once
lost           expected messages found nowhere
foreign        rows of messages that were not expected
============== ==============================================================================
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

NOT_SENT = ("BufferError",)  # a producer record's ``error`` when the client never queued it

TALLY = ("expected", "found", "distinct", "duplicates", "duplicated_ids", "lost", "foreign")
"""The counts of ``tally`` and the columns of ``tally_by``, in order."""


def _keys(keys) -> pd.Index:
    """Message keys as a flat Index (of tuples for several runs; of a Series, its values)."""
    if isinstance(keys, pd.MultiIndex):
        return keys.to_flat_index()
    if isinstance(keys, pd.Index):
        return keys
    if isinstance(keys, pd.Series):
        return pd.Index(keys.to_numpy(), tupleize_cols=False)
    return pd.Index(list(keys), tupleize_cols=False)


def copy_number(keys) -> np.ndarray:
    """Which copy of its message each row is: 0 for the first, 1 for the second, ...

    Args:
        keys: the key of every row, in the order that decides which copy is first.

    Returns:
        One int per row.
    """
    codes, _ = _keys(keys).factorize()
    return pd.Series(codes).groupby(codes, sort=False).cumcount().to_numpy(dtype=np.int64)


def missing(expected, found) -> np.ndarray:
    """Which expected messages were found nowhere (lost).

    Args:
        expected: the key of each expected message.
        found: the key of every row that arrived.

    Returns:
        One bool per expected message, True for a lost one.
    """
    return ~_keys(expected).isin(_keys(found))


def tally_by(expected: pd.Series, found: pd.Series) -> pd.DataFrame:
    """The ``TALLY`` counts per group, e.g. per partition.

    A lost message counts in the group of its expected row; a copy counts in the group it was
    found in (the first copy, in ``found``'s order, is the one counted as distinct).

    Args:
        expected: the key of each expected message (values) and its group (index).
        found: the key of every row that arrived (values) and its group (index).

    Returns:
        Indexed by group (sorted), columns ``TALLY`` (ints).
    """
    wanted = _keys(expected)
    keys = _keys(found)
    mine = keys.isin(wanted)
    nth = copy_number(keys)
    rows = pd.DataFrame({"found": mine, "distinct": mine & (nth == 0),
                         "duplicated_ids": mine & (nth == 1), "foreign": ~mine},
                        index=found.index).astype(np.int64)
    per_found = rows.groupby(level=0).sum()
    per_expected = pd.DataFrame({"expected": 1, "lost": missing(wanted, keys).astype(np.int64)},
                                index=expected.index).groupby(level=0).sum()
    table = pd.concat([per_expected, per_found], axis=1).fillna(0).astype(np.int64)
    table["duplicates"] = table.found - table.distinct
    return table.reindex(columns=list(TALLY), fill_value=0).sort_index()


def tally(expected: Iterable, found: Iterable) -> dict[str, int]:
    """The ``TALLY`` counts of one stream of messages (module docstring: the words).

    Args:
        expected: the key of each expected message (each once).
        found: the key of every row that arrived, copies included.

    Returns:
        ``TALLY`` name -> count.
    """
    wanted, keys = _keys(expected), _keys(found)
    table = tally_by(pd.Series(wanted, index=np.zeros(len(wanted), dtype=np.int64), dtype=object),
                     pd.Series(keys, index=np.zeros(len(keys), dtype=np.int64), dtype=object))
    return {name: int(table[name].sum()) for name in TALLY}


def acked_keys(runs) -> pd.Index:
    """The ``(run_id, msg_id)`` keys of the messages some producer runs had acknowledged.

    Args:
        runs: a ``ProducerRun`` or a list of them (``records`` with msg_id, error; ``run_id``).
    """
    runs = [runs] if hasattr(runs, "run_id") else list(runs)
    return pd.MultiIndex.from_tuples(
        [(r.run_id, i) for r in runs for i in r.records.msg_id[r.records.error == ""]],
        names=["run_id", "msg_id"])


def found_keys(rows: pd.DataFrame) -> pd.MultiIndex:
    """The ``(run_id, msg_id)`` key of every row of a reader or a group."""
    return pd.MultiIndex.from_arrays([rows.run_id, rows.msg_id], names=["run_id", "msg_id"])


def partition_delivery(messages: pd.DataFrame, produced) -> pd.DataFrame:
    """Duplicates and losses per partition, of what a producer run had acknowledged.

    Args:
        messages: ``ConsumerGroup.messages()`` (other runs' messages are ignored).
        produced: the ``ProducerRun`` whose messages the group read.

    Returns:
        Indexed by "topic-partition": acked, processed (rows), duplicates (rows beyond the
        first per message), lost (acknowledged, never processed).
    """
    rec = produced.records[produced.records.error == ""]
    acked = pd.Series(rec.msg_id.to_numpy(),
                      index=(rec.topic.astype(str) + "-" + rec.partition.astype(str)).to_numpy())
    mine = messages[messages.run_id == produced.run_id]
    seen = pd.Series(mine.msg_id.to_numpy(),
                     index=(mine.topic.astype(str) + "-" + mine.partition.astype(str)).to_numpy())
    table = tally_by(acked, seen)
    table = table.rename(columns={"expected": "acked", "found": "processed"})
    table.index.name = "partition"
    return table[["acked", "processed", "duplicates", "lost"]]


def delivery_reports(run, found: pd.DataFrame) -> dict[str, int]:
    """What the delivery reports of a run said, and what a fresh reader found of it.

    Args:
        run: a ``labkit.workloads.producer.ProducerRun``.
        found: ``read_topic`` rows (any runs; filtered by ``run.run_id``).

    Returns:
        delivered (report said delivered), failed (report said failed), dropped (never
        accepted: BufferError), unreported_present (no report, but in the topic),
        unreported_missing (no report and not in the topic: lost, in ``tally``'s words),
        present (distinct messages of the run in the topic).
    """
    rec = run.records
    ids = found.msg_id[found.run_id == run.run_id]
    unreported = tally(rec.msg_id[rec.error == "unreported"], ids)
    return {
        "delivered": int((rec.error == "").sum()),
        "failed": int((~rec.error.isin(["", "unreported", "BufferError"])).sum()),
        "dropped": int((rec.error == "BufferError").sum()),
        "unreported_present": unreported["distinct"],
        "unreported_missing": unreported["lost"],
        "present": int(ids.nunique()),
    }
