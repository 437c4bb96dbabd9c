"""What the lab network's proxy costs: throughput, latency, and how exact an injected delay is.

Two 3-broker ``LocalCluster``s run side by side, one plain and one behind the lab network
(``network=True``, nothing injected unless said), and every round measures on both, in turn:

- **flat out**: the bare produce loop (``workloads.producer.bare_loop``: no bookkeeping),
  acks=1, ``--records`` x 100 B to a fresh 6-partition topic with replication factor 3
  (replication passes the proxy too): msg/s;
- **at a fixed rate**: labkit's producer at ``--rate`` msg/s for ``--seconds`` s, acks=1,
  librdkafka's default batching: median delivery latency (librdkafka's, in ms). (With
  ``linger.ms=0`` every message is a request of its own, and the brokers, which answer a
  connection's requests one at a time, fall behind: the median measures that queue, not
  the network.)
- **with a 5 ms delay each way on the client links** (network cluster only): the same fixed
  rate run with ``network.delay("clients", "*", 5)``, and the round trip the proxy added,
  measured two ways with and without the delay:

  - **ping**: the median of ``--pings`` Kafka ApiVersions requests sent one at a time on a
    connection of its own (client id ``bench-ping``, so a client to the proxy), each timed
    from the request's first byte out to the response's last byte in. Nothing else shares
    the connection, so nothing but the network and the broker's answer is in it: this is
    the figure the target is judged on.
  - **librdkafka's rtt**: the median over the run's statistics windows of the producer's
    own request round trip (``rtt`` p50; an empty window is no value). Its produce requests
    can queue behind each other on one connection and carry batches that grow with the
    delay, so it is shown beside the ping, not judged.

  (The delivery-latency medians move by more than a round trip: a longer wait also changes
  how messages batch.)

Targets (issue 13), medians of ``--repeat`` interleaved rounds, printed, never asserted:
throughput through the proxy >= 0.7x without it; added median latency with nothing injected
<= 0.3 ms; the added round trip under 5 ms each way within 10 % of 10 ms.

Run: ``make bench`` (section ``network``) or ``python bench/network_bench.py --help``.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import struct
import time

import pandas as pd
from confluent_kafka import Producer
from targets import Target, line, positive_int, summary, within

from labkit import LocalCluster
from labkit.analysis import client_stats
from labkit.cluster import Cluster, unique_name
from labkit.workloads.producer import bare_loop, run_producer

DELAY_MS = 5.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=positive_int, default=300_000,
                        help="records per flat-out run (default 300000)")
    parser.add_argument("--rate", type=positive_int, default=1000,
                        help="msg/s of the fixed-rate runs (default 1000)")
    parser.add_argument("--seconds", type=float, default=4.0,
                        help="seconds of each fixed-rate run (default 4)")
    parser.add_argument("--pings", type=positive_int, default=200,
                        help="ApiVersions requests per ping (default 200)")
    parser.add_argument("--repeat", type=positive_int, default=3,
                        help="interleaved rounds (default 3)")
    return parser.parse_args(argv)


def flat_out(cluster: Cluster, records: int) -> float:
    """The bare loop's msg/s, acks=1, into a fresh 6-partition topic of replication factor 3."""
    topic = unique_name("bench-net")
    cluster.create_topic(topic, partitions=6, replication_factor=3)
    producer = Producer(cluster.client_config(acks="1", **{"client.id": "bench-flat-out"}))
    try:
        return records / bare_loop(producer, topic, [b"x" * 100] * 8, records)
    finally:
        cluster.delete_topic(topic)


def ping(cluster: Cluster, count: int) -> float:
    """The median round trip (ms) of ``count`` ApiVersions requests, one at a time, to broker 1.

    Version 0 of the request is its header alone (api key 18, version, correlation id,
    client id ``bench-ping``); the response is read whole (4-byte size, then the rest).
    """
    host, port = cluster.bootstrap_servers.split(",")[0].rsplit(":", 1)
    client_id = b"bench-ping"
    times = []
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for correlation in range(count):
            body = struct.pack(">hhih", 18, 0, correlation, len(client_id)) + client_id
            start = time.perf_counter()
            sock.sendall(struct.pack(">i", len(body)) + body)
            (size,) = struct.unpack(">i", _read(sock, 4))
            _read(sock, size)
            times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def _read(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("the broker closed the connection")
        data += chunk
    return data


def fixed_rate(cluster: Cluster, rate: int, seconds: float) -> tuple[float, float]:
    """labkit's producer at ``rate`` msg/s, acks=1: median delivery latency and request rtt (ms).

    The rtt is librdkafka's: the median of its per-window p50 over the run and the brokers.
    """
    topic = unique_name("bench-net")
    cluster.create_topic(topic, partitions=3, replication_factor=3)
    try:
        # A new partition answers slowly until its followers fetch: write to it first.
        run_producer(cluster, {"acks": "all"}, messages=200, topics=[topic])
        run = run_producer(cluster, {"acks": "1", "client.id": "bench-rate"},
                           duration=seconds, rate=rate, topics=[topic], stats_interval_ms=500)
        windows = client_stats.broker_windows(run.stats)
        return float(run.records.latency_ms.median()), float(windows.rtt_p50_ms.median())
    finally:
        cluster.delete_topic(topic)


def main(argv: list[str] | None = None) -> list[Target]:
    """Start both clusters, run the interleaved rounds, print a table; return the targets."""
    args = parse_args(argv)
    print(f"\n== The lab network's cost: 3 brokers with and without the proxy, {args.repeat} "
          f"interleaved rounds; flat out {args.records:,} x 100 B acks=1; {args.rate:,} msg/s "
          f"for {args.seconds:g} s acks=1 ==", flush=True)
    rows = []
    with LocalCluster(brokers=3) as plain, LocalCluster(brokers=3, network=True) as net:
        plain.start()
        net.start()
        for number in range(1, args.repeat + 1):
            row = {"round": number}
            row["plain msg/s"] = flat_out(plain, args.records)
            row["proxy msg/s"] = flat_out(net, args.records)
            row["plain p50 ms"], row["plain rtt ms"] = fixed_rate(plain, args.rate, args.seconds)
            row["proxy p50 ms"], row["proxy rtt ms"] = fixed_rate(net, args.rate, args.seconds)
            row["proxy ping ms"] = ping(net, args.pings)
            net.network.delay("clients", "*", DELAY_MS)
            try:
                row["proxy+5ms p50 ms"], row["proxy+5ms rtt ms"] = fixed_rate(
                    net, args.rate, args.seconds)
                row["proxy+5ms ping ms"] = ping(net, args.pings)
            finally:
                net.network.heal()
            print("  " + "  ".join(f"{k} {v:,.2f}" for k, v in row.items()), flush=True)
            rows.append(row)
            time.sleep(1)
    table = pd.DataFrame(rows).set_index("round")
    med = table.median()
    print(f"\nMedians of {args.repeat} rounds:\n{med.to_string(float_format='{:,.2f}'.format)}")
    ratio = med["proxy msg/s"] / med["plain msg/s"]
    added = med["proxy p50 ms"] - med["plain p50 ms"]
    round_trip = med["proxy+5ms ping ms"] - med["proxy ping ms"]
    rtt_added = med["proxy+5ms rtt ms"] - med["proxy rtt ms"]
    found = [
        Target("network: flat out through the proxy / without", f"{ratio:.2f}", ">= 0.7",
               bool(ratio >= 0.7)),
        Target("network: added p50 latency, nothing injected", f"{added:.2f} ms", "<= 0.3 ms",
               bool(added <= 0.3)),
        Target(f"network: added round trip, {DELAY_MS:g} ms each way on client links",
               f"{round_trip:.2f} ms", "10 ms +- 10 %",
               bool(within(round_trip, 2 * DELAY_MS, 0.10))),
    ]
    for target in found:
        print(line(target))
    print(f"  (librdkafka's own request rtt, p50, grew by {rtt_added:.2f} ms under the same "
          "delay: shown beside the ping, not judged)")
    return found


if __name__ == "__main__":
    print(summary(main()))
