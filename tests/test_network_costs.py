"""What a network costs a producer (labkit.analysis.network_costs), on hand-made runs: no broker."""

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from labkit.analysis import network_costs


def records(latencies, size=100, errors=None):
    n = len(latencies)
    t_send = np.arange(n) * 0.01
    lat = np.asarray(latencies, dtype=float)
    return pd.DataFrame({
        "msg_id": np.arange(n), "topic": "t", "key": None, "size": size,
        "partition": 0, "offset": np.arange(n), "t_send": t_send,
        "t_delivered": t_send + lat / 1000, "latency_ms": lat,
        "error": errors if errors is not None else [""] * n,
    })


def stats(produce_by_broker, tx_bytes=0):
    """The last librdkafka statistics sample, with a bootstrap pseudo-broker as it has."""
    brokers = {f"127.0.0.1:{9000 + b}/{b}": {"nodeid": b, "req": {"Produce": n, "Metadata": 3}}
               for b, n in produce_by_broker.items()}
    brokers["127.0.0.1:9092/bootstrap"] = {"nodeid": -1, "req": {"Metadata": 1}}
    return [{"brokers": {}}, {"brokers": brokers, "tx_bytes": tx_bytes}]


def run(latencies, acks="all", rate=1000.0, wall_s=1.0, produce=None, tx_bytes=0, size=100,
        errors=None):
    rec = records(latencies, size=size, errors=errors)
    delivered = int((rec.error == "").sum())
    return SimpleNamespace(
        records=rec, stats=stats(produce or {}, tx_bytes) if produce is not None else [],
        config={"acks": acks} if acks else {}, workload={"rate": rate, "size": size},
        sent=len(rec), delivered=delivered, failed=len(rec) - delivered, wall_s=wall_s)


def test_produce_requests_per_broker_from_the_last_sample():
    counts = network_costs.produce_requests(stats({1: 40, 2: 0, 3: 20}))
    assert counts.to_dict() == {1: 40, 3: 20}  # the bootstrap broker and idle brokers left out
    assert network_costs.produce_requests([]).empty


def test_delay_table_rows_per_delay_and_setting():
    runs = {(0, "acks=1"): run([2.0] * 100, acks="1", produce={1: 10, 2: 10, 3: 10}),
            (20, "acks=all"): run([50.0] * 99 + [45.0], acks="all", wall_s=2.0,
                                  produce={1: 25, 2: 25}),
            (20, "defaults"): run([3.0] * 100, acks=None)}
    table = network_costs.delay_table(runs, warmup_s=0, settled_s={(0, "acks=1"): 0.25})
    assert list(table.columns) == list(network_costs.DELAY_COLUMNS)
    assert list(table.index) == [(0.0, "acks=1"), (20.0, "acks=all"), (20.0, "defaults")]
    row = table.loc[(20.0, "acks=all")]
    assert row.msgs_per_s == 50 and row.share_of_offered == 0.05
    assert row.min_ms == 45 and row.p50_ms == pytest.approx(50, rel=0.01)
    assert row.produce_requests == 50 and row.msgs_per_request == 2
    assert row.requests_per_s_per_broker == 12.5  # 50 requests, 2 s, 2 brokers
    assert table.loc[(0.0, "acks=1"), "settled_s"] == 0.25
    assert np.isnan(table.loc[(20.0, "acks=all"), "settled_s"])
    assert table.loc[(20.0, "defaults"), "acks"] == ""  # no acks set: not counted as all
    assert np.isnan(table.loc[(20.0, "defaults"), "msgs_per_request"])  # no statistics


def test_min_latency_counts_the_warmup_and_only_deliveries():
    rec = [1.0] + [30.0] * 98 + [0.5]
    errors = [""] * 99 + ["_MSG_TIMED_OUT"]  # a failed report's latency is no delivery
    table = network_costs.delay_table({(5, "acks=all"): run(rec, errors=errors)})
    assert table.min_ms.iloc[0] == 1.0


def test_round_trip_floor_holds_only_above_two_delays_less_the_slack():
    table = pd.DataFrame(
        {"acks": ["all", "all", "all", "1", "-1"], "min_ms": [0.2, 39.2, 38.9, 3.0, np.nan]},
        index=pd.MultiIndex.from_tuples(
            [(0.0, "a"), (20.0, "a"), (20.0, "b"), (20.0, "acks=1"), (5.0, "c")],
            names=["delay_ms", "setting"]))
    floor = network_costs.round_trip_floor(table, slack_ms=0.5)
    # no floor at 0 ms, none for acks=1; -1 is acks=all; no delivery at all does not hold
    assert list(floor.index) == [(20.0, "a"), (20.0, "b"), (5.0, "c")]
    assert floor.floor_ms.tolist() == [39.0, 39.0, 9.0]
    assert floor.holds.tolist() == [True, False, False]


def connections(name, rows, read="2024-01-01 00:00:10"):
    frame = pd.DataFrame(rows, columns=["dst", "bytes_up", "opened"])
    frame["opened"] = pd.to_datetime(frame.opened, utc=True, format="ISO8601")
    return frame.assign(src=name, client_id=name, bytes_down=0, state="closed",
                        read=pd.Timestamp(read, tz="UTC"))


def test_link_table_counts_the_wire_from_the_networks_side():
    t0 = "2024-01-01 00:00:00"
    conns = {"none": connections("none", [("1", 100, t0), ("1", 400_000, t0),
                                          ("2", 500_000, t0)]),
             "zstd": connections("zstd", [("1", 50_000, t0), ("2", 50_000, t0)])}
    runs = {"none": run([100.0] * 2000, wall_s=4.0, rate=1000, size=200, produce={1: 1},
                        tx_bytes=900_000),
            "zstd": run([10.0] * 2000, wall_s=2.0, rate=1000, size=200, produce={1: 1},
                        tx_bytes=100_000)}
    table = network_costs.link_table(runs, conns, link_mbit=1.0)
    assert list(table.columns) == list(network_costs.LINK_COLUMNS)
    none, zstd = table.loc["none"], table.loc["zstd"]
    assert none.wire_bytes == 900_100 and none.wire_bytes_per_msg == pytest.approx(450.05)
    assert none.client_bytes_per_msg == 450
    assert none.capacity_mbit == 2.0  # two brokers, 1 Mbit/s each
    assert none.wire_mbit_per_s == pytest.approx(900_100 * 8 / 4 / 1e6)
    assert none.link_use == pytest.approx(none.wire_mbit_per_s / 2)
    assert none.offered_mbit_per_s == pytest.approx(1.6)  # 1000 msg/s of 200 B
    assert zstd.payload_mbit_per_s == pytest.approx(2000 * 200 * 8 / 2 / 1e6)
    assert zstd.msgs_per_s == 1000 and zstd.share_of_offered == 1


def test_link_bounds_allow_the_rate_from_each_links_first_connection():
    conns = {"none": connections("none", [("1", 1_250_000, "2024-01-01 00:00:00"),
                                          ("1", 10, "2024-01-01 00:00:05"),
                                          ("2", 1_250_001, "2024-01-01 00:00:00"),
                                          ("3", 100, "2024-01-01 00:00:09.5")])}
    bounds = network_costs.link_bounds(conns, link_mbit=1.0)
    # 1 Mbit/s for 10 s is 1,250,000 bytes; link 3 opened 0.5 s before the reading
    assert bounds.span_s.tolist() == [10.0, 10.0, 0.5]
    assert bounds.allowed_bytes.tolist() == [1_250_000, 1_250_000, 62_500]
    assert bounds.within.tolist() == [False, False, True]  # link 1 holds 10 more, link 2 one
    slack = network_costs.link_bounds(conns, link_mbit=1.0, slack_s=0.001)
    assert slack.within.tolist() == [True, True, True]
    assert network_costs.link_bounds({}, 1.0).empty


def test_request_bounds_allow_one_request_per_round_trip_and_connection():
    runs = {(20.0, "acks=all"): run([50.0] * 10, wall_s=2.0, produce={1: 50, 2: 51, 3: 20}),
            (20.0, "acks=1"): run([5.0] * 10, acks="1", produce={1: 500}),
            (0.0, "acks=all"): run([5.0] * 10, produce={1: 500})}
    conns = {key: pd.DataFrame({"dst": dsts}) for key, dsts in (
        ((20.0, "acks=all"), ["1", "2", "3", "3"]), ((20.0, "acks=1"), ["1"]),
        ((0.0, "acks=all"), ["1"]))}
    bounds = network_costs.request_bounds(runs, conns, slack_ms=0.0)
    # Only acks=all under a delay; 2 s / 40 ms = 50 requests per connection.
    assert list(bounds.index) == [(20.0, "acks=all", 1), (20.0, "acks=all", 2),
                                  (20.0, "acks=all", 3)]
    assert bounds.ceiling.tolist() == [50, 50, 100]  # two connections to broker 3
    assert bounds.within.tolist() == [True, False, True]
    assert bounds.used.tolist() == [1.0, 1.02, 0.2]
    assert network_costs.request_bounds(runs, conns, slack_ms=0.5).within.all()
