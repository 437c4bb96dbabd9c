"""Notebook 06's experiments on a real cluster behind the lab network.

Bounds follow from the rules (a 10 ms hold between brokers gives no acks=all delivery under
2 x 9.5 ms; a 0.5 Mbit/s link carries no more), so they hold on a slow machine too.
"""

import matplotlib
import pytest

from labkit.cluster import ExternalCluster, FaultInjectionUnavailable, unique_name
from labkit.experiments import network_latency

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def topics(cluster3net):
    names = [unique_name("net06")]
    cluster3net.create_topic(names[0], partitions=3, replication_factor=3)
    yield names
    cluster3net.delete_topic(names[0])


def test_measure_under_a_delay_between_brokers_then_heals(cluster3net, topics):
    slack_ms = network_latency.SLACK_S * 1000
    measured = network_latency.measure(cluster3net, {"acks": "all", "linger.ms": 5},
                                       delay_ms=10, messages=200, rate=400, topics=topics)
    run = measured.run
    assert run.delivered == run.sent == 200
    assert run.records.latency_ms.min() >= 2 * (10 - slack_ms)
    # The rules were in force during the run, and are gone after it.
    assert set(measured.links.delay_ms) == {10.0} and len(measured.links) == 6
    assert cluster3net.network.links().empty
    # The connections are the run's own (its client.id), read once its messages were in the log.
    assert set(measured.connections.client_id) == {run.config["client.id"]}
    assert measured.connections.bytes_up.sum() > 200 * 100
    assert measured.settled_s < network_latency.SETTLE_TIMEOUT_S


def test_compression_on_a_slow_link_stays_within_the_link(cluster3net, topics):
    on_link = network_latency.compression_on_link(
        cluster3net, ["none", "zstd"], link_mbit=0.5, rate=1000, seconds=0.5, size=200,
        config={"linger.ms": 20}, topics=topics)
    assert on_link.bounds.within.all()
    assert set(on_link.bounds.index.get_level_values("name")) == {"none", "zstd"}
    table = on_link.table
    assert (table.delivered == 500).all()
    assert table.wire_bytes_per_msg["zstd"] < table.wire_bytes_per_msg["none"]
    # What librdkafka says it sent is what the network passed, within a few requests.
    assert (table.client_bytes_per_msg / table.wire_bytes_per_msg).between(0.95, 1.05).all()
    assert cluster3net.network.links().empty


def test_delay_sweep_records_every_delay_and_setting(cluster3net, topics):
    settings = {"acks=1": {"acks": "1"}, "acks=all": {"acks": "all"}}
    sweep = network_latency.delay_sweep(cluster3net, settings, [0, 5], rate=500, seconds=0.2,
                                        topics=topics, warmup_s=0)
    assert list(sweep.table.index) == [(0.0, "acks=1"), (0.0, "acks=all"), (5.0, "acks=1"),
                                       (5.0, "acks=all")]
    assert (sweep.table.delivered == 100).all()
    assert list(sweep.floor.index) == [(5.0, "acks=all")] and sweep.floor.holds.all()


def test_bad_input_is_refused_before_anything_runs(cluster3net, topics):
    with pytest.raises(ValueError, match=r"delays_ms=\[0, -1\] must be a non-empty list"):
        network_latency.delay_sweep(cluster3net, {"a": {"acks": "1"}}, [0, -1], rate=10,
                                    seconds=1, topics=topics)
    with pytest.raises(ValueError, match=r"delays_ms=\[0, 5, 0\] names a delay twice"):
        network_latency.delay_sweep(cluster3net, {"a": {"acks": "1"}}, [0, 5, 0], rate=10,
                                    seconds=1, topics=topics)
    with pytest.raises(ValueError, match="compression.type='brotli' is not allowed"):
        network_latency.compression_on_link(cluster3net, ["brotli"], link_mbit=1, rate=10,
                                            seconds=1, topics=topics)
    with pytest.raises(ValueError, match="link_mbit=0 must be a number >= 0.001"):
        network_latency.measure(cluster3net, {}, link_mbit=0, messages=1, topics=topics)
    assert cluster3net.network.links().empty


def test_a_cluster_without_the_lab_network_is_named_not_run(cluster1):
    assert network_latency.network_of(cluster1) is None
    with pytest.raises(FaultInjectionUnavailable, match="need the lab network"):
        network_latency.delay_sweep(cluster1, {"a": {"acks": "1"}}, [0], rate=10, seconds=1)
    external = ExternalCluster(cluster1.bootstrap_servers)
    assert network_latency.network_of(external) is None
