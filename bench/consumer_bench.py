"""How fast does labkit's consumer group drain a backlog, next to references in the same run?

On one single-broker ``LocalCluster``, a 6-partition topic is filled with N 100-byte
records (with labkit's headers), then drained from the beginning by:

(a) ``labkit.workloads.consumer.ConsumerGroup`` with 3 members (threads), no simulated processing:
    every message recorded (headers parsed, a row kept), auto commit;
(b) 3 bare confluent-kafka consumers in threads of the same process: ``consume(1000)``
    and count, nothing else;
(c) Kafka's own ``org.apache.kafka.tools.ConsumerPerformance`` (one Java consumer).

Rates are from the first to the last message consumed (group joining excluded); rounds are
interleaved and the medians compared as ratios. The issue's target for (a) is 150k msg/s.
Printed, never asserted. Run: ``make bench`` or ``python bench/consumer_bench.py --help``.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import threading
import time
import uuid

from confluent_kafka import Consumer

from labkit import LocalCluster
from labkit.cluster import jars
from labkit.workloads.consumer import ConsumerGroup
from labkit.workloads.producer import run_producer

PARTITIONS = 6
MEMBERS = 3
TARGET = 150_000
PERF_CLASS = "org.apache.kafka.tools.ConsumerPerformance"


def fill(cluster, records: int) -> str:
    """Create a topic and write ``records`` 100-byte records with labkit's producer."""
    topic = f"drain-{uuid.uuid4().hex[:8]}"
    cluster.create_topic(topic, partitions=PARTITIONS, replication_factor=1)
    run = run_producer(cluster, {"acks": "1", "linger.ms": 20}, messages=records, size=100,
                       topics=[topic], payload="random")
    assert run.delivered == records, run.totals()
    return topic


def labkit_group(cluster, topic: str, records: int) -> float:
    """Drain with a 3-member ConsumerGroup; return msg/s from first to last message."""
    with ConsumerGroup(cluster, [topic], members=MEMBERS, stats_interval_ms=0,
                       batch_size=1000) as group:
        group.wait_for_messages(records, timeout=600)
    t = group.messages().t
    return records / (t.max() - t.min())


def bare_group(cluster, topic: str, records: int) -> float:
    """Drain with 3 bare consumers in threads; return msg/s from first to last message."""
    group_id = f"bare-{uuid.uuid4().hex[:8]}"
    counts, firsts, lasts = [0] * MEMBERS, [], []
    done = threading.Event()

    def member(k: int) -> None:
        consumer = Consumer(cluster.client_config(**{
            "group.id": group_id, "auto.offset.reset": "earliest"}))
        consumer.subscribe([topic])
        try:
            while not done.is_set():
                batch = consumer.consume(1000, 0.2)
                if batch:
                    now = time.perf_counter()
                    if not counts[k]:
                        firsts.append(now)
                    counts[k] += len(batch)
                    lasts.append(now)
                    if sum(counts) >= records:
                        done.set()
        finally:
            consumer.close()

    threads = [threading.Thread(target=member, args=(k,)) for k in range(MEMBERS)]
    for thread in threads:
        thread.start()
    done.wait(600)
    done.set()
    for thread in threads:
        thread.join(60)
    return sum(counts) / (max(lasts) - min(firsts))


def consumer_performance(cluster, topic: str, records: int) -> float:
    """Drain with Kafka's ConsumerPerformance; return its fetch-phase msg/s."""
    cmd = [jars.find_java(), "-Xmx512m", "-cp", jars.classpath(), PERF_CLASS,
           "--bootstrap-server", cluster.bootstrap_servers, "--topic", topic,
           "--messages", str(records), "--group", f"perf-{uuid.uuid4().hex[:8]}"]
    if shutil.which("setpriv"):
        cmd = ["setpriv", "--pdeathsig", "KILL", *cmd]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise RuntimeError(f"ConsumerPerformance failed:\n{(done.stdout + done.stderr)[-2000:]}")
    # header: start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg,
    # nMsg.sec, rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec
    lines = [ln for ln in done.stdout.splitlines() if re.match(r"^\d{4}-", ln)]
    fields = [f.strip() for f in lines[-1].split(",")]
    return float(fields[9])


def main(argv: list[str] | None = None) -> None:
    """Run the interleaved rounds and print medians and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args(argv)
    results: dict[str, list[float]] = {"a labkit group": [], "b bare consumers": [],
                                       "c ConsumerPerformance": []}
    with LocalCluster(brokers=1, heap="512m") as cluster:
        cluster.start()
        topic = fill(cluster, args.records)
        for round_ in range(args.repeat):
            results["a labkit group"].append(labkit_group(cluster, topic, args.records))
            results["b bare consumers"].append(bare_group(cluster, topic, args.records))
            results["c ConsumerPerformance"].append(
                consumer_performance(cluster, topic, args.records))
            print(f"round {round_ + 1}: " + ", ".join(
                f"{name} {values[-1]:,.0f}" for name, values in results.items()), flush=True)
    med = {name: statistics.median(values) for name, values in results.items()}
    print(f"\nDraining {args.records:,} x 100 B records from {PARTITIONS} partitions "
          f"(median of {args.repeat}, msg/s from first to last message):")
    for name, value in med.items():
        print(f"  {name:24} {value:12,.0f} msg/s  {value * 100 / 2**20:7.1f} MiB/s")
    a, b, c = med.values()
    print(f"  a/b = {a / b:.2f}   a/c = {a / c:.2f}")
    print(f"  target a >= {TARGET:,} msg/s: {'met' if a >= TARGET else 'NOT met'}")


if __name__ == "__main__":
    main()
