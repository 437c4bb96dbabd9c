"""The instrumented producer against a real broker, and its config validation."""

import pytest
from confluent_kafka import Consumer, TopicPartition

from labkit.analysis import metrics
from labkit.cluster import Cluster, client_log, unique_name, wait_until
from labkit.workloads.producer import (
    POOL_BYTES,
    compare,
    make_keys,
    make_payloads,
    run_producer,
    validate_config,
)
from labkit.workloads.readers import read_topic


@pytest.mark.parametrize("config, message", [
    ({"acks": "2"}, "acks='2' is not allowed; use one of 0, 1, all, -1"),
    ({"compression.type": "brotli"}, "compression.type='brotli'.*gzip, snappy, lz4, zstd"),
    ({"linger.ms": -1}, "linger.ms=-1 is not allowed; use an integer from 0 to 900000"),
    ({"batch.size": "big"}, "batch.size='big'"),
    ({"partitioner": "round_robin"}, "partitioner='round_robin'.*murmur2_random"),
    ({"on_delivery": print}, "'on_delivery' is set by labkit"),
])
def test_bad_config_values_are_named_with_what_is_allowed(config, message):
    with pytest.raises(ValueError, match=message):
        validate_config(config)


def test_booleans_become_librdkafka_strings():
    assert validate_config({"enable.idempotence": True, "linger.ms": 5}) == {
        "enable.idempotence": "true", "linger.ms": "5"}


@pytest.mark.parametrize("kwargs, message", [
    ({"messages": None}, "exactly one of messages="),
    ({"messages": 10, "duration": 1.0}, "exactly one of messages="),
    ({"messages": 10, "keys": "hashed"}, "keys='hashed' is not a key scheme"),
    ({"messages": 10, "poll": "sometimes"}, "poll='sometimes'"),
    ({"messages": 10, "rate": 0}, "rate=0 must be a positive"),
    ({"messages": 10, "topics": []}, "topics=\\[\\] must be"),
    ({"messages": 10, "topics": "t"}, "topics='t' must be a non-empty list"),
    ({"messages": 10, "topics": ["bad topic name!"]},
     "topic name 'bad topic name!' is not allowed: use 1 to 249 ASCII letters"),
    ({"messages": 10, "topics": [".."]}, "topic name '..' is not allowed"),
    ({"messages": 10, "size": 10}, "size=10 is smaller than the 24-byte mark.*id_in='headers'"),
    ({"messages": 10, "id_in": "footer"}, "id_in='footer' must be one of value, headers"),
])
def test_bad_workloads_fail_before_anything_starts(kwargs, message):
    # Nothing listens on this address: the arguments are refused before any client exists.
    with pytest.raises(ValueError, match=message):
        run_producer(Cluster("127.0.0.1:9"), {}, **kwargs)


def test_unknown_keys_are_refused_by_librdkafka(cluster1):
    with pytest.raises(ValueError, match="no.such.key"):
        run_producer(cluster1, {"no.such.key": "1"}, messages=1)


def test_every_message_is_recorded_and_found_where_its_report_said(cluster1):
    topic = unique_name("prod")
    cluster1.create_topic(topic, partitions=3)
    run = run_producer(cluster1, {"acks": "all"}, messages=3000, keys="uniform", key_count=50,
                       topics=[topic])
    assert run.sent == run.delivered == 3000 and run.failed == run.unreported == 0
    rec = run.records
    assert list(rec.msg_id) == list(range(3000))
    assert (rec.latency_ms > 0).all() and (rec.t_delivered >= rec.t_send).all()
    found = read_topic(cluster1, [topic])
    assert set(found.run_id) == {run.run_id}
    merged = rec.merge(found, on="msg_id", suffixes=("", "_read"))
    assert len(merged) == 3000
    assert (merged.partition == merged.partition_read).all()
    assert (merged.offset == merged.offset_read).all()
    assert (merged.key == merged.key_read).all()
    assert (metrics.keys_stick_to_partitions(rec).partitions == 1).all()


def test_ids_in_headers_leave_the_value_to_the_payload(cluster1):
    topic = unique_name("hdr")
    cluster1.create_topic(topic, partitions=1)
    run = run_producer(cluster1, {}, messages=500, size=10, id_in="headers", topics=[topic])
    assert run.delivered == 500 and list(run.records.msg_id) == list(range(500))
    consumer = Consumer(cluster1.client_config(**{"group.id": unique_name("g"),
                                                  "logger": client_log}))
    try:
        consumer.assign([TopicPartition(topic, 0, 0)])
        msg = wait_until(lambda: next(iter(consumer.consume(1, 1)), None), 60,
                         "the topic's first message")
    finally:
        consumer.close()
    assert len(msg.value()) == 10 and dict(msg.headers())["lab.id"].startswith(
        run.run_id.encode())
    found = read_topic(cluster1, [topic])
    assert set(found.run_id) == {run.run_id} and sorted(found.msg_id) == list(range(500))
    sent = run.started_wall + run.records.set_index("msg_id").t_send
    assert (found.set_index("msg_id").t_produced - sent).abs().max() < 1e-3


def test_acks_0_deliveries_have_no_offsets(cluster1):
    run = run_producer(cluster1, {"acks": "0"}, messages=200, topics=[unique_name("a0")])
    assert run.delivered == 200 and (run.records.offset == -1).all()


def test_never_polling_with_a_small_queue_raises_buffer_error(cluster1):
    run = run_producer(cluster1, {"queue.buffering.max.messages": 100}, messages=1000,
                       poll="never", on_full="drop", topics=[unique_name("q")])
    assert run.buffer_errors > 0 and run.dropped == run.buffer_errors
    assert run.delivered + run.dropped == 1000
    assert (run.records.error == "BufferError").sum() == run.dropped


def test_dropping_the_producer_without_flush_loses_reports(cluster1):
    run = run_producer(cluster1, {"linger.ms": 100}, messages=5000, flush=False,
                       topics=[unique_name("nf")])
    assert run.unreported > 0
    assert run.delivered + run.unreported == 5000


def test_rate_is_never_exceeded_and_duration_bounds_the_run(cluster1):
    run = run_producer(cluster1, {}, messages=None, duration=1.0, rate=500,
                       topics=[unique_name("rate")])
    # Sends are scheduled at i / rate; at most 1 ms of them may go early.
    assert 0 < run.sent <= 500 * 1.001 + 1
    assert run.records.t_send.max() < 1.0 + 0.05


def test_statistics_show_bytes_on_the_wire_and_compression(cluster1):
    topic = unique_name("wire")
    runs = compare(cluster1, {"none": {"compression.type": "none", "linger.ms": 20},
                              "zstd": {"compression.type": "zstd", "linger.ms": 20}},
                   messages=2000, size=200, topics=[topic], stats_interval_ms=100)
    wire = metrics.wire_table(runs)
    assert wire.loc["none", "wire_bytes_per_msg"] > 200  # value plus framing
    assert wire.loc["zstd", "wire_bytes_per_msg"] < wire.loc["none", "wire_bytes_per_msg"] / 2
    assert wire.loc["none", "batch_msgs_avg"] > 1


def test_key_schemes():
    assert make_keys("none", 5) is None
    assert make_keys("sequential", 3) == [b"key-0", b"key-1", b"key-2"]
    zipf = make_keys("zipf", 10_000, key_count=100, zipf_s=1.2)
    uniform = make_keys("uniform", 10_000, key_count=100)
    top = max(zipf.count(k) for k in set(zipf))
    assert top > 3 * max(uniform.count(k) for k in set(uniform))
    assert make_keys("uniform", 100, seed=1) == make_keys("uniform", 100, seed=1)


def test_a_pool_of_large_values_stays_within_its_memory_budget():
    small = make_payloads(100)
    assert len(small) == 1024 and {len(v) for v in small} == {100}
    large = make_payloads(900 * 1024, "random")
    assert {len(v) for v in large} == {900 * 1024}
    assert sum(map(len, large)) <= POOL_BYTES and len(large) == 64  # 72 fit: a power of two


def test_values_larger_than_a_full_pool_are_all_sent(cluster1):
    topic = unique_name("big-values")
    cluster1.create_topic(topic, partitions=1, replication_factor=1,
                          config={"max.message.bytes": str(2 * 1024 * 1024)})
    try:
        run = run_producer(cluster1, {"message.max.bytes": 2_000_000}, messages=80,
                           size=900 * 1024, payload="random", topics=[topic])
        assert run.delivered == 80, run.records.error.value_counts()
    finally:
        cluster1.delete_topic(topic)
