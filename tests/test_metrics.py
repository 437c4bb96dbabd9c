"""Metrics on hand-made records: no broker."""

import numpy as np
import pandas as pd
import pytest

from labkit.analysis import metrics


def records(latencies, t_send=None, errors=None, partitions=None, size=100):
    n = len(latencies)
    t_send = np.arange(n) * 0.01 if t_send is None else np.asarray(t_send)
    lat = np.asarray(latencies, dtype=float)
    return pd.DataFrame({
        "msg_id": np.arange(n), "topic": "t", "key": None, "size": size,
        "partition": partitions if partitions is not None else np.zeros(n, dtype=int),
        "offset": np.arange(n), "t_send": t_send, "t_delivered": t_send + lat / 1000,
        "latency_ms": lat, "error": errors if errors is not None else [""] * n,
    })


def test_latency_percentiles_skip_the_warmup():
    lat = [1000.0] * 10 + [1.0] * 980 + [5.0] * 10  # a slow start, then steady
    pct = metrics.latency_percentiles(records(lat), warmup_s=0.1)
    assert pct.attrs == {"warmup_s": 0.1, "count": 990}
    assert pct["p50"] == pytest.approx(1.0, rel=0.01)
    assert pct["p99.9"] == pytest.approx(5.0, rel=0.01)
    assert pct["max"] == pytest.approx(5.0, rel=0.01)
    everything = metrics.latency_percentiles(records(lat), warmup_s=0)
    assert everything["max"] == pytest.approx(1000, rel=0.01)


def test_default_warmup_is_a_tenth_capped_at_a_second():
    assert metrics.default_warmup(records([1.0] * 101)) == pytest.approx(0.1)
    assert metrics.default_warmup(records([1.0] * 10_001)) == 1.0


def test_throughput_buckets_count_only_delivered():
    rec = records([0.0] * 4, t_send=[0.0, 0.05, 0.15, 0.16], errors=["", "", "", "_MSG_TIMED_OUT"])
    tp = metrics.throughput(rec, bucket_s=0.1)
    assert list(tp.msgs_per_s) == [20.0, 10.0]
    assert list(tp.mb_per_s) == pytest.approx([2000 / 1e6, 1000 / 1e6])


def test_balance_of_even_and_skewed_spreads():
    even = metrics.balance([1000, 1010, 990, 1000])
    skewed = metrics.balance([4000, 10, 10, 10])
    assert even["chi2_p"] > 0.5 and even["max_min_ratio"] < 1.03
    assert skewed["chi2_p"] < 1e-6 and skewed["max_min_ratio"] == 400
    assert metrics.balance([5, 5], partitions=3)["empty"] == 1


def test_pareto_front_keeps_undominated_points():
    points = pd.DataFrame({"x": [10, 20, 30, 15], "y": [1.0, 2.0, 5.0, 3.0]})
    assert list(metrics.pareto_front(points, "x", "y").index) == [0, 1, 2]


def test_config_label_reads_like_a_person_wrote_it():
    config = {"linger.ms": 5, "batch.size": 16384, "compression.type": "lz4"}
    assert metrics.config_label(config) == "linger.ms=5, batch.size=16 KiB, lz4"
    assert metrics.config_label({"batch.size": "1000000", "compression.type": "none"}) == (
        "batch.size=1 MB, no compression")
    assert metrics.config_label({"batch.size": 1500}) == "batch.size=1,500 B"
    assert metrics.config_label({}) == "defaults"


def test_stats_summary_averages_windows_over_the_run():
    sample = {"tx_bytes": 500, "txmsgs": 10, "brokers": {
        "b1": {"nodeid": 1, "rtt": {"sum": 4000, "cnt": 2}, "int_latency": {"sum": 0, "cnt": 0},
               "txbytes": 500, "tx": 3},
        "boot": {"nodeid": -1}},
        "topics": {"t": {"batchcnt": {"sum": 10, "cnt": 2}, "batchsize": {"sum": 800, "cnt": 2}}}}
    later = {**sample, "tx_bytes": 900, "topics": {"t": {"batchcnt": {"sum": 20, "cnt": 2},
                                                          "batchsize": {"sum": 0, "cnt": 0}}}}
    table = metrics.stats_summary([sample, later])
    assert list(table.index) == [1] and table.loc[1, "rtt_avg_ms"] == 2.0
    client = table.attrs["client"]
    assert client["wire_bytes"] == 900 and client["batch_msgs_avg"] == 7.5
    assert client["batch_bytes_avg"] == 400


def test_comparison_reads_the_numbers():
    assert metrics.comparison(4.73, 4.10) == "higher than"
    assert metrics.comparison(4.10, 4.73) == "lower than"
    assert metrics.comparison(4.10, 4.12, tolerance=0.05) == "about the same as"


def test_step_tables_leave_out_the_start():
    table = pd.DataFrame(
        {"paused": [0, 6, 2, 0, 3, 3], "handovers": [0, 2, 2, 0, 3, 3]},
        index=pd.MultiIndex.from_product([["range", "KIP-848"], ["start", "add m4", "remove m1"]],
                                         names=["scenario", "phase"]))
    paused, handovers = metrics.step_tables(table, ["paused", "handovers"])
    assert sorted(paused.columns) == ["add m4", "remove m1"]
    assert paused.at["range", "add m4"] == 6 and paused.at["KIP-848", "remove m1"] == 3
    assert handovers.at["range", "remove m1"] == 2
