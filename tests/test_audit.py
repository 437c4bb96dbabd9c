"""The audit's counting rules on hand-made DataFrames, no broker."""

import pandas as pd
import pytest

from labkit.analysis.audit import COUNTS, audit
from labkit.viz import plots


def produced(*rows):
    """Producer records from (msg_id, partition, offset, error[, key]) tuples, topic "t"."""
    frame = pd.DataFrame([r if len(r) == 5 else (*r, None) for r in rows],
                         columns=["msg_id", "partition", "offset", "error", "key"])
    frame.insert(1, "topic", pd.Categorical(["t"] * len(frame)))
    return frame


def found(*rows, run_id="r1"):
    """Reader rows from (partition, offset, msg_id[, key]) tuples, topic "t"."""
    frame = pd.DataFrame([r if len(r) == 4 else (*r, None) for r in rows],
                         columns=["partition", "offset", "msg_id", "key"])
    frame.insert(0, "topic", "t")
    frame["run_id"] = run_id
    return frame


def in_order(ids, partition=0):
    """Everything acked and found once, at offsets 0.. in msg_id order."""
    return (produced(*[(m, partition, o, "") for o, m in enumerate(ids)]),
            found(*[(partition, o, m) for o, m in enumerate(ids)]))


def test_a_clean_run_has_nothing_to_report():
    result = audit(*in_order(range(5)))
    assert result.totals == {**dict.fromkeys(COUNTS, 0), "sent": 5, "acked": 5, "found": 5,
                             "distinct": 5}
    assert result.lost.empty
    assert not result.found.reordered.any() and (result.found.nth_copy == 0).all()
    assert result.summary() == "5 sent, 5 acked, 5 found: 0 duplicates, 0 reordered, 0 lost"


def test_extra_copies_are_counted_once_each():
    sent = produced((0, 0, 4, ""), (1, 0, 3, ""), (2, 0, 5, ""))
    log = found((0, 0, 0), (0, 1, 1), (0, 2, 0), (0, 3, 1), (0, 4, 0), (0, 5, 2))
    result = audit(sent, log)
    assert result.totals["duplicates"] == 3  # msg 0 three times (+2), msg 1 twice (+1)
    assert result.totals["duplicated_ids"] == 2
    assert result.totals["distinct"] == 3 and result.totals["found"] == 6
    assert result.found.nth_copy.tolist() == [0, 0, 1, 1, 2, 0]
    assert result.totals["acked_elsewhere"] == 0  # each ack names one of the copies
    # A retried batch's second copy sits later in the log but is not a reorder.
    assert result.totals["reordered"] == 0


def test_a_record_is_reordered_when_a_later_sent_one_precedes_it():
    sent, log = in_order([0, 1, 4, 2, 3, 5])
    result = audit(sent, log)
    assert result.totals["reordered"] == 2
    assert result.found.loc[result.found.reordered, "msg_id"].tolist() == [2, 3]


def test_a_batch_retried_after_later_batches_is_reordered_not_duplicated():
    # Batch 0-2 failed the first time and landed after batch 3-5.
    sent, log = in_order([3, 4, 5, 0, 1, 2])
    result = audit(sent, log)
    assert result.totals["reordered"] == 3 and result.totals["duplicates"] == 0


def test_order_is_judged_per_partition():
    sent = produced((0, 0, 0, ""), (1, 1, 0, ""), (2, 0, 1, ""), (3, 1, 1, ""))
    log = found((1, 0, 1), (0, 0, 0), (1, 1, 3), (0, 1, 2))  # read partitions interleaved
    result = audit(sent, log)
    assert result.totals["reordered"] == 0
    table = result.per_partition.set_index("partition")
    assert table.found.tolist() == [2, 2] and table.sent.tolist() == [2, 2]


def test_per_key_order_ignores_interleaving_between_keys():
    rows = [(0, "a"), (2, "b"), (1, "a"), (3, "b")]  # b's 2 precedes a's 1 in the log
    sent = produced(*[(m, 0, o, "", k) for o, (m, k) in enumerate(rows)])
    log = found(*[(0, o, m, k) for o, (m, k) in enumerate(rows)])
    assert audit(sent, log).totals["reordered"] == 1
    assert audit(sent, log, order="key").totals["reordered"] == 0


def test_null_keys_form_one_stream_per_partition_under_key_order():
    sent, log = in_order([0, 2, 1])
    assert audit(sent, log, order="key").totals["reordered"] == 1


def test_acked_but_missing_is_lost_and_failed_but_present_is_flagged():
    sent = produced((0, 0, 0, ""), (1, 0, 1, ""), (2, 0, -1, "_MSG_TIMED_OUT"),
                    (3, -1, -1, "unreported"), (4, -1, -1, "BufferError"))
    log = found((0, 0, 0), (0, 1, 2), (0, 2, 3))
    result = audit(sent, log)
    t = result.totals
    assert (t["sent"], t["acked"], t["failed"], t["unreported"]) == (4, 2, 1, 1)
    assert t["lost"] == 1 and result.lost.msg_id.tolist() == [1]
    assert t["failed_present"] == 1 and t["unreported_present"] == 1
    assert result.found.status.tolist() == ["", "_MSG_TIMED_OUT", "unreported"]
    # The unreported message had no partition on the producer side: its own row.
    table = result.per_partition.set_index("partition")
    assert table.loc[-1, "sent"] == 1 and table.loc[-1, "found"] == 0
    assert table.loc[0, "found"] == 3 and table.loc[0, "unreported_present"] == 1


def test_acked_at_an_offset_holding_no_copy_is_flagged():
    sent = produced((0, 0, 0, ""), (1, 0, 5, ""), (2, 0, -1, ""))  # -1: acks=0, no offset
    log = found((0, 0, 0), (0, 1, 1), (0, 2, 2))
    assert audit(sent, log).totals["acked_elsewhere"] == 1


def test_other_runs_are_filtered_out_by_run_id():
    sent, log = in_order(range(3))
    other = found((0, 3, 0), (0, 4, 99), run_id="r2")
    both = pd.concat([log, other], ignore_index=True)
    assert audit(sent, both, run_id="r1").totals["duplicates"] == 0
    with pytest.raises(ValueError, match="1 found records carry msg_ids the producer never sent"):
        audit(sent, both)


def test_nothing_found_means_everything_acked_is_lost():
    sent, log = in_order(range(4))
    result = audit(sent, log.iloc[:0])
    assert result.totals["lost"] == 4 and result.totals["found"] == 0
    assert result.per_partition.columns.tolist() == ["topic", "partition", *COUNTS]


def test_totals_are_the_sum_of_the_partitions():
    sent = produced((0, 0, 0, ""), (1, 1, 0, ""), (2, 0, 1, ""), (3, 1, 1, ""))
    log = found((0, 0, 0), (0, 1, 2), (0, 2, 0), (1, 0, 3), (1, 1, 1))
    result = audit(sent, log)
    for name in COUNTS:
        assert result.totals[name] == result.per_partition[name].sum(), name
    assert result.totals["reordered"] == 1 and result.totals["duplicates"] == 1


def test_bad_arguments_are_refused_with_the_reason():
    sent, log = in_order(range(2))
    with pytest.raises(ValueError, match="'offset' is not allowed; use one of partition, key"):
        audit(sent, log, order="offset")
    with pytest.raises(ValueError, match="found lacks the column\\(s\\) msg_id"):
        audit(sent, log.drop(columns="msg_id"))
    with pytest.raises(ValueError, match="found lacks the column\\(s\\) run_id"):
        audit(sent, log.drop(columns="run_id"), run_id="r1")


def test_log_copies_draws_one_partition_and_marks_faults():
    import matplotlib

    matplotlib.use("Agg")
    sent, log = in_order([0, 1, 3, 2, 4])
    log = pd.concat([log, found((0, 5, 1))], ignore_index=True)
    log["t_produced"] = 1000.0 + log.msg_id / 10
    events = pd.DataFrame({"action": ["pause"], "broker": [2],
                           "wall": pd.to_datetime([1000.25], unit="s", utc=True)})
    fig = plots.log_copies(audit(sent, log), events=events, started_wall=1000.0)
    ax = fig.axes[0]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["first copy, in order (4)", "reordered (1)", "extra copies (1)"]
    assert ax.lines[0].get_xdata()[0] == pytest.approx(0.25)
    assert ax.get_title() == "Partition 0, record by record"
