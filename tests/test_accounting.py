"""The one accounting of lost and duplicated messages, and the tables built on it: no broker."""

import numpy as np
import pandas as pd

from labkit.analysis import accounting, consumer_faults, metrics, share_groups
from labkit.analysis.accounting import TALLY, copy_number, missing, tally, tally_by


class _Run:
    """The fields of a ProducerRun the accounting reads."""

    def __init__(self, run_id, msg_ids, errors=None, partitions=None, topic="t"):
        n = len(msg_ids)
        self.run_id = run_id
        self.records = pd.DataFrame({
            "msg_id": list(msg_ids), "topic": topic,
            "partition": partitions if partitions is not None else [0] * n,
            "error": errors if errors is not None else [""] * n})


def test_copy_number_counts_copies_in_order_for_plain_and_tuple_keys():
    assert copy_number([3, 3, 1, 3]).tolist() == [0, 1, 0, 2]
    assert copy_number([("a", 1), ("b", 1), ("a", 1)]).tolist() == [0, 0, 1]
    assert copy_number([]).tolist() == []


def test_missing_marks_expected_messages_found_nowhere():
    assert missing([1, 2, 3], [3, 3, 9]).tolist() == [True, True, False]


def test_tally_uses_one_vocabulary():
    counts = tally(range(5), [0, 1, 1, 1, 3, 99])
    assert counts == {"expected": 5, "found": 5, "distinct": 3, "duplicates": 2,
                      "duplicated_ids": 1, "lost": 2, "foreign": 1}
    assert list(counts) == list(TALLY)
    assert tally([], []) == dict.fromkeys(TALLY, 0)
    keys = pd.MultiIndex.from_tuples([("a", 1), ("a", 2), ("b", 1)])
    assert tally(keys, [("a", 1), ("a", 1), ("b", 2)])["lost"] == 2


def test_tally_by_counts_a_loss_where_expected_and_a_copy_where_found():
    table = tally_by(pd.Series([1, 2, 3], index=["p0", "p0", "p1"]),
                     pd.Series([1, 1, 3, 9], index=["p0", "p1", "p1", "p1"]))
    assert table.loc["p0"].to_dict() == {"expected": 2, "found": 1, "distinct": 1,
                                         "duplicates": 0, "duplicated_ids": 0, "lost": 1,
                                         "foreign": 0}
    assert table.loc["p1", ["found", "distinct", "duplicates", "foreign"]].tolist() == [2, 1, 1, 1]


def test_group_delivery_counts_match_by_run_and_message():
    runs = [_Run("r1", [0, 1, 2]), _Run("r2", [0, 1], errors=["", "_MSG_TIMED_OUT"])]
    rows = pd.DataFrame({"run_id": ["r1", "r1", "r1", "r2", "other"],
                         "msg_id": [0, 0, 2, 0, 1]})
    assert metrics.delivery_counts(rows, runs) == {"processed": 4, "unique": 3,
                                                   "duplicates": 1, "lost": 1}
    assert metrics.delivery_counts(rows[rows.run_id == "r1"], [0, 1, 2]) == {
        "processed": 3, "unique": 2, "duplicates": 1, "lost": 1}


def test_partition_delivery_counts_each_partition():
    run = _Run("r", [0, 1, 2, 3], partitions=[0, 0, 1, 1])
    rows = pd.DataFrame({"run_id": "r", "topic": "t", "partition": [0, 0, 1],
                         "msg_id": [0, 0, 2]})
    table = accounting.partition_delivery(rows, run)
    assert table.to_dict("index") == {
        "t-0": {"acked": 2, "processed": 2, "duplicates": 1, "lost": 1},
        "t-1": {"acked": 2, "processed": 1, "duplicates": 0, "lost": 1}}


def test_delivery_reports_split_unreported_into_present_and_missing():
    run = _Run("r1", range(5),
               errors=["", "_MSG_TIMED_OUT", "unreported", "unreported", "BufferError"])
    found = pd.DataFrame({"run_id": ["r1", "r1", "other"], "msg_id": [0, 2, 3]})
    assert accounting.delivery_reports(run, found) == {
        "delivered": 1, "failed": 1, "dropped": 1, "unreported_present": 1,
        "unreported_missing": 1, "present": 2}


def _fault_run(member, partitions, messages, redo, skip):
    at_fault = pd.DataFrame({"partition": partitions, "redo": redo, "skip": skip})
    return type("Run", (), {"member": member, "t_back": float("inf"), "partitions": partitions,
                            "at_fault": at_fault, "messages": messages})()


def test_commit_outcomes_set_measured_next_to_predicted():
    run = _Run("r", range(6), partitions=[0, 0, 0, 1, 1, 1])
    rows = pd.DataFrame({
        "run_id": "r", "topic": "t", "member": ["m1", "m1", "m2", "m2", "m2", "m2", "m2"],
        "partition": [0, 0, 0, 0, 1, 1, 1], "msg_id": [0, 1, 1, 2, 3, 4, 5],
        "t": np.arange(7.0)})
    table = consumer_faults.commit_outcomes(
        {"crash": _fault_run("m1", ["t-0"], rows, [1], [0])}, run)
    row = table.loc["crash"]
    assert (row.processed, row.duplicates, row.lost) == (7, 1, 0)
    assert (row.processed_by_member, row.duplicates_there, row.redo) == (2, 1, 1)
    assert consumer_faults.predicted_exactly(table)
    assert consumer_faults.redone_elsewhere(table).tolist() == [0]
    wrong = table.assign(redo=[5])
    assert not consumer_faults.predicted_exactly(wrong)


def test_share_group_processed_twice_is_the_accountings_duplicated_ids():
    rows = pd.DataFrame({
        "member": ["a", "b", "b", "c"], "topic": "t", "partition": 0, "offset": [0, 0, 1, 1],
        "msg_id": [0, 0, 1, 1], "delivery_count": [1, 2, 1, 2], "t": [0.1, 0.3, 0.2, 0.4],
        "t_received": [0.1, 0.3, 0.2, 0.4]})
    held = rows.iloc[[0]].assign(processed=True)
    assert share_groups.redelivery(rows, held, 0.0)["processed_twice"] == 1
    twice = share_groups.duplicated_messages(rows)
    assert twice.index.tolist() == [0, 1]
    assert twice.loc[1, "members"] == ["b", "c"] and twice.loc[0, "times"] == 2



def test_deliveries_of_held_records_are_on_the_faults_clock():
    rows = pd.DataFrame({
        "member": ["a", "b", "b"], "topic": "t", "partition": 0, "offset": [0, 0, 1],
        "msg_id": [0, 0, 1], "delivery_count": [1, 2, 1], "t": [1.1, 3.2, 0.5],
        "t_received": [1.0, 3.1, 0.4]})
    held = pd.concat([rows.iloc[[0]].assign(processed=True),
                      rows.iloc[[0]].assign(offset=2, msg_id=2, t=np.nan, processed=False)])
    found = share_groups.deliveries(rows, held, t_fault=2.0)
    assert found[["offset", "member", "delivery_count"]].values.tolist() == [
        [0, "a", 1], [0, "b", 2], [2, "a", 1]]  # offset 1 was not held
    assert found.received_s.round(6).tolist() == [-1.0, 1.1, -1.0]
    assert found.processed_s.round(6).tolist()[:2] == [-0.9, 1.2]
    assert np.isnan(found.processed_s.iloc[2])  # held, never processed

def test_idle_members_and_spread_of_a_group():
    rows = pd.DataFrame({"member": ["a", "a", "b", "c"], "partition": [0, 0, 1, 1],
                         "msg_id": [0, 1, 2, 2], "t": [1.0, 2.0, 3.0, 0.5]})
    names = ["a", "b", "c"]
    idle = share_groups.idle_members(share_groups.member_counts(rows, names),
                                     share_groups.member_counts(rows[rows.t > 0.9], names),
                                     {"a": ["t-0"], "b": ["t-1"], "c": []})
    assert idle == {"idle": ["c"], "busy": ["a", "b"], "owners": ["a", "b"],
                    "idle_records": 0, "forming_records": 1}
    assert share_groups.spread(rows, names) == {"members": 3, "fewest": 1, "most": 2,
                                                "readers_min": 1, "readers_max": 2,
                                                "distinct": 3}


def test_processed_again_counts_one_runs_repeats_and_who_took_part():
    messages = pd.DataFrame({
        "run_id": ["a", "a", "a", "a", "a", "b", "b"],
        "msg_id": [1, 1, 2, 3, 3, 1, 1],
        "member": ["m3", "m1", "m2", "m2", "m1", "m3", "m3"],
    })
    assert consumer_faults.processed_again(messages, "a") == {1, 3}
    assert consumer_faults.processed_again(messages, "a", member="m3") == {1}
    assert consumer_faults.processed_again(messages, "a", member="m4") == set()
    assert consumer_faults.processed_again(messages, "b") == {1}
