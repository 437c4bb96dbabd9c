"""``audit.evidence``: every copy of every message that broke a promise, on hand-made frames."""

import numpy as np
import pandas as pd

from labkit.audit import EVIDENCE_COLUMNS, audit, evidence, evidence_report


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


class Run:
    """The parts of a ``ProducerRun`` that ``evidence_report`` reads."""

    def __init__(self, label, records, started_wall, client_log_file=None):
        self.label, self.records, self.started_wall = label, records, started_wall
        self.client_log_file = client_log_file


def test_evidence_report_shows_each_broken_run_with_its_client_log_near_the_problem(tmp_path):
    sent = records((0, 1, 0, "", 1.0, 1.5), (1, 1, 1, "", 2.0, 12.0))
    log = found((1, 0, 0), (1, 1, 1), (1, 2, 1))
    clean = records((0, 0, 0, "", 1.0, 1.1))
    path = tmp_path / "client.log"
    path.write_text(
        "1001.000000 DEBUG PRODUCE [rdkafka#p-1] [thrd:b/1]: t [1]: Produce MessageSet\n"
        "1005.000000 DEBUG DRAIN [rdkafka#p-1] [thrd:main]: bumped epoch to PID{Id:1,Epoch:1}\n"
        "1011.500000 DEBUG ERRSEQ [rdkafka#p-1] [thrd:b/1]: t [1]: skipped sequence numbers\n"
        "1011.900000 DEBUG FETCH [rdkafka#p-1] [thrd:b/1]: t [0]: unrelated line\n")
    runs = [Run("clean", clean, 1000.0), Run("broken", sent, 1000.0, str(path))]
    audits = {"clean": audit(clean, found((0, 0, 0))), "broken": audit(sent, log)}
    shown = evidence_report(runs, audits, zero_wall=1002.0, before_s=1.0, after_s=1.0)
    assert len(shown) == 4 and shown[0].startswith("broken: 1 problem messages, 2 rows")
    assert shown[1].offset.tolist() == [1, 2] and shown[1].acked_s.tolist() == [10.0, 10.0]
    lines = shown[3]
    # Near msg 1's send (0.0 s) or ack (10.0 s), about its partition or the producer's state.
    # The epoch bump at 3.0 s is outside both windows; the FETCH line is about partition 0.
    assert lines.t.tolist() == [-1.0, 9.5] and "skipped sequence" in lines.text.iloc[1]
    assert evidence_report(runs[:1], audits, zero_wall=1002.0) == []
