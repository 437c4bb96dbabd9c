"""Unit tests of labkit.analysis.client_cuts on small frames shaped like recorded ones."""

import math

import pandas as pd

from labkit.analysis import client_cuts

# A producer cut off from partition 0's leader from t=1 to t=6, message.timeout.ms=3000.
RECORDS = pd.DataFrame({
    "msg_id":      [0,   1,   2,   3,    4,    5,   6,   7],
    "partition":   [0,   1,   0,   0,    1,    0,   0,   2],
    "t_send":      [0.5, 0.6, 0.99, 1.5, 1.6,  4.0, 6.5, 6.6],
    "t_delivered": [0.51, 0.61, 1.01, 4.55, 1.61, 6.2, 6.6, 6.61],
    "error":       ["", "", "", "_MSG_TIMED_OUT", "", "", "", ""],
})


def test_phases_count_reports_by_when_they_came_and_which_partitions():
    table = client_cuts.delivery_phases(RECORDS, [0], cut_s=1.0, healed_s=6.0, end_s=7.0)
    row = table.set_index(["phase", "partitions"])
    assert row.loc[("cut", "cut leader"), "acknowledged"] == 1  # msg 2: sent before the cut
    assert row.loc[("cut", "cut leader"), "failed"] == 1
    assert row.loc[("cut", "reachable"), "acknowledged"] == 1
    assert row.loc[("after the heal", "cut leader"), "acknowledged"] == 2
    assert row.loc[("after the heal", "cut leader"), "first_ack_s"] == 6.2
    assert row.loc[("before the cut", "cut leader"), "last_ack_s"] == 0.51


def test_failures_say_how_long_each_waited_against_the_timeout():
    table = client_cuts.failures(RECORDS, 3000)
    assert list(table.msg_id) == [3]
    assert round(table.waited_ms.iloc[0]) == 3050 and round(table.over_ms.iloc[0]) == 50
    assert client_cuts.errors_by_name(RECORDS).to_dict() == {"_MSG_TIMED_OUT": 1}
    assert client_cuts.early_timeouts(RECORDS, 3000).empty
    assert list(client_cuts.early_timeouts(RECORDS, 3200).msg_id) == [3]  # 150 ms early
    assert client_cuts.early_timeouts(RECORDS, 3100).empty  # 50 ms early: within the slack


def test_acknowledged_during_the_cut_counts_only_messages_sent_after_it():
    assert client_cuts.acked_sent_during(RECORDS, [0], 1.0, 6.0).empty  # msg 2 sent before
    broken = RECORDS.assign(t_delivered=RECORDS.t_delivered.where(RECORDS.msg_id != 5, 5.0))
    assert list(client_cuts.acked_sent_during(broken, [0], 1.0, 6.0).msg_id) == [5]
    assert client_cuts.first_ack_after(RECORDS, [0], 6.0) == 6.2
    assert math.isnan(client_cuts.first_ack_after(RECORDS, [1], 6.0))


def test_owned_once():
    parts = ["t-0", "t-1", "t-2"]
    assert client_cuts.owned_once({"m1": ["t-0"], "m2": ["t-1", "t-2"]}, parts)
    assert not client_cuts.owned_once({"m1": ["t-0", "t-1"], "m2": ["t-1", "t-2"]}, parts)
    assert not client_cuts.owned_once({"m1": ["t-0"]}, parts)


MESSAGES = pd.DataFrame({
    "member": ["m1", "m1", "m2", "m2", "m2", "m1"],
    "partition": [0, 0, 0, 0, 1, 0],
    "run_id": ["r", "r", "r", "r", "r", "other"],
    "msg_id": [10, 11, 10, 11, 12, 10],
    "t": [1.0, 1.1, 5.0, 5.1, 5.2, 1.0],
})


def test_duplicates_name_who_processed_first_and_who_again():
    table = client_cuts.duplicates(MESSAGES, "r")
    assert list(table.msg_id) == [10, 11]
    assert set(table.first_member) == {"m1"} and set(table.again_member) == {"m2"}
    assert list(table.copies) == [2, 2]
    assert client_cuts.duplicates(MESSAGES, "none").empty
    assert client_cuts.processed_between(MESSAGES, "m1", 0.0, 2.0) == 3


def test_member_moments_find_the_loss_the_takeover_and_the_return():
    events = pd.DataFrame({
        "t": [0.5, 7.0, 7.2, 7.3, 12.0],
        "member": ["m1", "m1", "m2", "m2", "m1"],
        "kind": ["assign", "lost", "revoke", "assign", "assign"],
        "partitions": [["t-0"], ["t-0"], ["t-1"], ["t-0", "t-1"], ["t-0"]],
        "detail": [""] * 5,
    })
    moments = client_cuts.member_moments(events, "m1", after_s=1.0)
    assert moments == {"lost": 7.0, "others_assigned": 7.3, "back": 12.0}
    nothing = client_cuts.member_moments(events[events.t < 1], "m1", after_s=1.0)
    assert all(math.isnan(v) for v in nothing.values())


def test_partition_numbers():
    assert client_cuts.partition_numbers({"m1": ["a-b-10", "a-b-2"], "m2": []}) == \
        {"m1": [2, 10], "m2": []}


def test_owned_at_and_longest_unread():
    events = pd.DataFrame({"t": [0.5, 3.0], "member": ["m1", "m1"], "kind": ["assign", "assign"],
                           "partitions": [["t-1", "t-0"], ["t-2"]], "detail": ["", ""]})
    assert client_cuts.owned_at(events, "m1", 1.0) == [0, 1]
    assert client_cuts.owned_at(events, "m2", 1.0) == []
    rows = pd.DataFrame({"partition": [0, 1, 0, 2, 1], "t": [1.0, 1.5, 4.0, 2.0, 4.5]})
    assert client_cuts.longest_unread(rows, [0, 1], 0.5, 5.0) == (2.5, 1.5)
    assert client_cuts.longest_unread(rows.iloc[:0], [0], 0.5, 5.0) == (4.5, 0.5)
