"""How fast is labkit's instrumented producer, and how much memory does it take?

On one single-broker ``LocalCluster`` the same workload (100-byte incompressible values,
acks=1, no rate limit) goes through:

(a) ``labkit.workloads.producer.run_producer``: the lab's instrumented producer (every
    message carries its id and send time, one delivery callback records every report, a
    record per message at the end);
(b) ``labkit.workloads.producer.bare_loop``: ``produce()`` without callback, ``poll(0)``
    after each, ``flush()`` at the end, in the same Python process and librdkafka;
(c) Kafka's own ``org.apache.kafka.tools.ProducerPerformance`` (the Java client, in a JVM);
(d) a diagnostic, no target: the bare loop with one delivery callback (in the producer's
    config) that only counts the reports: what hearing of each report in Python costs
    before anything is recorded, so d/b bounds a/b for any instrument that keeps a
    per-message delivery report;
(e) a diagnostic, no target: labkit's per-message sending work (the mark, the send time)
    with no delivery callback: e/b bounds a/b from the sending side;
(f) a diagnostic, no target: e with d's counting callback: f/b is what a/b could reach if
    recording each report cost nothing beyond hearing of it.

The rounds are interleaved a, b, c, d, e, f, a, b, ... and the medians are compared as ratios
(a/b: what labkit's bookkeeping costs; a/c: labkit against the Java client). Then the peak
RSS of a fresh process that runs ``run_producer`` for 1M records is set against one that
only created a producer; at a fixed rate, labkit's delivery latency percentiles are set
against ProducerPerformance's; and ``--profile`` profiles ``run_producer`` with
pyinstrument to show where its time goes.

Timings are printed, never asserted: they only mean something as ratios against the
references of the same run on the same machine. See ``bench/README.md``.

Run: ``make bench`` (every section) or ``python bench/producer_bench.py --help``.
"""

from __future__ import annotations

import argparse
import array
import gc
import json
import re
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from confluent_kafka import Producer, TopicPartition
from confluent_kafka.admin import OffsetSpec
from targets import Target, line, positive_int, summary

from labkit import LocalCluster
from labkit.cluster import Cluster, jars
from labkit.workloads import marks
from labkit.workloads.producer import bare_loop, make_payloads, run_producer

RECORD_SIZE = 100
PARTITIONS = 3
ACKS = "1"
MIB = 1024 * 1024
A_OVER_B_TARGET = 0.8  # issue 12: labkit >= 0.8x the bare loop
A_OVER_C_TARGET = 1.0  # issue 12: labkit >= 1.0x ProducerPerformance
RSS_TARGET_MB = 200  # issue 12: 1M recorded messages in at most 200 MB of producer RSS
MB = 1_000_000  # RSS in MB of 10^6 bytes, the stricter reading of "200 MB"
RSS_PROBE = Path(__file__).with_name("rss_probe.py")
PERF_CLASS = "org.apache.kafka.tools.ProducerPerformance"
PERF_HEAP = "-Xmx512m"
SEND_PATH = "e labkit send path, no callback"
SEND_PATH_COUNTING = "f labkit send path, counting callback"

# ProducerPerformance's summary line, e.g. "1000000 records sent, 253485.4 records/sec
# (24.17 MB/sec), 51.22 ms avg latency, 410.00 ms max latency, 39 ms 50th, 140 ms 95th,
# 215 ms 99th, 362 ms 99.9th." With --warmup-records a second one follows for the records
# after the warm-up: "180000 steady state records sent, ...".
SUMMARY = re.compile(
    r"(?P<records>\d+) (?P<steady>steady state )?records sent, "
    r"(?P<rps>[\d.]+) records/sec \((?P<mbps>[\d.]+) MB/sec\), "
    r"(?P<avg>[\d.]+) ms avg latency, (?P<max>[\d.]+) ms max latency, "
    r"(?P<p50>[\d.]+) ms 50th, (?P<p95>[\d.]+) ms 95th, (?P<p99>[\d.]+) ms 99th, "
    r"(?P<p999>[\d.]+) ms 99\.9th"
)


@dataclass
class Throughput:
    """One throughput measurement.

    Attributes:
        name: which producer ("a labkit", "b bare", "c ProducerPerformance", "d bare, ...").
        records: records the producer reported sent.
        landed: records found in the topic afterwards (sum of end offsets).
        seconds: wall time of the measurement as the producer itself timed it.
        records_per_s: records per second.
        cpu_s: CPU seconds the producing process used over ``seconds`` (all its threads;
            NaN for ProducerPerformance, whose JVM is not measured).
    """

    name: str
    records: int
    landed: int
    seconds: float
    records_per_s: float
    cpu_s: float = float("nan")

    @property
    def cpu_us_per_record(self) -> float:
        """Process CPU microseconds per record (NaN where not measured)."""
        return 1e6 * self.cpu_s / self.records if self.records else float("nan")

    @property
    def mb_per_s(self) -> float:
        """Value MiB per second (ProducerPerformance's "MB/sec": record size x rate / 2^20)."""
        return self.records_per_s * RECORD_SIZE / MIB


# -- the cluster side ---------------------------------------------------------------------


def fresh_topic(cluster: Cluster, kind: str) -> str:
    """Create a new 3-partition, RF 1 topic for one measurement and return its name."""
    name = f"bench-{kind}-{uuid.uuid4().hex[:8]}"
    cluster.create_topic(name, partitions=PARTITIONS, replication_factor=1)
    return name


def landed(cluster: Cluster, topic: str) -> int:
    """Return how many records ``topic`` holds (the sum of its partitions' end offsets)."""
    spec = {TopicPartition(topic, p): OffsetSpec.latest() for p in range(PARTITIONS)}
    futures = cluster.admin().list_offsets(spec)
    return sum(f.result(timeout=30).offset for f in futures.values())


# -- (a) labkit, (b) bare loop, (c) ProducerPerformance -----------------------------------


def measure_labkit(cluster: Cluster, records: int) -> Throughput:
    """Send ``records`` records through the lab's ``run_producer`` (unlimited rate)."""
    topic = fresh_topic(cluster, "labkit")
    run = run_producer(cluster, {"acks": ACKS}, messages=records, size=RECORD_SIZE,
                       topics=[topic], payload="random")
    result = Throughput("a labkit", run.delivered, landed(cluster, topic), run.wall_s,
                        run.throughput, run.cpu_s)
    del run
    gc.collect()  # the run's million-row heap, freed outside any timed section
    return result


def producer_config(cluster: Cluster, counting: bool) -> tuple[dict, list[int]]:
    """The bench's producer config (acks=1), with (``counting``) a delivery callback that
    only counts the reports; returns the config and the one-element count it updates."""
    reports = [0]

    def count(err, msg):
        reports[0] += 1

    extra = {"on_delivery": count} if counting else {}
    return {**cluster.client_config(acks=ACKS), **extra}, reports


def measure_bare(cluster: Cluster, records: int, counting: bool = False) -> Throughput:
    """Send ``records`` records through labkit's bare reference loop: without callbacks, or
    (``counting``) with one delivery callback that only counts the reports."""
    topic = fresh_topic(cluster, "bare")
    values = make_payloads(RECORD_SIZE, "random")  # 1024 incompressible values of 100 B
    config, reports = producer_config(cluster, counting)
    producer = Producer(config)
    cpu0 = time.process_time()
    seconds = bare_loop(producer, topic, values, records)
    cpu = time.process_time() - cpu0
    del producer
    if counting and reports[0] != records:
        raise RuntimeError(f"the counting callback heard {reports[0]} of {records} reports")
    return Throughput("d bare, counting callback" if counting else "b bare", records,
                      landed(cluster, topic), seconds, records / seconds, cpu)


def measure_bare_counting(cluster: Cluster, records: int) -> Throughput:
    """(d): the bare loop with a delivery callback that only counts."""
    return measure_bare(cluster, records, counting=True)


def measure_send_path(cluster: Cluster, records: int, counting: bool = False) -> Throughput:
    """(e): labkit's per-message sending work and no delivery callback at all; (f, with
    ``counting``) the same with a delivery callback that only counts the reports.

    What ``run_producer``'s loop does for each message of an unlimited, keyless run (take
    the wall-clock ns, pack the mark before the payload, ``produce()`` with the key
    argument, store the send time, ``poll(0)``), written out here because the instrument
    itself always records its reports. e is the rate an instrument would reach if hearing
    of the acknowledgements cost Python nothing; f, if recording what it hears did.
    """
    topic = fresh_topic(cluster, "send-path")
    bodies = make_payloads(RECORD_SIZE - marks.MARK_SIZE, "random")
    pick = len(bodies) - 1
    head, pack = marks.head(marks.new_run_id()), marks.MARK.pack
    sent_ns = array.array("q", [0]) * records
    config, reports = producer_config(cluster, counting)
    producer = Producer(config)
    produce, poll, time_ns = producer.produce, producer.poll, time.time_ns
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    for i in range(records):
        while True:
            ns = time_ns()
            try:
                produce(topic, pack(head, i, ns) + bodies[i & pick], None)
                sent_ns[i] = ns
                break
            except BufferError:
                poll(0.1)
        poll(0)
    left = producer.flush(60)
    seconds = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    del producer
    if left or (counting and reports[0] != records):
        raise RuntimeError(f"the send-path loop's flush left {left} records undelivered and "
                           f"its callback heard {reports[0]} reports of {records}")
    name = SEND_PATH_COUNTING if counting else SEND_PATH
    return Throughput(name, records, landed(cluster, topic), seconds, records / seconds, cpu)


def measure_send_path_counting(cluster: Cluster, records: int) -> Throughput:
    """(f): labkit's sending work with a delivery callback that only counts."""
    return measure_send_path(cluster, records, counting=True)


def perf_command(cluster: Cluster, topic: str, records: int, throughput: int,
                 warmup: int = 0) -> list[str]:
    """Return the ``ProducerPerformance`` command line (``throughput`` -1: unlimited)."""
    cmd = [
        jars.find_java(), PERF_HEAP, "-cp", jars.classpath(), PERF_CLASS,
        "--topic", topic, "--num-records", str(records), "--record-size", str(RECORD_SIZE),
        "--throughput", str(throughput), "--bootstrap-server", cluster.bootstrap_servers,
        "--command-property", f"acks={ACKS}",
    ]
    if warmup:
        cmd += ["--warmup-records", str(warmup)]
    # The kernel kills the JVM if this process dies, even by SIGKILL.
    return (["setpriv", "--pdeathsig", "KILL"] if shutil.which("setpriv") else []) + cmd


def parse_summaries(output: str) -> list[dict[str, float]]:
    """Return ProducerPerformance's summary lines, parsed, in the order printed.

    Progress lines ("... records/sec ... ms avg latency, ... ms max latency.") have no
    percentiles, so only the final summaries match: the whole run's, then (with
    ``--warmup-records``) the steady state's, marked ``steady`` True.

    Raises:
        RuntimeError: no summary line in ``output``.
    """
    found = []
    for match in SUMMARY.finditer(output):
        fields = match.groupdict()
        steady = bool(fields.pop("steady"))
        found.append({"steady": steady, **{k: float(v) for k, v in fields.items()}})
    if not found:
        raise RuntimeError(f"no summary line in ProducerPerformance's output:\n{output[-2000:]}")
    return found


def run_perf(cluster: Cluster, topic: str, records: int, throughput: int,
             warmup: int = 0) -> list[dict[str, float]]:
    """Run ProducerPerformance in its own JVM and return its parsed summary lines.

    Raises:
        RuntimeError: it failed (with the end of its output).
    """
    cmd = perf_command(cluster, topic, records, throughput, warmup)
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise RuntimeError(f"ProducerPerformance exited with {done.returncode}:\n"
                           f"{(done.stdout + done.stderr)[-2000:]}")
    return parse_summaries(done.stdout)


def measure_perf(cluster: Cluster, records: int) -> Throughput:
    """Send ``records`` records with ProducerPerformance (unlimited rate)."""
    topic = fresh_topic(cluster, "perf")
    total = next(s for s in run_perf(cluster, topic, records, throughput=-1) if not s["steady"])
    rps = total["rps"]
    return Throughput("c ProducerPerformance", int(total["records"]), landed(cluster, topic),
                      total["records"] / rps, rps)


# -- throughput: interleaved rounds, medians, ratios --------------------------------------


def throughput_rounds(cluster: Cluster, records: int, repeat: int) -> list[Throughput]:
    """Measure a, b, c, d, e, f in turn, ``repeat`` times, and return every measurement."""
    results = []
    for round_no in range(1, repeat + 1):
        for measure in (measure_labkit, measure_bare, measure_perf, measure_bare_counting,
                        measure_send_path, measure_send_path_counting):
            result = measure(cluster, records)
            check_landed(result, records)
            cpu = (f", {result.cpu_us_per_record:.2f} CPU us/record"
                   if result.cpu_s == result.cpu_s else "")
            print(f"  round {round_no}: {result.name:<37} {result.records_per_s:>10,.0f} rec/s "
                  f"({result.seconds:.2f} s, {result.landed:,} records in the topic{cpu})",
                  flush=True)
            results.append(result)
    return results


def check_landed(result: Throughput, records: int) -> None:
    """Refuse a rate for records that were not all sent, or did not all land in the topic.

    Raises:
        RuntimeError: the producer reported fewer records than asked for, or the topic holds
            a different number than it reported.
    """
    if not result.records == result.landed == records:
        raise RuntimeError(
            f"{result.name} was asked for {records} records, reported {result.records} "
            f"sent and the topic holds {result.landed}: no rate is computed from that"
        )


def medians(results: list[Throughput]) -> pd.DataFrame:
    """Return one row per producer: the median records/s and MB/s of its rounds."""
    frame = pd.DataFrame({"producer": r.name, "records_per_s": r.records_per_s,
                          "mb_per_s": r.mb_per_s, "cpu_us": r.cpu_us_per_record}
                         for r in results)
    table = frame.groupby("producer").agg(
        rounds=("records_per_s", "size"),
        median_records_per_s=("records_per_s", "median"),
        min_records_per_s=("records_per_s", "min"),
        max_records_per_s=("records_per_s", "max"),
        median_mb_per_s=("mb_per_s", "median"),
        median_cpu_us_per_record=("cpu_us", "median"),
    )
    return table


def report_ratios(table: pd.DataFrame) -> list[Target]:
    """Print a/b and a/c (of the medians) and whether each meets its target."""
    rps = table["median_records_per_s"]
    a, b, c = rps["a labkit"], rps["b bare"], rps["c ProducerPerformance"]
    found = [Target(name, f"{ratio:.3f}", f">= {goal:.1f}", bool(ratio >= goal))
             for name, ratio, goal in (
                 ("producer: labkit / bare loop (a/b)", a / b, A_OVER_B_TARGET),
                 ("producer: labkit / ProducerPerformance (a/c)", a / c, A_OVER_C_TARGET))]
    for target in found:
        print(line(target))
    d = rps["d bare, counting callback"]
    print(f"  diagnostic: bare loop with a counting delivery callback / bare loop (d/b) "
          f"{d / b:.3f}, labkit / that (a/d) {a / d:.3f}: a per-message report heard in "
          f"Python alone leaves {d / b:.0%} of the bare rate")
    e, f = rps[SEND_PATH], rps[SEND_PATH_COUNTING]
    print(f"  diagnostic: labkit's send path with no delivery callback / bare loop (e/b) "
          f"{e / b:.3f}; with a counting callback (f/b) {f / b:.3f}, labkit / that (a/f) "
          f"{a / f:.3f}: f/b is what a/b could reach if recording each report cost nothing "
          f"beyond hearing of it")
    return found


def throughput_section(cluster: Cluster, records: int, repeat: int) -> list[Target]:
    """Run the interleaved throughput rounds, print the medians and ratios, return targets."""
    print(f"\n== Throughput: {records:,} records of {RECORD_SIZE} B, acks={ACKS}, unlimited "
          f"rate, {repeat} interleaved rounds, a fresh {PARTITIONS}-partition topic each ==",
          flush=True)
    results = throughput_rounds(cluster, records, repeat)
    table = medians(results)
    with pd.option_context("display.float_format", "{:,.1f}".format, "display.width", 140):
        print(table.to_string())
    return report_ratios(table)


# -- memory: peak RSS of a producer process --------------------------------------------


def probe_rss(cluster: Cluster, topic: str, what: str) -> dict:
    """Run ``rss_probe.py`` in a fresh Python process and return what it printed.

    Raises:
        RuntimeError: the probe failed (with the end of its output).
    """
    cmd = [sys.executable, str(RSS_PROBE), cluster.bootstrap_servers, topic, what]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise RuntimeError(f"rss_probe.py {what} exited with {done.returncode}:\n"
                           f"{(done.stdout + done.stderr)[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def rss_section(cluster: Cluster, records: int) -> list[Target]:
    """Peak RSS of a fresh process that runs ``run_producer`` for ``records`` records.

    Beside it, the baseline: a fresh process that imported the same modules, connected and
    created a producer, and sent nothing. The target is on the peak, baseline included.
    """
    print(f"\n== Memory: peak RSS of a fresh Python process running run_producer for "
          f"{records:,} records of {RECORD_SIZE} B (acks={ACKS}, unlimited rate), records "
          "DataFrame built; MB = 10^6 bytes ==", flush=True)
    baseline = probe_rss(cluster, fresh_topic(cluster, "rss-base"), "baseline")
    topic = fresh_topic(cluster, "rss")
    run = probe_rss(cluster, topic, str(records))
    check_landed(Throughput("a labkit (RSS probe)", run["delivered"], landed(cluster, topic),
                            float("nan"), float("nan")), records)
    base, peak = baseline["peak_rss"] / MB, run["peak_rss"] / MB
    rows = [("baseline: imported labkit, created a producer, sent nothing", base),
            (f"run_producer: {records:,} records sent and recorded", peak)]
    width = max(len(name) for name, _ in rows)
    for name, mb in rows:
        print(f"  {name:<{width}}  {mb:7,.1f} MB")
    print(f"  above the baseline: {peak - base:,.1f} MB, "
          f"{1e6 * (peak - base) / records:,.0f} bytes per record")
    goal = f"<= {RSS_TARGET_MB} MB"
    name = f"producer: peak RSS, {records:,} records"
    if records != 1_000_000:
        name += " (target is for 1M)"
    target = Target(name, f"{peak:,.0f} MB", goal, bool(peak <= RSS_TARGET_MB))
    print(line(target))
    return [target]


# -- latency at a fixed rate --------------------------------------------------------------


def labkit_latency(cluster: Cluster, records: int, rate: int, warmup_s: float) -> dict:
    """Send at ``rate`` through labkit and return its steady-state latency percentiles (ms).

    ``latency_ms`` is librdkafka's own measure (``produce()`` until the broker's answer);
    records sent in the first ``warmup_s`` seconds are left out.
    """
    topic = fresh_topic(cluster, "labkit-lat")
    run = run_producer(cluster, {"acks": ACKS}, messages=records, rate=rate, size=RECORD_SIZE,
                       topics=[topic], payload="random")
    rows = run.records
    steady = rows.latency_ms[(rows.t_send >= warmup_s) & (rows.error == "")].to_numpy()
    achieved = run.sent / rows.t_send.max()
    del run, rows
    gc.collect()
    p50, p95, p99, p999 = np.percentile(steady, [50, 95, 99, 99.9])
    return {"producer": "a labkit", "steady_records": len(steady), "achieved_rate": achieved,
            "avg_ms": steady.mean(), "p50_ms": p50, "p95_ms": p95, "p99_ms": p99,
            "p99.9_ms": p999, "max_ms": steady.max()}


def perf_latency(cluster: Cluster, records: int, rate: int, warmup_s: float) -> dict:
    """Send at ``rate`` with ProducerPerformance and return its steady-state summary (ms).

    The first ``rate * warmup_s`` records are its ``--warmup-records``, so at the fixed rate
    they are about the first ``warmup_s`` seconds, as for labkit.
    """
    topic = fresh_topic(cluster, "perf-lat")
    warmup = int(rate * warmup_s)
    summaries = run_perf(cluster, topic, records, throughput=rate, warmup=warmup)
    steady = next(s for s in summaries if s["steady"] == bool(warmup))
    return {"producer": "c ProducerPerformance", "steady_records": int(steady["records"]),
            "achieved_rate": steady["rps"], "avg_ms": steady["avg"], "p50_ms": steady["p50"],
            "p95_ms": steady["p95"], "p99_ms": steady["p99"], "p99.9_ms": steady["p999"],
            "max_ms": steady["max"]}


def latency_section(cluster: Cluster, records: int, rate: int, warmup_s: float) -> None:
    """Compare labkit's delivery latency with ProducerPerformance's at a fixed rate."""
    print(f"\n== Latency at {rate:,} msg/s: {records:,} records of {RECORD_SIZE} B, "
          f"acks={ACKS}; the first {warmup_s:g} s ({int(rate * warmup_s):,} records) is "
          "warm-up and left out ==", flush=True)
    rows = [labkit_latency(cluster, records, rate, warmup_s),
            perf_latency(cluster, records, rate, warmup_s)]
    table = pd.DataFrame(rows).set_index("producer")
    with pd.option_context("display.float_format", "{:,.2f}".format, "display.width", 120):
        print(table.to_string())
    a, c = table.loc["a labkit"], table.loc["c ProducerPerformance"]
    print(f"  p50: labkit {a.p50_ms:.2f} ms vs ProducerPerformance {c.p50_ms:.0f} ms; "
          f"p99: labkit {a.p99_ms:.2f} ms vs ProducerPerformance {c.p99_ms:.0f} ms "
          "(ProducerPerformance reports whole milliseconds)")


# -- profile ------------------------------------------------------------------------------


def hot_spots(root, count: int) -> list[tuple[float, str]]:
    """Return the ``count`` functions with the most self time in a pyinstrument frame tree.

    Each is ``(percent of the whole profile, "function  file:line")``. Self time is time in
    the function's own code, not in what it calls (for a built-in such as
    ``Producer.produce``, that is the time in C).
    """
    totals: dict[str, float] = {}
    stack = [root]
    while stack:
        frame = stack.pop()
        stack.extend(frame.children)
        if not frame.is_synthetic:
            where = f"{frame.function}  {frame.file_path_short or ''}"
            if frame.line_no:
                where += f":{frame.line_no}"
            totals[where] = totals.get(where, 0.0) + frame.total_self_time
    ranked = sorted(totals.items(), key=lambda item: -item[1])[:count]
    return [(100 * seconds / root.time, where) for where, seconds in ranked]


def profile_section(cluster: Cluster, records: int, lines: int) -> None:
    """Profile ``run_producer`` with pyinstrument and print the call tree and the hot spots."""
    from pyinstrument import Profiler  # only this section needs it

    print(f"\n== Profile: run_producer, {records:,} records of {RECORD_SIZE} B, acks={ACKS}, "
          "unlimited rate (pyinstrument; the whole call, including building the records) ==",
          flush=True)
    topic = fresh_topic(cluster, "profile")
    profiler = Profiler(interval=0.001)
    profiler.start()
    run = run_producer(cluster, {"acks": ACKS}, messages=records, size=RECORD_SIZE,
                       topics=[topic], payload="random")
    session = profiler.stop()
    print(f"  send loop + flush: {run.wall_s:.2f} s ({run.throughput:,.0f} rec/s) of the "
          f"profiled {session.duration:.2f} s")
    tree = profiler.output_text(unicode=True, time="percent_of_total")
    print("\n".join(tree.splitlines()[:lines]))
    print("-- hot spots: self time, % of the whole profile --")
    for percent, where in hot_spots(session.root_frame(), lines // 2):
        print(f"  {percent:5.1f}%  {where}")


# -- main ---------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        description="Throughput, memory and latency of labkit's producer against its bare "
                    "reference loop and Kafka's ProducerPerformance, on one single-broker "
                    "local cluster.")
    parser.add_argument("--records", type=positive_int, default=1_000_000,
                        help="records per throughput measurement (default 1000000)")
    parser.add_argument("--repeat", type=positive_int, default=3,
                        help="interleaved rounds of a, b, c; medians are reported (default 3)")
    parser.add_argument("--rss-records", type=positive_int, default=1_000_000,
                        help="records of the RSS probe's run_producer (default 1000000; the "
                             "target is for 1M)")
    parser.add_argument("--rate", type=positive_int, default=20_000,
                        help="msg/s for the latency comparison (default 20000)")
    parser.add_argument("--latency-records", type=positive_int, default=200_000,
                        help="records for the latency comparison (default 200000: 10 s at "
                             "the default rate)")
    parser.add_argument("--warmup-s", type=float, default=1.0,
                        help="seconds at the start of the latency runs left out (default 1)")
    parser.add_argument("--profile", action="store_true",
                        help="also profile run_producer with pyinstrument")
    parser.add_argument("--profile-records", type=positive_int, default=300_000,
                        help="records for the profiled run (default 300000)")
    parser.add_argument("--profile-lines", type=positive_int, default=40,
                        help="lines of the call tree to print, and half as many hot spots "
                             "(default 40)")
    args = parser.parse_args(argv)
    if not 0 <= args.warmup_s < args.latency_records / args.rate:
        parser.error(f"--warmup-s {args.warmup_s} must be from 0 to less than the latency "
                     f"run's length ({args.latency_records / args.rate:g} s)")
    return args


def main(argv: list[str] | None = None) -> list[Target]:
    """Start a 1-broker cluster, run the sections, stop the cluster; return the targets."""
    args = parse_args(argv)
    with LocalCluster(brokers=1) as cluster:
        cluster.start()
        print(f"{cluster.describe()}; Java client: {PERF_CLASS} from kafka-tools "
              f"{jars.KAFKA_VERSION}", flush=True)
        found = throughput_section(cluster, args.records, args.repeat)
        found += rss_section(cluster, args.rss_records)
        latency_section(cluster, args.latency_records, args.rate, args.warmup_s)
        if args.profile:
            profile_section(cluster, args.profile_records, args.profile_lines)
    return found


if __name__ == "__main__":
    print("\n" + summary(main()))
