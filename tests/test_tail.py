"""readers.Tail, the live reader without a group, against a real broker."""

import pytest

from labkit.cluster import unique_name, wait_until
from labkit.workloads.producer import run_producer
from labkit.workloads.readers import Tail


def test_tail_reads_what_was_written_before_and_while_it_runs(cluster1):
    topic = unique_name("tail")
    cluster1.create_topic(topic, 2)
    before = run_producer(cluster1, {"acks": "all"}, messages=20, topics=[topic])
    with Tail(cluster1, [topic]) as tail:
        during = run_producer(cluster1, {"acks": "all"}, messages=30, topics=[topic])
        wait_until(lambda: len(tail.rows) >= 50, 30, "the tail to read 50 messages")
    rows = tail.rows
    assert len(rows) == 50
    assert set(rows.run_id) == {before.run_id, during.run_id}
    assert sorted(rows[rows.run_id == during.run_id].msg_id) == list(range(30))
    assert rows.t_consumed.notna().all()


def test_tail_checks_its_arguments_and_reports_an_unknown_topic(cluster1):
    with pytest.raises(ValueError, match="isolation_level"):
        Tail(cluster1, ["x"], isolation_level="dirty")
    with pytest.raises(ValueError, match="unknown topic"), Tail(cluster1, unique_name("none")):
        pass
