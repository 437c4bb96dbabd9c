"""Does labkit's end-to-end latency agree with Kafka's own ``EndToEndLatency`` tool?

On one 3-broker ``LocalCluster`` (acks=all, 100-byte values, a fresh 3-partition topic with
replication factor 3 for every measurement), each round measures, in this order:

(c) ``org.apache.kafka.tools.EndToEndLatency`` (kafka-tools, the Java clients, in a JVM):
    one record at a time, ``send().get()`` then ``poll()`` until it is read back; the time
    from before ``send()`` to ``poll()`` returning it, floored to whole ms, and its
    percentiles taken as ``sorted[int(n * q)]``. Its producer has ``linger.ms=0``, its
    consumer ``fetch.max.wait.ms=0``. It runs as fast as one record in flight allows, so
    its rate is 1000 / its average latency (ms).
(a) labkit at that same rate: ``run_producer`` with the tool's producer settings (acks=all,
    linger.ms=0) into a 3-member ``ConsumerGroup`` started and settled beforehand, with the
    group's defaults (as the notebooks use it); ``e2e_ms = t_consumed - t_produced``, the
    wall clock when ``consume()`` returned the message minus the wall-clock send time the
    message carries (one process, one clock).
(d) the same with ``batch_size=1``: a diagnostic, not a target. ``consume(n, timeout)``
    returns when it has ``n`` messages or the timeout passed, and every message of the
    batch gets the time it returned; with one message per call that wait is gone.
(e) labkit at the issue's fixed rate (``--rate``, 10,000 msg/s) with acks=all and the
    client's defaults otherwise (``linger.ms`` 5, as the notebooks send): what a lesson at
    that rate measures. (With linger.ms=0 and no idempotence librdkafka pipelines one tiny
    request after another, and the brokers, which answer a connection's requests one at a
    time, fall behind at this rate.)

(b) beside a and e, a bare confluent-kafka reader in a process of its own
    (``bench/bare_reader.py``: assigned every partition, ``poll()`` one message at a time,
    stamped when ``poll()`` returned it) reads the same messages. Its p50 and p99 over the
    same msg_ids are the like-for-like reference for labkit's readers: same messages, same
    send times, same quantity (a diagnostic, not one of issue 12's targets).

Targets (issue 12): labkit's p50 and p99 within 20 % of EndToEndLatency's, for (a) and
(e), on the tool's own statistic (labkit's samples floored to whole ms and indexed as the
tool does), medians of ``--repeat`` interleaved rounds. Printed, never asserted. See
``bench/README.md`` for why the comparison is built this way.

Run: ``make bench`` or ``python bench/e2e_bench.py --help``.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from targets import Target, line, positive_int, summary, within

from labkit import LocalCluster
from labkit.cluster import Cluster, jars
from labkit.workloads.consumer import ConsumerGroup
from labkit.workloads.producer import run_producer

TOOL_CLASS = "org.apache.kafka.tools.EndToEndLatency"
TOOL_HEAP = "-Xmx256m"
BARE_READER = Path(__file__).with_name("bare_reader.py")
BROKERS = 3
PARTITIONS = 3
RECORD_SIZE = 100
MEMBERS = 3
# EndToEndLatency's producer settings (it hard-codes linger.ms=0 "to ensure writes are
# synchronous"); labkit sends with the same ones at the tool's rate ...
PRODUCER = {"acks": "all", "linger.ms": 0}
# ... and with the client's defaults otherwise at the fixed rate, as the notebooks do.
FIXED_RATE_PRODUCER = {"acks": "all"}
TOLERANCE = 0.2  # issue 12: within 20 % of EndToEndLatency
AVG = re.compile(r"Avg latency: (?P<avg>[\d.]+) ms")
PERCENTILES = re.compile(
    r"Percentiles: 50th = (?P<p50>\d+), 99th = (?P<p99>\d+), 99\.9th = (?P<p999>\d+)")


@dataclass
class Latency:
    """One end-to-end latency measurement, in the statistic of EndToEndLatency.

    Attributes:
        source: "c EndToEndLatency", "a labkit @ tool rate", ...
        rate: msg/s: the tool's own (1000 / avg), or the rate labkit was asked for.
        count: latencies measured (labkit: after its warm-up).
        avg_ms: mean latency (the tool prints it from nanoseconds).
        p50_ms, p99_ms, p999_ms: the tool's percentiles: whole ms (floored), ``sorted[int(n q)]``.
        exact_p50_ms, exact_p99_ms: labkit's unfloored percentiles (NaN for the tool).
        ack_p50_ms, ack_p99_ms: labkit's delivery latency of the same messages, ``produce()``
            to the acknowledgement's report (librdkafka's ``latency()``, unfloored): the part
            of the tool's time before it polls, which labkit's end-to-end time overlaps
            (NaN for the tool).
        bare_p50_ms, bare_p99_ms: the bare reader's end-to-end latency of the same messages,
            unfloored (NaN for the tool and for d).
    """

    source: str
    rate: float
    count: int
    avg_ms: float
    p50_ms: float
    p99_ms: float
    p999_ms: float
    exact_p50_ms: float = float("nan")
    exact_p99_ms: float = float("nan")
    ack_p50_ms: float = float("nan")
    ack_p99_ms: float = float("nan")
    bare_p50_ms: float = float("nan")
    bare_p99_ms: float = float("nan")


def _p50_p99(values: np.ndarray | None) -> list[float]:
    """Unfloored p50 and p99, or NaNs when there are no values."""
    if values is None or not len(values):
        return [float("nan")] * 2
    return [float(v) for v in np.percentile(values, [50, 99])]


def tool_statistic(source: str, rate: float, latencies_ms: np.ndarray,
                   acks_ms: np.ndarray | None = None,
                   bare_ms: np.ndarray | None = None) -> Latency:
    """Summarise latencies (ms) exactly as EndToEndLatency summarises its own; with
    ``acks_ms`` (delivery latencies of the same messages) and ``bare_ms`` (the bare reader's
    end-to-end latencies of the same messages), their p50 and p99 too."""
    whole = np.sort(np.floor(latencies_ms))
    n = len(whole)
    if not n:
        raise RuntimeError(f"{source}: no latency measured")
    return Latency(source, rate, n, float(latencies_ms.mean()), whole[int(n * 0.5)],
                   whole[int(n * 0.99)], whole[int(n * 0.999)], *_p50_p99(latencies_ms),
                   *_p50_p99(acks_ms), *_p50_p99(bare_ms))


def fresh_topic(cluster: Cluster, kind: str) -> str:
    """Create a new 3-partition topic, replicated on every broker, and return its name."""
    name = f"e2e-{kind}-{uuid.uuid4().hex[:8]}"
    cluster.create_topic(name, partitions=PARTITIONS, replication_factor=BROKERS)
    return name


def run_tool(cluster: Cluster, records: int) -> Latency:
    """Run EndToEndLatency for ``records`` records on a fresh topic and parse its summary.

    Raises:
        RuntimeError: it failed, or printed no summary (with the end of its output).
    """
    topic = fresh_topic(cluster, "tool")
    cmd = [jars.find_java(), TOOL_HEAP, "-cp", jars.classpath(), TOOL_CLASS,
           "--bootstrap-server", cluster.bootstrap_servers, "--topic", topic,
           "--num-records", str(records), "--producer-acks", PRODUCER["acks"],
           "--record-size", str(RECORD_SIZE)]
    if shutil.which("setpriv"):  # the kernel kills the JVM if this process dies
        cmd = ["setpriv", "--pdeathsig", "KILL", *cmd]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    avg, pct = AVG.search(done.stdout), PERCENTILES.search(done.stdout)
    if done.returncode != 0 or not avg or not pct:
        raise RuntimeError(f"EndToEndLatency exited with {done.returncode}:\n"
                           f"{(done.stdout + done.stderr)[-2000:]}")
    avg_ms = float(avg["avg"])
    return Latency("c EndToEndLatency", 1000 / avg_ms, records, avg_ms,
                   *(float(pct[k]) for k in ("p50", "p99", "p999")))


@contextlib.contextmanager
def bare_reader(cluster: Cluster, topic: str, count: int, timeout: float):
    """Run ``bare_reader.py`` on ``topic`` until it has read ``count`` messages.

    Yields once the reader is ready (fetching from every partition), then a callable that
    waits for it to finish and returns its end-to-end latencies by msg_id (ms, a Series).

    Raises:
        RuntimeError: the reader failed, or did not get ready in 30 s.
    """
    with tempfile.TemporaryDirectory(prefix="e2e-bare-") as tmp:
        out = Path(tmp) / "e2e.npy"
        cmd = [sys.executable, str(BARE_READER), cluster.bootstrap_servers, topic,
               str(PARTITIONS), str(count), str(out)]
        with subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) as child:
            try:
                ready = [None]
                waiter = threading.Thread(target=lambda: ready.__setitem__(
                    0, child.stdout.readline()), daemon=True)
                waiter.start()
                waiter.join(30)
                if ready[0] != "ready\n":
                    raise RuntimeError(f"the bare reader did not get ready: {ready[0]!r}")

                def result() -> pd.Series:
                    if child.wait(timeout) != 0:
                        raise RuntimeError(f"the bare reader exited with {child.returncode}")
                    rows = np.load(out)
                    return pd.Series(rows[:, 1] / 1e6, index=rows[:, 0]).groupby(level=0).min()
                yield result
            finally:
                if child.poll() is None:
                    child.kill()


def run_labkit(cluster: Cluster, source: str, config: dict, rate: float, records: int,
               warmup_s: float, beside: bool = True, **group: int) -> Latency:
    """Send at ``rate`` into a settled 3-member ConsumerGroup; summarise its ``e2e_ms``.

    ``records`` are measured; the ones sent in the first ``warmup_s`` seconds come on top
    and are left out (connection set-up, empty batches). With ``beside``, a bare reader in
    its own process reads the same messages (``bare_reader``).

    Args:
        cluster: where.
        source: the row's name.
        config: the producer config.
        rate: msg/s.
        records: latencies to measure after the warm-up.
        warmup_s: seconds of sending left out at the start.
        beside: run the bare reader beside labkit's group.
        **group: ConsumerGroup arguments that differ from its defaults (batch_size=1).

    Raises:
        RuntimeError: not every message sent was consumed.
    """
    topic = fresh_topic(cluster, "labkit")
    total = records + int(rate * warmup_s)
    timeout = 120 + total / rate
    with contextlib.ExitStack() as stack:
        consumers = stack.enter_context(
            ConsumerGroup(cluster, [topic], members=MEMBERS, **group))
        consumers.wait_for_stable()
        bare = stack.enter_context(bare_reader(cluster, topic, total, timeout)) if beside else None
        run = run_producer(cluster, config, messages=total, rate=rate, size=RECORD_SIZE,
                           topics=[topic], payload="random")
        # A count, not wait_for_run: it would decode every row while the last are consumed.
        consumers.wait_for_messages(run.delivered, timeout=timeout)
        bare_ms = bare() if bare is not None else None
    rows = consumers.messages()
    rows = rows[rows.run_id == run.run_id].drop_duplicates("msg_id")
    if len(rows) != run.delivered or run.delivered != total:
        raise RuntimeError(f"{source}: {total} sent, {run.delivered} acknowledged, "
                           f"{len(rows)} consumed")
    steady = rows[rows.t_produced >= rows.t_produced.min() + warmup_s]
    acked = run.records.set_index("msg_id").latency_ms.reindex(steady.msg_id)
    if bare_ms is not None:
        bare_ms = bare_ms.reindex(steady.msg_id)
        if bare_ms.isna().any():
            raise RuntimeError(f"{source}: the bare reader missed {bare_ms.isna().sum()} "
                               "of the messages labkit measured")
        bare_ms = bare_ms.to_numpy()
    return tool_statistic(source, rate, steady.e2e_ms.to_numpy(), acked.to_numpy(), bare_ms)


def medians(rounds: list[Latency]) -> pd.DataFrame:
    """One row per source: the median over rounds of every column."""
    frame = pd.DataFrame([asdict(r) for r in rounds])
    return frame.groupby("source", sort=False).median()


def compare(table: pd.DataFrame, source: str, label: str) -> list[Target]:
    """Targets: ``source``'s p50 and p99 within 20 % of EndToEndLatency's."""
    tool, lab = table.loc["c EndToEndLatency"], table.loc[source]
    found = []
    for q in ("p50", "p99"):
        value, reference = lab[f"{q}_ms"], tool[f"{q}_ms"]
        ratio = f"{value / reference:.3f}x" if reference else "n/a"
        found.append(Target(f"e2e {q}: labkit {label} vs EndToEndLatency",
                            f"{value:g} vs {reference:g} ms ({ratio})",
                            f"within {TOLERANCE:.0%}", within(value, reference, TOLERANCE)))
    return found


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=positive_int, default=2000,
                        help="records EndToEndLatency sends one at a time, and latencies "
                             "labkit measures at its rate (default 2000)")
    parser.add_argument("--rate", type=positive_int, default=10_000,
                        help="msg/s of labkit's fixed-rate run (default 10000)")
    parser.add_argument("--seconds", type=float, default=10.0,
                        help="seconds measured at --rate, after the warm-up (default 10)")
    parser.add_argument("--warmup-s", type=float, default=1.0,
                        help="seconds at the start of each labkit run left out (default 1)")
    parser.add_argument("--repeat", type=positive_int, default=3,
                        help="interleaved rounds; medians are reported (default 3)")
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.warmup_s < 0:
        parser.error("--seconds must be > 0 and --warmup-s >= 0")
    return args


def main(argv: list[str] | None = None) -> list[Target]:
    """Start a 3-broker cluster, run the interleaved rounds, print tables; return targets."""
    args = parse_args(argv)
    fixed = f"e labkit @ {args.rate:,} msg/s"
    print(f"\n== End-to-end latency: {BROKERS} brokers, acks=all, {RECORD_SIZE} B, "
          f"{args.repeat} interleaved rounds; linger.ms=0 at the tool's rate, the client's "
          f"default at {args.rate:,} msg/s; labkit leaves out its first {args.warmup_s:g} s ==",
          flush=True)
    rounds: list[Latency] = []
    with LocalCluster(brokers=BROKERS) as cluster:
        cluster.start()
        print(f"{cluster.describe()}; reference: {TOOL_CLASS} from kafka-tools "
              f"{jars.KAFKA_VERSION}", flush=True)
        for round_no in range(1, args.repeat + 1):
            tool = run_tool(cluster, args.records)
            measured = [
                tool,
                run_labkit(cluster, "a labkit @ tool rate", PRODUCER, tool.rate, args.records,
                           args.warmup_s),
                run_labkit(cluster, "d labkit @ tool rate, batch_size=1", PRODUCER, tool.rate,
                           args.records, args.warmup_s, beside=False, batch_size=1),
                run_labkit(cluster, fixed, FIXED_RATE_PRODUCER, args.rate,
                           int(args.rate * args.seconds), args.warmup_s),
            ]
            for m in measured:
                print(f"  round {round_no}: {m.source:<36} {m.rate:>8,.0f} msg/s  "
                      f"p50 {m.p50_ms:g}  p99 {m.p99_ms:g}  p99.9 {m.p999_ms:g} ms  "
                      f"(avg {m.avg_ms:.2f} ms, {m.count:,} latencies)", flush=True)
            rounds += measured
    table = medians(rounds)
    tool_rate = table.loc["c EndToEndLatency", "rate"]
    for title, rows in (
            (f"at EndToEndLatency's own rate ({tool_rate:,.0f} msg/s, one record in flight)",
             ["c EndToEndLatency", "a labkit @ tool rate", "d labkit @ tool rate, batch_size=1"]),
            (f"at the fixed rate ({args.rate:,} msg/s) against EndToEndLatency",
             ["c EndToEndLatency", fixed])):
        print(f"\nMedians of {args.repeat} rounds {title}; ms, p50/p99/p99.9 in "
              "EndToEndLatency's whole-ms statistic, exact_* unfloored:")
        with pd.option_context("display.float_format", "{:,.2f}".format, "display.width", 160):
            print(table.loc[rows].to_string())
    found = (compare(table, "a labkit @ tool rate", "@ tool rate")
             + compare(table, fixed, f"@ {args.rate:,} msg/s"))
    for target in found:
        print(line(target))
    print("\nLike for like (a diagnostic, not one of issue 12's targets): labkit's readers "
          "against a bare reader in its own process, on the same messages; unfloored ms, "
          "medians of the rounds' percentiles:")
    for source in ("a labkit @ tool rate", fixed):
        print("  " + like_for_like(table.loc[source], source))
    return found


def like_for_like(row: pd.Series, source: str) -> str:
    """One line: a labkit row's exact p50 and p99 against the bare reader's, with ratios."""
    parts = [f"{q} {row[f'exact_{q}_ms']:.2f} vs {row[f'bare_{q}_ms']:.2f} ms "
             f"({row[f'exact_{q}_ms'] / row[f'bare_{q}_ms']:.2f}x)" for q in ("p50", "p99")]
    return f"{source}: " + ", ".join(parts)


if __name__ == "__main__":
    print("\n" + summary(main()))

