"""Flat-out producer runs beside their ceiling, with the CPU of every side measured.

``flat_out`` runs each producer config as fast as the client can send (labkit's
``run_producer``) and, around it on the same cluster with the same settings and message
size, the **bare loop** (``labkit.workloads.producer.bare_loop``: ``produce()`` and
``poll(0)``, no bookkeeping), in rounds: half before the labkit run and half after, so that
the rounds' spread also shows how far the ceiling drifted while the config was measured.

For every run it records what ``labkit.analysis.bounds`` needs to say which side was
saturated (``bounds.RUN_COLUMNS``): the sending thread's CPU and its wait for a core (the
kernel's schedstat), the whole client process's CPU, the brokers' and the controller's CPU
(``cluster.cpu_seconds()``; NaN on a cluster the lab did not start), the whole machine's
busy CPU (``/proc/stat``; NaN where there is none), and the local queue's fill from
librdkafka's statistics. During a labkit run the broker and machine CPU and the thread's
wait are sampled every ``SAMPLE_S`` seconds by a thread of this process and interpolated to
the run's exact window (from its first ``produce()`` until ``flush()`` returned), which
leaves out the building of its records afterwards; the sampler's own CPU (a few file reads
per sample) is in the client process's.

The bare rounds write to a topic of their own, shaped like the lab's topics (same partition
count, the cluster's default replication and min ISR) and deleted at the end, so the lab's
topics hold only lab messages. No plots and no math here.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from confluent_kafka import Producer

from labkit.analysis import bounds
from labkit.cluster import LAB_TOPICS, Cluster, client_log, unique_name
from labkit.cluster.base import LAB_TOPIC_PARTITIONS
from labkit.workloads.producer import (
    ProducerRun,
    bare_loop,
    make_payloads,
    run_producer,
    validate_config,
)

SAMPLE_S = 0.05
"""Seconds between two CPU samples during a labkit run."""


@dataclass
class FlatOut:
    """One config sent flat out by labkit, between rounds of the bare loop.

    Attributes:
        label: the config's name.
        run: labkit's ``ProducerRun``.
        rows: the recorded numbers (``labkit.analysis.bounds.RUN_COLUMNS``), the labkit
            run first, then one row per bare round in the order run.
        bare_s: seconds the bare rounds took, the creation and teardown of their
            producers included (what the ceiling costs).
    """

    label: str
    run: ProducerRun
    rows: pd.DataFrame
    bare_s: float


def machine_cpu_seconds() -> tuple[float, float] | None:
    """Busy and total CPU seconds of the whole machine so far, summed over its cores.

    From the ``cpu`` line of ``/proc/stat``: idle and iowait are idle; user, nice, system,
    irq, softirq and steal (time the hypervisor gave to others) are busy.

    Returns:
        (busy, total), or None where there is no ``/proc/stat``.
    """
    try:
        with open("/proc/stat") as stat:
            fields = [int(v) for v in stat.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    idle = fields[3] + fields[4]
    return (sum(fields) - idle) / ticks, sum(fields) / ticks


def machine_cores() -> int:
    """The machine's cores: the CPUs ``/proc/stat`` counts, which every process shares."""
    return os.cpu_count() or 1


def _machine_ticks() -> tuple[float, float]:
    found = machine_cpu_seconds()
    return found if found is not None else (float("nan"), float("nan"))


def _machine_used(before: tuple[float, float], after: tuple[float, float],
                  wall_s: float) -> float:
    """The machine's busy CPU seconds over ``wall_s``, from two ``machine_cpu_seconds``.

    The busy share of the ticks counted in between, times the cores and ``wall_s``: the
    kernel's busy and idle ticks are counted alike, so the share never exceeds 1 the way
    busy ticks over wall time can in a short window.
    """
    busy, total = after[0] - before[0], after[1] - before[1]
    if not total > 0:
        return float("nan")
    return busy / total * machine_cores() * wall_s


def thread_wait_seconds(thread_id: int) -> float:
    """Seconds a thread of this process has spent runnable but waiting for a core, so far.

    The second field of ``/proc/self/task/<thread_id>/schedstat`` (nanoseconds in the
    kernel's run queue).

    Args:
        thread_id: the thread's native id (``threading.get_native_id()``).

    Returns:
        The seconds, or NaN where the kernel does not keep them.
    """
    try:
        with open(f"/proc/self/task/{thread_id}/schedstat") as stat:
            return int(stat.read().split()[1]) / 1e9
    except (OSError, ValueError, IndexError):
        return float("nan")


def _broker_cpu(cluster: Cluster) -> float:
    found = cluster.cpu_seconds()
    return sum(found.values()) if found else float("nan")


class CpuSampler:
    """Samples the machine's and the cluster's CPU seconds in a thread; a context manager.

    Also how long the thread that made it (the one about to send) has waited for a core.
    ``between(start, end)`` interpolates the counters to any window inside the sampled time
    (``time.perf_counter()`` seconds).

    Args:
        cluster: whose brokers to sample (``cluster.cpu_seconds()``).
        interval: seconds between samples.
    """

    def __init__(self, cluster: Cluster, interval: float = SAMPLE_S):
        self._cluster = cluster
        self._interval = interval
        self._sender = threading.get_native_id()
        self._stop = threading.Event()
        self._samples: list[tuple[float, ...]] = []
        self._thread = threading.Thread(target=self._main, name="labkit-cpu-sampler",
                                        daemon=True)

    def _sample(self) -> None:
        self._samples.append((time.perf_counter(), *_machine_ticks(), _broker_cpu(self._cluster),
                              thread_wait_seconds(self._sender)))

    def _main(self) -> None:
        while not self._stop.wait(self._interval):
            self._sample()

    def __enter__(self) -> CpuSampler:
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join(5)
        self._sample()

    def between(self, start: float, end: float) -> tuple[float, float, float]:
        """What was used from ``start`` to ``end`` (NaN: unknown).

        Returns:
            (machine busy CPU s, broker CPU s, s the sending thread waited for a core).
        """
        t, busy, total, broker, waited = (np.asarray(column, dtype=float)
                                          for column in zip(*self._samples, strict=True))

        def used(values: np.ndarray) -> float:
            if np.isnan(values).any():
                return float("nan")
            return float(np.interp(end, t, values) - np.interp(start, t, values))

        machine = _machine_used((np.interp(start, t, busy), np.interp(start, t, total)),
                                (np.interp(end, t, busy), np.interp(end, t, total)), end - start)
        return machine, used(broker), used(waited)


def _queue_counts(stats: list[dict], start: float, end: float) -> tuple[int, int]:
    """Statistics samples in the window and how many had a full queue.

    librdkafka stamps its statistics with the monotonic clock, as ``time.perf_counter()``
    is on Linux; where the clocks differ no sample falls in the window, and every sample
    counts instead.
    """
    fill = bounds.queue_fill(stats, start, end)
    if fill.empty:
        fill = bounds.queue_fill(stats)
    return len(fill), int(fill.full.sum())


def _row(label: str, kind: str, **numbers: Any) -> dict[str, Any]:
    return {"label": label, "kind": kind, "cores": machine_cores(), **numbers}


def _labkit_run(cluster: Cluster, label: str, config: dict[str, Any], messages: int,
                size: int, payload: str, topics, stats_interval_ms: int,
                ) -> tuple[ProducerRun, dict[str, Any]]:
    with CpuSampler(cluster) as sampler:
        run = run_producer(cluster, config, messages=messages, size=size, payload=payload,
                           topics=topics, stats_interval_ms=stats_interval_ms, label=label)
    start = run.started_monotonic
    machine, broker, waited = sampler.between(start, start + run.wall_s)
    samples, full = _queue_counts(run.stats, start, start + run.wall_s)
    return run, _row(label, "labkit", messages=run.delivered, wall_s=run.wall_s,
                     thread_cpu_s=run.thread_cpu_s, thread_wait_s=waited,
                     process_cpu_s=run.cpu_s, broker_cpu_s=broker, machine_cpu_s=machine,
                     queue_samples=samples,
                     queue_full_samples=full, buffer_errors=run.buffer_errors)


def _bare_round(cluster: Cluster, label: str, settings: dict[str, str], topic: str,
                values: list[bytes], records: int, stats_interval_ms: int) -> dict[str, Any]:
    texts: list[str] = []
    producer = Producer(cluster.client_config(
        **settings, logger=client_log, stats_cb=texts.append,
        **{"statistics.interval.ms": int(stats_interval_ms)}))
    try:
        me = threading.get_native_id()
        broker0, machine0, waited0 = _broker_cpu(cluster), _machine_ticks(), thread_wait_seconds(me)
        cpu0, thread0, start = time.process_time(), time.thread_time(), time.perf_counter()
        seconds = bare_loop(producer, topic, values, records)
        end, cpu1, thread1 = time.perf_counter(), time.process_time(), time.thread_time()
        broker1, machine1, waited1 = _broker_cpu(cluster), _machine_ticks(), thread_wait_seconds(me)
    finally:
        del producer
    samples, full = _queue_counts([json.loads(t) for t in texts], start, end)
    return _row(label, "bare", messages=records, wall_s=seconds, thread_cpu_s=thread1 - thread0,
                thread_wait_s=waited1 - waited0, process_cpu_s=cpu1 - cpu0,
                broker_cpu_s=broker1 - broker0,
                machine_cpu_s=_machine_used(machine0, machine1, seconds), queue_samples=samples,
                queue_full_samples=full, buffer_errors=float("nan"))


def flat_out(cluster: Cluster, configs: dict[str, dict[str, Any]], messages: int,
             size: int = 100, payload: str = "json",
             topics: list[str] | tuple[str, ...] = LAB_TOPICS, stats_interval_ms: int = 100,
             bare_messages: int | None = None, bare_rounds: int = 2,
             progress: bool = False) -> list[FlatOut]:
    """Send each config flat out with labkit, between rounds of the bare loop.

    Every config is validated before anything runs. Per config: ``bare_rounds`` rounds of
    the bare loop (the first half of them before the labkit run, the rest after), each a
    fresh ``confluent_kafka.Producer`` with the config and statistics at
    ``stats_interval_ms``, sending ``bare_messages`` values of ``size`` bytes (the same
    ``make_payloads`` values labkit sends) to the experiment's own topic.

    Args:
        cluster: where to produce.
        configs: label -> producer config.
        messages: messages of each labkit run.
        size: value bytes per message.
        payload: "json" or "random" values (``make_payloads``).
        topics: the labkit runs' topics (message i to ``topics[i % len(topics)]``).
        stats_interval_ms: librdkafka statistics interval of every run (the queue's fill).
        bare_messages: messages per bare round; default a quarter of ``messages``: two
            rounds send half as many as the labkit run, so they take at most half its time
            whenever the bare loop is at least as fast (what it is for).
        bare_rounds: bare rounds per config; two or more give the ceiling's spread.
        progress: show a progress bar over the configs.

    Returns:
        One ``FlatOut`` per config, in order.

    Raises:
        ValueError: a bad config, or a bad count of messages or rounds.
    """
    checked = {label: validate_config(dict(config)) for label, config in configs.items()}
    bare_messages = max(1, messages // 4) if bare_messages is None else bare_messages
    if not isinstance(bare_rounds, int) or bare_rounds < 1:
        raise ValueError(f"bare_rounds={bare_rounds!r} must be a positive integer")
    if not isinstance(bare_messages, int) or bare_messages < 1:
        raise ValueError(f"bare_messages={bare_messages!r} must be a positive integer")
    values = make_payloads(size, payload)
    items = list(configs.items())
    if progress:
        from tqdm.auto import tqdm
        items = tqdm(items, desc="configs", unit="config", leave=False)
    before = (bare_rounds + 1) // 2
    topic = unique_name("ceiling")
    cluster.create_topic(topic, LAB_TOPIC_PARTITIONS)
    results = []
    try:
        for label, config in items:
            bare_rows, bare_s = [], 0.0
            for turn in range(bare_rounds + 1):
                if turn == before:
                    run, row = _labkit_run(cluster, label, config, messages, size, payload,
                                           topics, stats_interval_ms)
                    continue
                started = time.perf_counter()
                bare_rows.append(_bare_round(cluster, label, checked[label], topic, values,
                                             bare_messages, stats_interval_ms))
                bare_s += time.perf_counter() - started
            results.append(FlatOut(label, run, pd.DataFrame([row, *bare_rows]), bare_s))
    finally:
        with contextlib.suppress(Exception):  # the runs stand without the clean-up
            cluster.delete_topic(topic)
    return results


def runs_table(results: list[FlatOut]) -> pd.DataFrame:
    """Every run's recorded numbers, one row each (``bounds.RUN_COLUMNS``), for ``bounds``."""
    return pd.concat([r.rows for r in results], ignore_index=True)
