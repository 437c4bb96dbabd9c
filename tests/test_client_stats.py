"""librdkafka statistics as tables, on samples a real producer and consumer recorded.

``tests/data/librdkafka_stats_producer.json.gz``: a producer (acks=all, linger.ms=5,
2000 msg/s for 1.6 s, statistics every 500 ms) on a 3-broker lab cluster, with the sample
``run_producer`` waits for after its flush. ``librdkafka_stats_consumer.json.gz``: a consumer
reading that topic slowly, so its partitions show lag.
"""

import gzip
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from labkit.analysis import client_stats, metrics

DATA = Path(__file__).parent / "data"


def load(kind: str) -> list[dict]:
    with gzip.open(DATA / f"librdkafka_stats_{kind}.json.gz", "rt") as f:
        return json.load(f)


@pytest.fixture(scope="module")
def producer_stats():
    return load("producer")


@pytest.fixture(scope="module")
def consumer_stats():
    return load("consumer")


def test_broker_windows_one_row_per_sample_and_real_broker(producer_stats):
    table = client_stats.broker_windows(producer_stats)
    brokers = {b["nodeid"] for s in producer_stats for b in s["brokers"].values()
               if b["nodeid"] >= 0}
    assert set(table.broker) == brokers
    assert len(table) == len(producer_stats) * len(brokers)
    per_sample = table.groupby("sample")[["t_start", "t"]].first()
    # Windows follow each other: each starts where the previous ended.
    assert (per_sample.t_start.iloc[1:].to_numpy() == per_sample.t.iloc[:-1].to_numpy()).all()
    first = producer_stats[0]
    assert per_sample.t_start.iloc[0] == pytest.approx((first["ts"] - first["age"]) / 1e6)


def test_broker_windows_keep_librdkafkas_numbers_in_ms(producer_stats):
    table = client_stats.broker_windows(producer_stats)
    row = table.iloc[0]
    raw = next(b for b in producer_stats[0]["brokers"].values() if b["nodeid"] == row.broker)
    assert row.rtt_avg_ms == raw["rtt"]["avg"] / 1000
    assert row.int_latency_cnt == raw["int_latency"]["cnt"]
    assert row.produce_requests == raw["req"]["Produce"]


def test_an_empty_window_has_no_average_not_a_zero(producer_stats):
    table = client_stats.broker_windows(producer_stats)
    empty = table[table.int_latency_cnt == 0]
    assert len(empty), "the recorded run has windows after its last message"
    assert empty.int_latency_avg_ms.isna().all()


def test_zero_moves_every_time(producer_stats):
    plain = client_stats.broker_windows(producer_stats)
    shifted = client_stats.broker_windows(producer_stats, zero=plain.t_start.min())
    assert shifted.t_start.min() == pytest.approx(0)
    assert np.allclose(shifted.t - plain.t, -plain.t_start.min())


def test_every_message_is_counted_once_by_queue_time_and_batches(producer_stats):
    sent = producer_stats[-1]["txmsgs"]
    assert client_stats.broker_windows(producer_stats).int_latency_cnt.sum() == sent
    assert client_stats.topic_windows(producer_stats).batchcnt_sum.sum() == sent
    counts = client_stats.messages_by_broker(producer_stats)
    assert counts.sent.sum() == sent and counts.answered.sum() == sent


def test_partition_queues_read_the_consumers_lag(consumer_stats):
    table = client_stats.partition_queues(consumer_stats)
    assert (table.partition >= 0).all()
    assert (client_stats.partition_queues(consumer_stats, unassigned=True).partition < 0).any()
    known = table.dropna(subset=["consumer_lag", "committed_offset", "ls_offset"])
    assert len(known) and table.consumer_lag.isna().any()  # -1 (not known yet) is NaN
    # librdkafka's consumer_lag: last stable offset minus committed offset.
    assert (known.consumer_lag == known.ls_offset - known.committed_offset).all()
    assert (known.consumer_lag > 0).any()


def test_latency_parts_for_the_run_and_per_window(producer_stats):
    run = client_stats.latency_parts(producer_stats, per="run")
    assert len(run) == 1
    row = run.iloc[0]
    assert row.messages == producer_stats[-1]["txmsgs"]
    assert row.total_ms == pytest.approx(row.queued_ms + row.outbuf_ms + row.rtt_ms)
    assert row.total_low_ms <= row.total_ms <= row.total_high_ms
    windows = client_stats.latency_parts(producer_stats)
    assert len(windows) == len(producer_stats)
    assert windows.messages.sum() == row.messages
    # The queue part is per message either way: only the per-request parts are weighed.
    by_request = client_stats.latency_parts(producer_stats, per="run", weight="request").iloc[0]
    assert by_request.queued_ms == pytest.approx(row.queued_ms)
    windows_all = client_stats.broker_windows(producer_stats)
    assert by_request.rtt_ms == pytest.approx(windows_all.rtt_sum_ms.sum()
                                              / windows_all.rtt_cnt.sum())


@pytest.mark.parametrize("kwargs, match", [({"per": "broker"}, "per='broker'"),
                                           ({"weight": "bytes"}, "weight='bytes'")])
def test_latency_parts_refuses_an_unknown_choice(producer_stats, kwargs, match):
    with pytest.raises(ValueError, match=match):
        client_stats.latency_parts(producer_stats, **kwargs)


def test_batches_of_the_run(producer_stats):
    found = client_stats.batches(producer_stats)
    assert found.txmsgs == producer_stats[-1]["txmsgs"]
    assert found.msgs_per_request == pytest.approx(found.txmsgs / found.produce_requests)
    assert found.batches * found.msgs_per_batch == pytest.approx(found.txmsgs)
    assert client_stats.batches([]).isna().all()


def test_stats_summary_reads_through_the_same_tables(producer_stats):
    table = metrics.stats_summary(producer_stats)
    windows = client_stats.broker_windows(producer_stats)
    broker = table.index[0]
    mine = windows[windows.broker == broker]
    assert table.loc[broker, "rtt_avg_ms"] == pytest.approx(mine.rtt_sum_ms.sum()
                                                            / mine.rtt_cnt.sum())
    assert table.attrs["client"]["batch_msgs_avg"] == client_stats.batches(
        producer_stats).msgs_per_batch


def _records(latencies_ms, delivered_s):
    n = len(latencies_ms)
    return pd.DataFrame({"t_send": np.asarray(delivered_s) - np.asarray(latencies_ms) / 1000,
                         "t_delivered": delivered_s, "latency_ms": latencies_ms,
                         "error": [""] * n})


def test_measured_by_window_counts_reports_where_they_were_served():
    parts = pd.DataFrame({"t_start": [0.0, 0.5], "t": [0.5, 1.0]})
    records = _records([10.0, 20.0, 40.0], [0.1, 0.4, 0.7])
    table = client_stats.measured_by_window(records, parts)
    assert table.delivered.tolist() == [2, 1]
    assert table.mean_ms.tolist() == [15.0, 40.0]


def test_parts_table_sets_the_measurement_beside_the_parts(producer_stats):
    windows = client_stats.broker_windows(producer_stats)
    sent = producer_stats[-1]["txmsgs"]
    records = _records(np.full(sent, 50.0), np.linspace(0.1, 1.5, sent))
    run = SimpleNamespace(stats=producer_stats, records=records, delivered=sent,
                          throughput=sent / 1.6)
    item = SimpleNamespace(label="acks=all, linger.ms=5", mode="fixed", run=run,
                           config={"acks": "all", "linger.ms": "5"},
                           zero=float(windows.t_start.min()))
    table = client_stats.parts_table([item])
    row = table.loc["acks=all, linger.ms=5"]
    parts = client_stats.latency_parts(producer_stats, item.zero, per="run").iloc[0]
    assert row.linger_ms == 5 and row.counted == sent
    assert row.measured_mean_ms == 50.0
    assert row.gap_ms == pytest.approx(50.0 - parts.total_ms)
    assert row.inside == (parts.total_low_ms <= 50.0 <= parts.total_high_ms)
