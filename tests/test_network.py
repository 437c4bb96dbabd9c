"""The lab network (``labkit.cluster.network``): who is talking is known, and delay,
bandwidth, partitions and resets do to real Kafka clients what they promise.

Bounds here follow from the rules (a 50 ms hold each way cannot give a round trip under
100 ms; a 2 Mbit/s link cannot carry more), so they hold on a slow machine too.
"""

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

from labkit.cluster import (
    ExternalCluster,
    FaultInjectionUnavailable,
    LocalCluster,
    labkit_jvms,
    labkit_proxies,
    sweep_orphans,
    unique_name,
)
from labkit.cluster.faults import FaultSchedule
from labkit.cluster.network import Network, NetworkError, effective

# -- pure: how rules combine, and what is refused -----------------------------------------------


def test_rules_combine_delays_add_the_lowest_rate_wins_and_a_reset_beats_a_drop():
    rules = {("clients", "1"): {"delay_ms": 5.0, "mbit": 10.0},
             ("app", "1"): {"delay_ms": 2.0, "jitter_ms": 1.0, "mbit": 4.0, "cut": "drop"},
             ("*", "1"): {"cut": "reset"}}
    assert effective(rules, "app", "1") == {"delay_ms": 7.0, "jitter_ms": 1.0, "mbit": 4.0,
                                            "cut": "reset"}
    # 'clients' never matches a broker or the controller; '*' matches everyone.
    assert effective(rules, "2", "1") == {"delay_ms": 0.0, "jitter_ms": 0.0, "mbit": None,
                                          "cut": "reset"}
    assert effective(rules, "1", "app")["cut"] is None  # rules are directed


@pytest.mark.parametrize("call, message", [
    (lambda n: n.delay(4, 1, 5), "src=4 is not a network endpoint; use a broker id"),
    (lambda n: n.delay(1, 1, 5), "src and dst are both '1'"),
    (lambda n: n.delay(1, 2, -1), "ms=-1 is not allowed; it must be a number >= 0"),
    (lambda n: n.delay(1, 2, 5, jitter_ms=6), "jitter_ms=6 is not allowed"),
    (lambda n: n.bandwidth(1, "clients", 0), "mbit=0 is not allowed; it must be a number > 0"),
    (lambda n: n.partition(1, 2, cut="slow"), "cut='slow' is not allowed; use one of drop, reset"),
    (lambda n: n.isolate("app"), "isolate takes a broker id or 'controller'"),
    (lambda n: n.isolate(1, from_="nobody"), "from_='nobody' is not allowed; use one of everyone"),
    (lambda n: n.heal(b=2), "heal(b=...) needs a"),
])
def test_bad_input_is_refused_in_one_sentence_before_anything_is_asked(call, message):
    network = Network("/nonexistent/network.sock", [1, 2, 3])
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        call(network)


def test_a_proxy_that_is_gone_fails_at_once_with_a_clear_error():
    network = Network("/nonexistent/network.sock", [1, 2, 3])
    started = time.monotonic()
    with pytest.raises(NetworkError, match="did not answer .* is the cluster still running"):
        network.links()
    assert time.monotonic() - started < 5


# -- on a real cluster behind the network ----------------------------------------------------------


def _producer(cluster, client_id, **config):
    errors = []
    producer = Producer(cluster.client_config(**{
        "client.id": client_id, "linger.ms": 0, "error_cb": errors.append, **config}))
    return producer, errors


def _send(producer, topic, count, size=100):
    reports = []
    for _ in range(count):
        producer.produce(topic, b"x" * size,
                         on_delivery=lambda err, msg: reports.append((err, msg.latency(),
                                                                      msg.offset())))
        producer.poll(0)
    return reports


def test_every_link_is_told_apart(cluster3net):
    topic = unique_name("net-links")
    cluster3net.create_topic(topic, partitions=1, replication_factor=3)
    producer, _ = _producer(cluster3net, "links-writer", acks="all")
    reports = _send(producer, topic, 20)
    assert producer.flush(30) == 0 and all(err is None for err, _, _ in reports)
    leader = cluster3net.leader(topic, 0)
    pairs = set(zip(cluster3net.network.connections().src,
                    cluster3net.network.connections().dst, strict=True))
    assert ("links-writer", str(leader)) in pairs
    # Replication: each follower fetches from the leader, known by its own client id.
    for follower in {1, 2, 3} - {leader}:
        assert (str(follower), str(leader)) in pairs
    # Each broker reaches the controller through a port of its own.
    assert {(str(b), "controller") for b in (1, 2, 3)} <= pairs
    cluster3net.delete_topic(topic)


def _direct_connections(pid: int, port: int) -> int:
    """Established TCP connections of process ``pid`` to 127.0.0.1:``port`` (from /proc)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            link = os.readlink(fd)
            if link.startswith("socket:["):
                inodes.add(link[8:-1])
    found = 0
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "01" and int(fields[2].rsplit(":", 1)[1], 16) == port \
                    and fields[9] in inodes:
                found += 1
    return found


def test_a_broker_cut_off_from_the_controller_does_not_reconnect_around_the_proxy(cluster3net):
    # After its quorum fetch times out (2 s) a broker reconnects to the endpoint the quorum
    # leader advertises (KIP-853): it must be the proxy's, or the cut would leak.
    cluster3net.network.isolate(2, from_="controller")
    time.sleep(5)
    node = cluster3net.nodes[2]
    assert _direct_connections(node.pid, cluster3net.controller.controller_port) == 0
    cut = cluster3net.network.connections().query("src == '2' and dst == 'controller'")
    assert set(cut.client_id) >= {"raft-client-2", "2"}


def test_a_delay_holds_bytes_each_way_and_keeps_their_order(cluster3net):
    topic = unique_name("net-delay")
    cluster3net.create_topic(topic, partitions=1, replication_factor=3)
    leader = cluster3net.leader(topic, 0)
    cluster3net.network.delay("delayed", leader, 50, jitter_ms=20)
    links = cluster3net.network.links()
    assert set(zip(links.src, links.dst, links.delay_ms, strict=True)) == {
        ("delayed", str(leader), 50.0), (str(leader), "delayed", 50.0)}
    producer, _ = _producer(cluster3net, "delayed", acks="all", **{"enable.idempotence": True})
    reports = _send(producer, topic, 300)
    assert producer.flush(60) == 0
    assert all(err is None for err, _, _ in reports)
    # A request and its response each waited at least 50 - 20 ms: no round trip is shorter.
    assert min(latency for _, latency, _ in reports) >= 0.060
    # Jitter never reorders bytes: the broker parsed every request and kept the send order.
    offsets = [offset for _, _, offset in reports]
    assert offsets == sorted(offsets) and len(set(offsets)) == 300
    cluster3net.delete_topic(topic)


def test_a_bandwidth_limit_caps_what_the_link_carries(cluster3net):
    topic = unique_name("net-rate")
    cluster3net.create_topic(topic, partitions=1, replication_factor=1)
    leader = cluster3net.leader(topic, 0)
    cluster3net.network.bandwidth("narrow", leader, 4, one_way=True)
    producer, _ = _producer(cluster3net, "narrow", acks="1", **{"compression.type": "none"})
    started = time.monotonic()
    _send(producer, topic, 1000, size=1000)  # 1 MB of values
    assert producer.flush(60) == 0
    elapsed = time.monotonic() - started
    sent = cluster3net.network.connections().query(
        "src == 'narrow' and dst == @leader.__str__()").bytes_up.sum()
    assert sent > 1_000_000
    # 4 Mbit/s carries at most 500 kB a second (plus one chunk that leaves at once).
    assert (sent - 65536) * 8 / elapsed <= 4e6


def test_a_dropped_link_goes_silent_and_delivers_once_healed(cluster3net):
    topic = unique_name("net-drop")
    cluster3net.create_topic(topic, partitions=1, replication_factor=3)
    leader = cluster3net.leader(topic, 0)
    producer, _ = _producer(cluster3net, "cut-off", acks="1",
                            **{"message.timeout.ms": 60000, "request.timeout.ms": 30000})
    assert not _send(producer, topic, 1) and producer.flush(30) == 0  # connected, warm
    cluster3net.network.partition("cut-off", leader)
    reports = _send(producer, topic, 50)
    producer.poll(2.0)
    assert reports == []  # nothing answered while the cable is out
    cluster3net.network.heal("cut-off", leader)
    assert producer.flush(60) == 0
    assert len(reports) == 50 and all(err is None for err, _, _ in reports)


def test_a_reset_link_refuses_at_once(cluster3net):
    topic = unique_name("net-reset")
    cluster3net.create_topic(topic, partitions=1, replication_factor=3)
    cluster3net.network.partition("refused", "*", cut="reset")
    producer, errors = _producer(cluster3net, "refused", acks="1")
    _send(producer, topic, 5)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not any(
            e.code() == KafkaError._ALL_BROKERS_DOWN for e in errors):
        producer.poll(0.2)
    assert any(e.code() == KafkaError._ALL_BROKERS_DOWN for e in errors), errors
    closed = cluster3net.network.connections().query("src == 'refused'")
    assert len(closed) and (closed.state == "closed").all() and closed.bytes_down.sum() == 0
    cluster3net.network.heal()
    assert producer.flush(60) == 0


def test_network_faults_are_scheduled_and_recorded_on_the_fault_timeline(cluster3net):
    steps = [(0.2, "isolate", 2, {"from_": "controller"}),
             (0.3, "delay", 3, {"dst": 1, "ms": 7, "one_way": True}), (0.8, "heal", 2)]
    with FaultSchedule(cluster3net, steps) as schedule:
        time.sleep(0.6)
        links = cluster3net.network.links()
        assert set(zip(links.src, links.dst, links.cut.fillna("-"), links.delay_ms,
                       strict=True)) == {("2", "controller", "drop", 0.0),
                                         ("controller", "2", "drop", 0.0), ("3", "1", "-", 7.0)}
    events = schedule.events
    assert list(events.action) == ["isolate", "delay", "heal"]
    assert list(events.broker) == [2, 3, 2]
    assert cluster3net.network.links().empty
    with pytest.raises(ValueError, match=r"options \{'to': 1\} do not fit network.isolate"):
        FaultSchedule(cluster3net, [(0.1, "isolate", 1, {"to": 1})])
    with pytest.raises(ValueError, match=r"do not fit network.delay"):
        FaultSchedule(cluster3net, [(0.1, "delay", 1, {"dst": 2})])  # no ms
    with pytest.raises(ValueError, match="'kill' takes no options"):
        FaultSchedule(cluster3net, [(0.1, "kill", 1, {"from_": "controller"})])


def test_another_process_attached_to_the_cluster_drives_the_same_network(cluster3net):
    attached = LocalCluster.attach(os.environ["LABKIT_NETWORK_STATE_FILE"])
    attached.network.delay(1, "controller", 3, one_way=True)
    assert list(cluster3net.network.links().delay_ms) == [3.0]
    attached.close()
    assert cluster3net.network.answers()  # closing a handle leaves the network up


def test_a_cluster_without_the_network_says_how_to_get_one(cluster3):
    with pytest.raises(FaultInjectionUnavailable, match="has no lab network: start it with "
                                                        r"LocalCluster\(brokers=3, network=True\)"):
        cluster3.network.delay(1, 2, 5)


def test_a_one_way_partition_is_one_way(cluster3net):
    topic = unique_name("net-one-way")
    cluster3net.create_topic(topic, partitions=1, replication_factor=3)
    leader = cluster3net.leader(topic, 0)
    producer, _ = _producer(cluster3net, "half-deaf", acks="1",
                            **{"message.timeout.ms": 60000, "request.timeout.ms": 30000})
    assert not _send(producer, topic, 1) and producer.flush(30) == 0
    watcher = Consumer(cluster3net.client_config(**{"group.id": unique_name("w"),
                                                    "client.id": "net-watcher"}))
    def high() -> int:
        return watcher.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)[1]

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and high() < 1:  # the followers have the first write
        time.sleep(0.1)
    before = high()
    cluster3net.network.partition(leader, "half-deaf", one_way=True)  # answers stop, not requests
    reports = _send(producer, topic, 20)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and high() < before + 20:
        producer.poll(0.2)
    # The writes reached the leader and were appended; not one acknowledgement came back.
    assert before == 1 and high() == before + 20
    assert reports == []
    cluster3net.network.heal()
    assert producer.flush(60) == 0 and len(reports) == 20
    watcher.close()


def test_the_proxy_dies_with_the_process_that_owns_the_cluster(no_jvm_left_behind):
    script = ("import sys, time; from labkit.cluster import LocalCluster; "
              "c = LocalCluster(brokers=1, network=True).start(); "
              "print(c.network_pid, c.data_dir, flush=True); time.sleep(600)")
    owner = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        pid, data_dir = owner.stdout.readline().split()
        proxy = int(pid)
        assert proxy in labkit_proxies()
    finally:
        owner.kill()  # SIGKILL: no atexit, no handler; the kernel's parent-death signal
        owner.wait(30)
    def jvms() -> bool:
        return any(d.startswith(data_dir) for d in labkit_jvms().values())

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and (proxy in labkit_proxies() or jvms()):
        time.sleep(0.1)
    assert proxy not in labkit_proxies() and not jvms()
    assert Path(data_dir) in sweep_orphans()  # what a killed owner leaves, the next start sweeps


def test_an_external_cluster_has_no_network_to_bend(cluster3):
    external = ExternalCluster(cluster3.bootstrap_servers)
    with pytest.raises(FaultInjectionUnavailable, match="network is not available on an "
                                                        "external cluster"):
        external.network.isolate(1)
