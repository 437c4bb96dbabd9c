"""labkit.analysis.gaps and labkit.analysis.rates on hand-made times, and the functions built
on them (outages, ownership gaps, throughput). No broker."""

import math

import pandas as pd
import pytest

from labkit.analysis import gaps, metrics, rates


def test_gaps_are_the_stretches_between_consecutive_times_longest_first():
    found = gaps.between(pd.Series([3.0, 1.0, 2.0, 10.0, 11.0], index=list("cabde")))
    assert found.columns.tolist() == list(gaps.GAP_COLUMNS)
    assert found.start.tolist() == [3.0, 1.0, 2.0, 10.0]
    assert found.seconds.tolist() == [7.0, 1.0, 1.0, 1.0]  # ties in time order
    assert found.before.iloc[0] == "c" and found.after.iloc[0] == "d"


def test_gaps_with_edges_thresholds_and_a_horizon():
    found = gaps.between([1.0, 2.0, float("nan")], start=0.0, end=5.0, longer_than=1.0)
    assert found[["start", "end"]].values.tolist() == [[2.0, 5.0]]
    assert found.after.iloc[0] is None
    assert gaps.between([], start=0.0, end=3.0).seconds.tolist() == [3.0]
    assert gaps.between([0.0, 20.0, 21.0, 25.0], after=21.0).start.tolist() == [21.0]
    assert gaps.between([1.0]).empty


def test_gaps_between_spans_leave_overlaps_out_and_keep_instant_hand_overs():
    found = gaps.between([0.0, 4.0, 6.0, 9.0], ends=[3.0, 6.0, 10.0, 12.0])
    # 3 -> 4: one second; 6 -> 6: a hand-over in the same instant; 10 > 9: overlap
    assert found.sort_values("start")[["start", "end"]].values.tolist() == [[3.0, 4.0],
                                                                           [6.0, 6.0]]


def test_longest_and_around():
    assert gaps.longest([3, 1, 2, 10, 11]) == (3, 10)
    assert gaps.longest([0, 20, 21, 25], after=21) == (21, 25)
    assert all(math.isnan(x) for x in gaps.longest([1]))
    assert all(math.isnan(x) for x in gaps.longest([1, 2], after=5))
    assert gaps.around([1.0, 3.0, 2.0], 2.0) == (2.0, 3.0)  # a time at t is "before"
    before, after = gaps.around([1.0], 0.5)
    assert math.isnan(before) and after == 1.0


def test_ownership_gaps_name_the_members_around_each_gap():
    events = pd.DataFrame([
        (0.0, "m1", "assign", ["t-0", "t-1"]), (5.0, "m1", "crash", []),
        (8.0, "m2", "assign", ["t-0"]), (8.0, "m2", "assign", ["t-1"]),
    ], columns=["t", "member", "kind", "partitions"])
    found = metrics.ownership_gaps(metrics.ownership(events))
    assert found.partition.tolist() == ["t-0", "t-1"]
    assert found.gap_s.tolist() == [3.0, 3.0]
    assert set(found.cause) == {"crash"} and set(found.from_member) == {"m1"}
    assert set(found.to_member) == {"m2"}
    assert metrics.ownership_gaps(metrics.ownership(events.iloc[:1])).empty


def test_per_second_counts_or_sums_in_aligned_buckets_with_empty_ones_as_zero():
    rate = rates.per_second([0.1, 0.2, 0.3, 1.6], bucket_s=0.5)
    assert rate.index.tolist() == [0.0, 0.5, 1.0, 1.5]
    assert rate.tolist() == [6.0, 0.0, 0.0, 2.0]
    weighted = rates.per_second([0.1, 0.2], bucket_s=0.5, weights=[100, 300])
    assert weighted.tolist() == [800.0]
    framed = rates.per_second([0.1, 5.0, float("nan")], bucket_s=1.0, start=0.0, end=2.0)
    assert framed.index.tolist() == [0.0, 1.0, 2.0] and framed.tolist() == [1.0, 0.0, 0.0]
    assert rates.per_second([], bucket_s=1.0).empty
    with pytest.raises(ValueError, match="bucket_s"):
        rates.per_second([1.0], bucket_s=0)


def test_throughput_is_the_per_second_rate_of_delivered_messages():
    records = pd.DataFrame({"t_delivered": [0.01, 0.05, 0.15, 0.16], "size": [100] * 4,
                            "error": ["", "", "", "_MSG_TIMED_OUT"], "msg_id": range(4)})
    tp = metrics.throughput(records, bucket_s=0.1)
    assert tp.t.tolist() == [0.0, 0.1] and tp.msgs_per_s.tolist() == [20.0, 10.0]
    assert metrics.throughput(records.iloc[:0]).columns.tolist() == ["t", "msgs_per_s",
                                                                     "mb_per_s"]


def test_pauses_by_change_group_the_gaps_by_the_membership_change_before_them():
    events = pd.DataFrame({"t": [0.1, 4.0, 9.0], "kind": ["join", "crash", "join"],
                           "member": ["m1", "m2", "m3"]})
    found = pd.DataFrame({"start": [0.2, 4.5, 5.0, 9.5], "gap_s": [0.1, 6.0, 7.0, 0.3]})
    table = metrics.pauses_by_change(found, events)
    assert table.index.tolist() == ["start-up", "crash m2", "join m3"]
    assert table["partitions paused"].tolist() == [1, 2, 1]
    assert table["longest pause s"].tolist() == [0.1, 7.0, 0.3]


def test_member_throughput_is_a_per_second_rate_per_member_over_the_same_buckets():
    messages = pd.DataFrame({"t": [0.1, 0.2, 1.7], "member": ["m1", "m2", "m1"]})
    table = metrics.member_throughput(messages, bucket_s=0.5)
    assert table.index.tolist() == [0.0, 0.5, 1.0, 1.5]
    assert table.m1.tolist() == [2.0, 0.0, 0.0, 2.0] and table.m2.tolist() == [2.0, 0, 0, 0]
    idle = metrics.member_throughput(messages, bucket_s=0.5, members=["m1", "m3"])
    assert idle.columns.tolist() == ["m1", "m2", "m3"] and idle.m3.tolist() == [0.0] * 4
    assert idle[["m1", "m2"]].equals(table[["m1", "m2"]])
