"""``audit.evidence``: every copy of every message that broke a promise, on hand-made frames."""

import numpy as np
import pandas as pd

from labkit.analysis.audit import EVIDENCE_COLUMNS, audit, evidence


def records(*rows):
    """Producer records from (msg_id, partition, offset, error, t_send, t_delivered)."""
    frame = pd.DataFrame(rows, columns=["msg_id", "partition", "offset", "error", "t_send",
                                        "t_delivered"])
    frame.insert(1, "topic", pd.Categorical(["t"] * len(frame)))
    frame["latency_ms"] = (frame.t_delivered - frame.t_send) * 1000
    return frame


def found(*rows):
    """Reader rows from (partition, offset, msg_id), topic "t"."""
    frame = pd.DataFrame(rows, columns=["partition", "offset", "msg_id"])
    frame.insert(0, "topic", "t")
    return frame


def test_a_clean_run_has_no_evidence():
    sent = records((0, 0, 0, "", 0.0, 0.1), (1, 0, 1, "", 0.2, 0.3))
    table = evidence(audit(sent, found((0, 0, 0), (0, 1, 1))), sent)
    assert table.empty and list(table.columns) == list(EVIDENCE_COLUMNS)


def test_every_copy_of_a_duplicate_gets_a_row_with_its_times_since_the_fault():
    sent = records((0, 0, 0, "", 1.0, 1.5), (1, 0, 2, "", 2.0, 9.0), (2, 0, 3, "", 3.0, 9.0))
    log = found((0, 0, 0), (0, 1, 1), (0, 2, 1), (0, 3, 2))
    table = evidence(audit(sent, log), sent, started_wall=100.0, zero_wall=101.5)
    assert table.msg_id.tolist() == [1, 1]
    assert table.offset.tolist() == [1, 2] and table.nth_copy.tolist() == [0, 1]
    assert (table.problem == "duplicated").all() and (table.copies == 2).all()
    assert table.acked_offset.tolist() == [2, 2]  # the report named the second copy
    assert table.sent_s.tolist() == [0.5, 0.5] and table.acked_s.tolist() == [7.5, 7.5]
    assert table.status.tolist() == ["", ""]


def test_lost_and_reordered_messages_are_listed_and_the_clock_defaults_to_the_run():
    sent = records((0, 0, 0, "", 0.0, 0.5), (1, 0, 2, "", 0.1, 0.6), (2, 0, 1, "", 0.2, 0.7),
                   (3, 1, 0, "", 0.3, 0.8), (4, 0, -1, "_MSG_TIMED_OUT", 0.4, 5.0))
    log = found((0, 0, 0), (0, 1, 2), (0, 2, 1), (0, 3, 4))  # 3 lost, 1 after 2
    table = evidence(audit(sent, log), sent, started_wall=50.0)
    assert table.msg_id.tolist() == [1, 3]
    reordered, lost = table.iloc[0], table.iloc[1]
    assert reordered.problem == "reordered" and reordered.offset == 2
    assert lost.problem == "lost" and lost.offset == -1 and lost.nth_copy == -1
    assert lost.partition == 1 and lost.copies == 0 and lost.sent_s == 0.3
    # A failed message found in the topic broke no promise: not evidence.
    assert 4 not in table.msg_id.tolist()


def test_a_duplicate_that_is_also_out_of_order_says_both():
    sent = records((0, 0, 0, "", 0.0, 0.1), (1, 0, 1, "", 0.1, np.nan))
    log = found((0, 0, 1), (0, 1, 0), (0, 2, 1))
    table = evidence(audit(sent, log), sent)
    assert set(table.problem) == {"duplicated", "reordered"}
    assert table[table.msg_id == 0].problem.tolist() == ["reordered"]
    assert table[table.msg_id == 1].acked_s.isna().all()
