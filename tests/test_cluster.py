"""The embedded cluster against real Kafka brokers: topics, faults, sharing, bad input."""

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import ConfigResource, ResourceType

import labkit
from labkit.cluster import (
    ClusterUnreachable,
    ExternalCluster,
    FaultInjectionUnavailable,
    LocalCluster,
    class_archive,
    jars,
    labkit_jvms,
    sweep_orphans,
    wait_until,
)
from labkit.cluster.faults import PartitionWatch, wait_healthy


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def broker_config(cluster, broker_id, key):
    resource = ConfigResource(ResourceType.BROKER, str(broker_id))
    configs = cluster.admin().describe_configs([resource])[resource].result(10)
    return configs[key].value


def produce(cluster, topic, count, acks="all"):
    acked = []
    producer = Producer(cluster.client_config(acks=acks))
    for i in range(count):
        producer.produce(topic, str(i).encode(),
                         on_delivery=lambda err, msg: err is None and acked.append(msg.value()))
        producer.poll(0)
    assert producer.flush(30) == 0
    return acked


def read_all(cluster, topic, expected, group=None, timeout=30):
    consumer = Consumer(cluster.client_config(**{
        "group.id": group or unique("reader"), "auto.offset.reset": "earliest",
        "enable.auto.commit": False}))
    consumer.subscribe([topic])
    values = []
    deadline = time.monotonic() + timeout
    try:
        while len(values) < expected and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                values.append(msg.value())
        if group:
            consumer.commit(asynchronous=False)
    finally:
        consumer.close()
    return values


def test_three_brokers_replicate_internal_topics_and_new_topics(cluster3):
    assert cluster3.brokers == [1, 2, 3]
    for broker in cluster3.brokers:
        assert broker_config(cluster3, broker, "offsets.topic.replication.factor") == "3"
        assert broker_config(cluster3, broker, "transaction.state.log.min.isr") == "2"
        assert broker_config(cluster3, broker, "min.insync.replicas") == "2"
        assert broker_config(cluster3, broker, "group.initial.rebalance.delay.ms") == "0"
    topic = unique("rf3")
    cluster3.create_topic(topic, partitions=3, replication_factor=3)
    for p in range(3):
        assert sorted(cluster3.replicas(topic, p)) == [1, 2, 3]
        assert cluster3.isr(topic, p) == [1, 2, 3]
    for node in cluster3.nodes.values():  # bound to loopback only
        assert cluster3.bootstrap_servers.count("127.0.0.1") == 3
        assert f"127.0.0.1:{node.port}" in cluster3.bootstrap_servers


def test_killing_the_leader_elects_another_and_keeps_acks_all_data(cluster3):
    topic = unique("kill")
    cluster3.create_topic(topic, partitions=1, replication_factor=3)
    acked = produce(cluster3, topic, 500, acks="all")
    assert len(acked) == 500
    old = cluster3.leader(topic, 0)
    cluster3.kill(old)
    assert not cluster3.is_running(old)
    new = wait_until(lambda: (lead := cluster3.leader(topic, 0)) not in (old, -1) and lead,
                     60, "a new leader")
    assert new != old and old not in cluster3.isr(topic, 0)
    assert sorted(read_all(cluster3, topic, 500)) == sorted(acked)
    cluster3.restart(old)
    wait_until(lambda: cluster3.isr(topic, 0) == [1, 2, 3], 60, "the ISR to recover")


def test_pause_stops_a_broker_until_resumed(cluster3):
    topic = unique("pause")
    cluster3.create_topic(topic, partitions=1, replication_factor=3)
    paused = cluster3.leader(topic, 0)
    cluster3.pause(paused)
    try:
        assert cluster3.is_paused(paused)
        assert cluster3.status().set_index("broker").state[paused] == "paused"
        # Heartbeats stop, so the controller fences it and moves the leadership away. A
        # metadata request the paused broker accepted is never answered, so the cluster's
        # own admin client (librdkafka's 60 s socket.timeout.ms) could wait a minute for
        # it: the watch asks with a 1 s timeout instead.
        with PartitionWatch(cluster3, topic) as watch:
            wait_until(lambda: set(watch.timeline.leader) - {paused, -1}, 60,
                       "leadership to leave the paused broker")
    finally:
        cluster3.resume(paused)
    assert not cluster3.is_paused(paused)
    wait_until(lambda: paused in cluster3.isr(topic, 0), 60, "the resumed broker to rejoin")


def test_restart_keeps_data_and_rejoins_the_isr(cluster3):
    topic = unique("restart")
    cluster3.create_topic(topic, partitions=1, replication_factor=3)
    acked = produce(cluster3, topic, 200)
    follower = next(b for b in cluster3.replicas(topic, 0) if b != cluster3.leader(topic, 0))
    old_pid = cluster3.nodes[follower].pid
    partition_dir = cluster3.nodes[follower].data_dir / f"{topic}-0"
    assert partition_dir.is_dir()
    cluster3.restart(follower)
    assert cluster3.nodes[follower].pid != old_pid and cluster3.is_running(follower)
    wait_until(lambda: cluster3.isr(topic, 0) == [1, 2, 3], 60, "the ISR to recover")
    assert partition_dir.is_dir()  # same data directory, not a fresh broker
    cluster3.kill(cluster3.leader(topic, 0))  # the restarted replica must hold the data
    wait_until(lambda: cluster3.leader(topic, 0) >= 0, 60, "a new leader")
    assert sorted(read_all(cluster3, topic, 200)) == sorted(acked)
    for broker in cluster3.nodes:
        if not cluster3.is_running(broker):
            cluster3.restart(broker)
    wait_healthy(cluster3, [topic], timeout=120)


def test_log_tail_shows_the_broker_log(cluster3):
    assert "Kafka Server started" in cluster3.log_tail(1, 100_000)
    with pytest.raises(ValueError, match="brokers are \\[1, 2, 3\\]"):
        cluster3.log_tail(7)


def test_single_broker_cluster_serves_a_consumer_group(cluster1):
    assert cluster1.brokers == [1]
    assert broker_config(cluster1, 1, "offsets.topic.replication.factor") == "1"
    assert broker_config(cluster1, 1, "min.insync.replicas") == "1"
    topic = unique("one")
    cluster1.create_topic(topic, partitions=2)
    assert cluster1.replicas(topic, 0) == [1]
    acked = produce(cluster1, topic, 100)
    # A committing group needs __consumer_offsets, which must be creatable with RF 1.
    assert sorted(read_all(cluster1, topic, 100, group=unique("g"))) == sorted(acked)
    assert cluster1.replicas("__consumer_offsets", 0) == [1]


@pytest.mark.parametrize("count", [0, 2, 4, "3"])
def test_unsupported_broker_count_is_refused(count):
    with pytest.raises(ValueError, match="must be one of 1, 3"):
        LocalCluster(brokers=count)


@pytest.mark.broker
def test_a_taken_port_is_skipped():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        taken = probe.getsockname()[1]
    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.bind(("127.0.0.1", taken))
        holder.listen()
        with LocalCluster(brokers=1, base_port=taken) as cluster:
            cluster.start()
            node = cluster.nodes[1]
            assert taken not in (node.port, node.controller_port)
            assert node.port > taken
            assert cluster.brokers == [1]


@pytest.mark.broker
def test_unreachable_bootstrap_servers_fail_fast(monkeypatch):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", f"127.0.0.1:{port}")
    start = time.monotonic()
    with pytest.raises(ClusterUnreachable, match=f"127.0.0.1:{port}.*KAFKA_BOOTSTRAP_SERVERS"):
        labkit.connect()
    assert time.monotonic() - start < 10


def test_external_cluster_inspects_but_cannot_break(cluster3, tmp_path, monkeypatch):
    config = tmp_path / "client.properties"
    config.write_text("# a comment\nclient.id=lab-external\n")
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", cluster3.bootstrap_servers.split(",")[0])
    monkeypatch.setenv("KAFKA_CLIENT_CONFIG", str(config))
    monkeypatch.setenv("LABKIT_STATE_FILE", str(tmp_path / "none.json"))
    external = labkit.connect()
    assert isinstance(external, ExternalCluster)
    assert external.client_config()["client.id"] == "lab-external"
    assert external.brokers == [1, 2, 3]
    with pytest.raises(FaultInjectionUnavailable, match="not available on an external cluster"):
        external.kill(1)
    config.write_text("no.such.setting=1\n")
    with pytest.raises(ValueError, match="no.such.setting"):
        labkit.connect()


def run_labkit(*args, env):
    return subprocess.run([sys.executable, "-m", "labkit", *args], env=env,
                          capture_output=True, text=True, timeout=180)


def test_cluster_status_and_down_say_plainly_when_no_cluster_is_recorded(tmp_path):
    env = {**os.environ, "LABKIT_STATE_FILE": str(tmp_path / "cluster.json")}
    status = run_labkit("cluster", "status", env=env)
    assert status.returncode == 1
    assert status.stdout.strip() == (
        f"no lab cluster is recorded in {tmp_path / 'cluster.json'}: none was started with "
        "`python -m labkit cluster up`, or it was stopped")
    down = run_labkit("cluster", "down", env=env)
    assert down.returncode == 0
    assert down.stdout.strip() == f"nothing to stop: {status.stdout.strip()}"
    assert not down.stderr


@pytest.mark.broker
def test_cluster_up_is_shared_with_other_processes(tmp_path):
    env = {**os.environ, "LABKIT_STATE_FILE": str(tmp_path / "cluster.json")}
    up = run_labkit("cluster", "up", "--brokers", "1", env=env)
    assert up.returncode == 0, up.stderr
    try:
        status = run_labkit("cluster", "status", env=env)
        assert status.returncode == 0 and "running" in status.stdout
        # Another process (a notebook kernel, say) attaches and breaks the broker.
        code = ("import labkit; c = labkit.connect(); assert c.local, c; c.kill(1); "
                "print(c.status().state[0])")
        other = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                               text=True, timeout=60)
        assert other.returncode == 0, other.stderr
        assert other.stdout.strip() == "down"
    finally:
        down = run_labkit("cluster", "down", env=env)
    assert down.returncode == 0
    assert not (tmp_path / "cluster.json").exists()
    assert not [d for d in labkit_jvms().values() if str(tmp_path) in d]


@pytest.mark.broker
@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL])
def test_no_jvm_outlives_the_process_that_started_it(tmp_path, how):
    code = ("import labkit, sys; c = labkit.LocalCluster(brokers=1).start(); "
            "print(c.data_dir, flush=True); sys.stdin.read()")
    owner = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    data_dir = owner.stdout.readline().strip()
    assert data_dir, "the owner did not start its cluster"
    assert [d for d in labkit_jvms().values() if d.startswith(data_dir)]
    owner.send_signal(how)
    owner.wait(30)
    wait_until(lambda: not [d for d in labkit_jvms().values() if d.startswith(data_dir)],
               15, "the owner's JVM to die with it")
    if how == signal.SIGKILL:  # nothing could clean up: the next cluster start sweeps it
        assert os.path.exists(data_dir)
        assert data_dir in map(str, sweep_orphans())
    assert not os.path.exists(data_dir)


@pytest.mark.broker
def test_a_broker_that_cannot_start_fails_with_its_log():
    bad = LocalCluster(brokers=1, broker_config={"num.io.threads": "0"})
    start = time.monotonic()
    with pytest.raises(labkit.ClusterError, match="num.io.threads"):
        bad.start()
    assert time.monotonic() - start < 60
    assert bad.data_dir is not None and not bad.data_dir.exists()


@pytest.mark.broker
def test_brokers_start_from_the_class_archive_setup_records():
    archive = class_archive.build()  # what `labkit setup` does; at once if already recorded
    assert class_archive.flags(jars.find_java()) == [f"-XX:SharedArchiveFile={archive}"]
    with LocalCluster(brokers=1) as cluster:
        cluster.start()  # the storage format tool ran from the archive too
        mapped = Path(f"/proc/{cluster.nodes[1].pid}/maps").read_text()
        assert str(archive) in mapped, "the broker JVM did not map the class archive"
        assert "shared archive" not in (cluster.nodes[1].log_dir / "stdout.log").read_text().lower()


def test_no_class_archive_means_no_flag(tmp_path, monkeypatch):
    monkeypatch.setenv("LABKIT_CACHE", str(tmp_path))
    assert class_archive.flags(jars.find_java()) == []


def test_a_broker_restarted_by_another_process_is_still_the_owners_to_break(cluster3):
    """A notebook kernel restarts a broker of the shared cluster; the owner's handle then
    kills and restarts the new JVM, not the dead one it started (no second JVM, no leak)."""
    old_pid = cluster3.nodes[3].pid
    code = ("from labkit.cluster import LocalCluster\n"
            f"LocalCluster.attach({str(cluster3.state_file)!r}).restart(3)\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    new_pid = cluster3.status().set_index("broker").pid[3]
    assert new_pid != old_pid and cluster3.is_running(3)
    cluster3.kill(3)
    assert not os.path.exists(f"/proc/{new_pid}") or _zombie(new_pid)
    cluster3.restart(3)
    assert cluster3.is_running(3) and cluster3.nodes[3].pid not in (old_pid, new_pid)
    wait_until(lambda: cluster3.brokers == [1, 2, 3], 60, "broker 3 to register again")


def _zombie(pid: int) -> bool:
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split(")")[-1].split()[0] == "Z"


def test_a_broker_unpacks_native_libraries_into_its_own_directory(cluster1):
    # lz4-java unpacks its native library into java.io.tmpdir and leaves it there when the JVM
    # is killed; a node's tmpdir is inside its directory, which stop() removes.
    topic = f"lz4-{uuid.uuid4().hex[:8]}"
    cluster1.create_topic(topic, partitions=1, replication_factor=1)
    producer = Producer(cluster1.client_config(**{"compression.type": "lz4", "linger.ms": 5}))
    for i in range(500):
        producer.produce(topic, b"%d" % i * 20)
    assert producer.flush(30) == 0
    node = cluster1.nodes[1]
    maps = Path(f"/proc/{node.pid}/maps").read_text().splitlines()
    loaded = {line.split()[-1] for line in maps if "liblz4" in line}
    assert loaded and all(path.startswith(f"{node.dir}/tmp/") for path in loaded), loaded


def test_jvm_options_that_are_not_shell_words_are_refused_at_once(monkeypatch):
    monkeypatch.setenv("LABKIT_JVM_OPTIONS", "-Dx='unclosed")
    with pytest.raises(ValueError, match=r"LABKIT_JVM_OPTIONS=.*must be JVM options as shell"):
        LocalCluster(brokers=1)


@pytest.mark.broker
def test_a_jvm_option_the_jvm_refuses_is_named_in_the_start_error(monkeypatch):
    monkeypatch.setenv("LABKIT_JVM_OPTIONS", "-XX:NoSuchLabOption=1")
    with pytest.raises(labkit.ClusterError, match=r"(?s)extra JVM options '-XX:NoSuchLabOption=1'.*"
                                                  r"Unrecognized VM option 'NoSuchLabOption=1'"):
        with LocalCluster(brokers=1) as cluster:
            cluster.start()
