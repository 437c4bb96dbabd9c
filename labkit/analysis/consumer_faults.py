"""What a consumer redid or lost through a fault: commit modes, and a side effect's crash.

Pure functions of the records that ``labkit.experiments.commits.fault_each`` and
``labkit.experiments.side_effects.crash_each`` return; the counting is
``labkit.analysis.accounting``'s (expected, found, distinct, duplicates, lost).

Columns of ``offsets_at_risk`` (one row per partition the faulty member owned):

=========== ==============================================================================
partition   "topic-partition"
processed   next offset after the last message processed in it before the fault (for a
            paused member: before it came back)
committed   the group's committed offset then (the log start offset if none was committed)
left        messages after ``processed``: the part of the stream still to come
moved       bool, another member took the partition over (always, after a crash)
redo        if moved, max(0, processed - committed): processed but not committed, so the
            next owner processes them again
skip        if moved, max(0, committed - processed): committed but not processed, so nobody
            ever will
=========== ==============================================================================
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from labkit.analysis import accounting


def offsets_at_risk(processed: pd.DataFrame, committed: dict[str, int | None],
                    starts: dict[str, int], ends: dict[str, int],
                    moved: set[str] | None = None) -> pd.DataFrame:
    """How far processing had got against what was committed (module docstring: columns).

    Args:
        processed: the messages processed in the partitions of interest up to the moment
            of interest (``ConsumerGroup.messages()`` rows).
        committed: the group's committed offsets then (``commits.committed_offsets``).
        starts: log start offsets, where a partition without a commit is read from
            (``auto.offset.reset=earliest``).
        ends: log end offsets (for ``left``).
        moved: the partitions another member took over (default: all); one that stayed
            with its member is neither redone nor skipped, as the member reads on from
            where it was.

    Returns:
        One row per partition of ``committed`` (module docstring: columns).
    """
    if len(processed):
        part = processed.topic + "-" + processed.partition.astype(str)
        upto = processed.offset.groupby(part).max() + 1
    else:
        upto = pd.Series(dtype=int)
    rows = []
    for p in sorted(committed):
        done = int(upto.get(p, starts[p]))
        resume = starts[p] if committed[p] is None else committed[p]
        took_over = moved is None or p in moved
        rows.append((p, done, resume, ends[p] - done, took_over,
                     max(0, done - resume) if took_over else 0,
                     max(0, resume - done) if took_over else 0))
    return pd.DataFrame(rows, columns=["partition", "processed", "committed", "left", "moved",
                                       "redo", "skip"])


def commit_outcomes(runs: dict, produced) -> pd.DataFrame:
    """Measured duplicates and losses per group, next to what the offsets at the fault predict.

    Args:
        runs: ``commits.fault_each`` results (label -> ``MemberFaultRun``: its member,
            t_back, partitions, at_fault and messages).
        produced: the ``ProducerRun`` the groups read.

    Returns:
        Indexed by variant: processed, duplicates, lost (whole group); the faulty member's
        partitions, what it had processed in them (``processed_by_member``), ``redo`` and
        ``skip`` predicted from the offsets at the fault, ``duplicates_there`` and
        ``lost_there`` measured in those partitions.
    """
    rows = {}
    for label, run in runs.items():
        counts = accounting.partition_delivery(run.messages, produced)
        there = counts.loc[counts.index.isin(run.partitions)]
        msgs = run.messages
        before = msgs[(msgs.member == run.member) & (msgs.t < run.t_back)
                      & (msgs.topic + "-" + msgs.partition.astype(str)).isin(run.partitions)]
        rows[label] = {
            "processed": int(counts.processed.sum()),
            "duplicates": int(counts.duplicates.sum()),
            "lost": int(counts.lost.sum()),
            "partitions": len(run.partitions),
            "processed_by_member": len(before),
            "redo": int(run.at_fault.redo.sum()),
            "skip": int(run.at_fault.skip.sum()),
            "duplicates_there": int(there.duplicates.sum()),
            "lost_there": int(there.lost.sum()),
        }
    table = pd.DataFrame(rows).T
    table.index.name = "variant"
    return table


def redone_elsewhere(table: pd.DataFrame) -> pd.Series:
    """Duplicates and losses outside the faulty member's partitions, per group.

    Args:
        table: ``commit_outcomes``.

    Returns:
        Indexed by variant: duplicates + lost of the whole group, minus those in the faulty
        member's partitions (0: the survivors handed their partitions over cleanly).
    """
    return (table[["duplicates", "lost"]].sum(axis=1)
            - table[["duplicates_there", "lost_there"]].sum(axis=1))


def predicted_exactly(table: pd.DataFrame) -> bool:
    """Whether the offsets at the fault predicted every duplicate and loss in its partitions.

    Args:
        table: ``commit_outcomes``.
    """
    return bool((table.duplicates_there == table.redo).all()
                and (table.lost_there == table.skip).all())


def processed_again(messages: pd.DataFrame, run_id: str, member: str | None = None) -> set[int]:
    """The msg_ids of one producer run that a group processed more than once.

    Args:
        messages: ``ConsumerGroup.messages()`` (may hold other runs' messages too).
        run_id: the producer run whose messages count.
        member: only the messages this member was one of the processors of (None: any).

    Returns:
        The msg_ids processed twice or more (by ``member`` among others, if given).
    """
    ours = messages[messages.run_id == run_id]
    repeated = ours[ours.msg_id.duplicated(keep=False)]
    if member is not None:
        repeated = repeated[repeated.member == member]
    return set(repeated.msg_id)


def _input_ids(produced) -> pd.Series:
    rec = produced.records
    return rec.msg_id[rec.error == ""]


def side_effect_outcomes(runs: dict, produced) -> pd.DataFrame:
    """One row per strategy (and one more for the Kafka output as read_uncommitted).

    Args:
        runs: ``side_effects.crash_each`` results (strategy -> ``CrashRun``).
        produced: the ``ProducerRun`` that wrote the input topic; its acknowledged messages
            are the input.

    Returns:
        Indexed by label (the strategy; "exactly-once-kafka, read_uncommitted" for the second
        view of the output topic): strategy, side_effect (where the rows were counted),
        the ``accounting.tally`` counts expected (input messages), found (their rows),
        distinct, duplicates, lost (input messages without a row); crash_batch,
        batch_messages and before_crash (the crash point), predicted_duplicates and
        predicted_lost (``CrashRun.predicted``).
    """
    inputs = _input_ids(produced)
    rows = {}
    for strategy, run in runs.items():
        views = [(strategy, "sqlite table", run.effects)]
        if run.uncommitted is not None:
            views = [(strategy, "output topic, read_committed", run.effects),
                     (f"{strategy}, read_uncommitted", "output topic, read_uncommitted",
                      run.uncommitted)]
        for label, where, found in views:
            counts = accounting.tally(inputs, found.msg_id[found.run_id == produced.run_id])
            predicted = run.predicted() if where != "output topic, read_uncommitted" else {
                # The aborted transaction's records stay in the log, marked aborted.
                "duplicates": run.before_crash, "lost": 0}
            rows[label] = {"strategy": strategy, "side_effect": where,
                           **{k: counts[k] for k in ("expected", "found", "distinct",
                                                     "duplicates", "lost")},
                           "crash_batch": run.crash_batch, "batch_messages": run.batch_messages,
                           "before_crash": run.before_crash,
                           "predicted_duplicates": predicted["duplicates"],
                           "predicted_lost": predicted["lost"]}
    table = pd.DataFrame(rows).T
    table.index.name = "label"
    numbers = [c for c in table.columns if c not in ("strategy", "side_effect")]
    return table.astype({c: int for c in numbers})


def around_crash(runs: dict, produced) -> dict[str, pd.DataFrame]:
    """Copies of each input message in each side effect, lined up on the crash.

    Messages are put in the order the crashing worker received them, followed by those it
    never received in (partition, offset) order; position 0 is the first message of the
    crash batch it did not process.

    Args:
        runs: ``side_effects.crash_each`` results.
        produced: the ``ProducerRun`` that wrote the input topic.

    Returns:
        Label -> one row per input message: position, msg_id, copies (rows in the side
        effect), stage ("before" the crash batch, "crash batch, processed", "crash batch,
        not processed", "after": received only by the replacement). Labels as in
        ``side_effect_outcomes``: the strategies, and "exactly-once-kafka, read_uncommitted".
    """
    strips = {}
    for strategy, run in runs.items():
        strips[strategy] = _strip(run, run.effects, produced)
        if run.uncommitted is not None:
            strips[f"{strategy}, read_uncommitted"] = _strip(run, run.uncommitted, produced)
    return strips


def _strip(run, found: pd.DataFrame, produced) -> pd.DataFrame:
    rec = produced.records[produced.records.error == ""]
    seen = run.received.drop_duplicates("msg_id")
    rest = rec[~rec.msg_id.isin(seen.msg_id)].sort_values(["partition", "offset"])
    order = np.concatenate([seen.msg_id.to_numpy(), rest.msg_id.to_numpy()])
    counts = found.msg_id[found.run_id == produced.run_id].value_counts()
    stage = np.full(len(order), "after", dtype=object)
    head = stage[:len(seen)]  # a view: assigning to it fills ``stage``
    in_crash, processed = (seen.batch == run.crash_batch).to_numpy(), seen.processed.to_numpy()
    head[(seen.batch < run.crash_batch).to_numpy()] = "before"
    head[in_crash & processed] = "crash batch, processed"
    head[in_crash & ~processed] = "crash batch, not processed"
    zero = int(np.flatnonzero(stage == "crash batch, not processed")[0])
    return pd.DataFrame({
        "position": np.arange(len(order)) - zero,
        "msg_id": order,
        "copies": counts.reindex(order).fillna(0).astype(int).to_numpy(),
        "stage": stage,
    })
