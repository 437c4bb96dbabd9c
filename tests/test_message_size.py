"""labkit.experiments.message_size on a real cluster: each size limit hit on purpose."""

import pytest

from labkit.analysis import message_size as sizing
from labkit.experiments import message_size


def test_bad_arguments_are_refused_before_anything_starts():
    # No cluster at all: each is refused before it is touched.
    with pytest.raises(ValueError, match=r"sizes=\[10\] must be a non-empty list of integers"):
        message_size.throughput_by_size(None, [10], 1000)
    with pytest.raises(ValueError, match="budget_bytes=0 must be a positive integer"):
        message_size.throughput_by_size(None, [100], 0)
    with pytest.raises(ValueError, match="topic_limit=100 must be an integer from 4096"):
        message_size.producer_limits(None, topic_limit=100)
    with pytest.raises(ValueError, match="limit=500 must be an integer from 1000"):
        message_size.consumer_limits(None, limit=500)


def test_every_producer_limit_refuses_just_above_and_takes_just_below(cluster3):
    limits = message_size.producer_limits(cluster3, topic_limit=16384, search_broker=False)
    probes = limits.probes
    assert sizing.read_back_mismatches(probes, limits.read_back).empty
    above = sizing.probe(probes, "producer", "just above").iloc[0]
    below = sizing.probe(probes, "producer", "just below").iloc[0]
    assert above.outcome == "refused by produce()" and above.error == "MSG_SIZE_TOO_LARGE"
    assert below.outcome == "acknowledged" and below.value_bytes < limits.producer_limit
    assert above.value_bytes == below.value_bytes + 1
    for step, limit in (("topic", 16384), ("broker", limits.broker_limit)):
        above = sizing.probe(probes, step, "just above").iloc[0]
        below = sizing.probe(probes, step, "just below").iloc[0]
        assert above.outcome == "failed in the delivery report", step
        assert above.error == "MSG_SIZE_TOO_LARGE", step
        assert below.outcome == "acknowledged" and below.value_bytes < limit, step
    # Every message under the topic's limit gets through once batches cannot outgrow it.
    assert (sizing.probe(probes, "batch", "batch.size").outcome == "acknowledged").all()
    assert sizing.probe(probes, "batch", "lz4, spaces").outcome.iloc[0] == "acknowledged"
    assert sizing.probe(probes, "batch", "lz4, random bytes").error.iloc[0] == "MSG_SIZE_TOO_LARGE"


def test_consumer_limits_progress_refuse_or_stall(cluster3):
    reads = message_size.consumer_limits(cluster3, limit=16384, stall_s=1.5)
    for case in ("max.partition.fetch.bytes", "fetch.max.bytes"):
        assert (sizing.consumer_case(reads.reads, case).outcome == "read").all(), case
    for case in ("fetch.max.bytes alone", "receive.message.max.bytes alone"):
        rows = sizing.consumer_case(reads.reads, case)
        assert (rows.outcome == "consumer refused").all() and (rows.error == "_INVALID_ARG").all()
    tight = sizing.consumer_case(reads.reads, "receive.message.max.bytes")
    assert tight.outcome.to_dict() == {"just below": "read", "just above": "not read"}
    assert tight.loc["just above", "callback_errors"] > 0
    assert "receive.message.max.bytes" in tight.loc["just above", "text"]


def test_throughput_by_size_sends_the_budget_at_each_size(cluster3):
    runs = message_size.throughput_by_size(cluster3, [100, 10240], 200_000, min_messages=5)
    assert runs.messages == [2000, 19]
    assert [r.delivered for r in runs.runs] == runs.messages
    table = sizing.size_table(runs.runs)
    assert list(table.label) == ["100 B", "10 KiB"] and (table.overhead_bytes_per_msg > 0).all()
    assert not set(runs.topics) & set(cluster3.admin().list_topics(timeout=10).topics)
