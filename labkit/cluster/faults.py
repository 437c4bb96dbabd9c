"""Break a broker and watch the cluster heal: fault events and partition samples, recorded.

Two schemas, documented here once, that every fault recorder and partition watcher writes:

- fault events (``FAULT_EVENT_COLUMNS``), written by a ``FaultRecorder``: ``kill`` and ``restart``
  (one fault, then samples until the cluster settled: a ``FaultRun``), ``FaultSchedule``
  (faults at set times in a background thread while the caller runs a workload) and the
  scripted experiments of ``labkit.experiments.replication``;
- partition samples (``PARTITION_SAMPLE_COLUMNS``), written by ``partition_samples``: the samples of
  a ``FaultRun`` and of a ``PartitionWatch`` (leaders and ISRs sampled in a background
  thread), so the cluster's reaction (a fenced broker's leaderships moving, an ISR shrinking
  and growing back) can be lined up with the faults and the workload.
"""

from __future__ import annotations

import inspect
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
from confluent_kafka.admin import AdminClient

from labkit.cluster import Cluster, FaultInjectionUnavailable, client_log, wait_until

FAULT_EVENT_COLUMNS = ("step", "action", "target", "broker", "at_s", "t_s", "done_s", "wall")
"""The columns of every fault-event frame, one row per fault applied.

step (its number, from 0), action (one of ``SCHEDULE_ACTIONS``), target (as given: a broker
id, ``"leader:<topic>:<partition>"`` or ``"last"``), broker (the id acted on), at_s (when it
was due), t_s (when it began) and done_s (when the action returned; a restart returns once
the broker serves clients again, see ``wait_serving``), all in seconds since the recorder
started (``perf_counter``); wall (when it began, a UTC ``Timestamp``: ``wall.timestamp()``
aligns it with epoch seconds such as a ``ProducerRun.started_wall``).
"""

PARTITION_SAMPLE_COLUMNS = ("wall", "topic", "partition", "leader", "isr", "replicas")
"""The columns of every partition-sample frame, one row per partition per sample.

wall (epoch seconds the metadata answer came: a request can block for seconds mid-fault, and
the state it reports is the state at its end), topic, partition, leader (-1: none), isr
(sorted broker ids), replicas (broker ids, the preferred one first).
"""


def partition_samples(table: pd.DataFrame, wall: float) -> pd.DataFrame:
    """One sample: ``Cluster.partitions()`` rows as ``PARTITION_SAMPLE_COLUMNS``, taken at wall."""
    return table.assign(wall=float(wall), isr=table.isr.map(sorted),
                        replicas=table.replicas.map(list))[list(PARTITION_SAMPLE_COLUMNS)]


class FaultRecorder:
    """Apply faults to a cluster one after another and record each (``FAULT_EVENT_COLUMNS``).

    Its clock starts when it is made: ``t_s`` and ``done_s`` are seconds since then.

    Args:
        cluster: a cluster labkit runs.
        timeout: seconds each action may take (a restart waits until the broker serves).

    Attributes:
        started_wall: epoch seconds at t = 0.
    """

    def __init__(self, cluster: Cluster, timeout: float = 60):
        self.cluster, self.timeout = cluster, timeout
        self.started_wall = time.time()
        self._t0 = time.perf_counter()
        self._rows: list[dict] = []

    def elapsed(self) -> float:
        """Seconds since the recorder was made."""
        return time.perf_counter() - self._t0

    def act(self, action: str, broker: int, at_s: float | None = None, target=None,
            do: Callable[[], None] | None = None, options: dict | None = None) -> dict:
        """Apply ``action`` to ``broker`` (``apply``, or ``do`` if given) and record it.

        Args:
            action: one of ``SCHEDULE_ACTIONS``.
            broker: the broker acted on.
            at_s: when the step was due (default: when it began).
            target: the step's target as given (default: the broker id).
            do: what to call instead of ``apply``.
            options: keyword arguments of a network action (``apply``).

        Returns:
            The event's row (``FAULT_EVENT_COLUMNS``, wall in epoch seconds).
        """
        t_s, wall = self.elapsed(), time.time()
        (do or (lambda: apply(self.cluster, action, broker, self.timeout, options)))()
        row = {"step": len(self._rows), "action": action,
               "target": str(broker if target is None else target), "broker": broker,
               "at_s": t_s if at_s is None else at_s, "t_s": t_s, "done_s": self.elapsed(),
               "wall": wall}
        self._rows.append(row)
        return row

    def __len__(self) -> int:
        return len(self._rows)

    @property
    def events(self) -> pd.DataFrame:
        """The faults applied so far, one row each (``FAULT_EVENT_COLUMNS``)."""
        events = pd.DataFrame(list(self._rows), columns=list(FAULT_EVENT_COLUMNS))
        events["wall"] = pd.to_datetime(events.wall, unit="s", utc=True)
        return events


@dataclass
class FaultRun:
    """What one fault did.

    Attributes:
        action: "kill" or "restart".
        broker: the broker acted on.
        before: partition table just before the fault (see ``Cluster.partitions``).
        after: partition table once settled.
        settled_after_s: seconds from the fault until the settle condition held.
        events: the fault (``FAULT_EVENT_COLUMNS``, one row).
        timeline: the partition samples (``PARTITION_SAMPLE_COLUMNS``) from just before the fault
            until settled, with a column t: seconds since the fault began.
    """

    action: str
    broker: int
    before: pd.DataFrame
    after: pd.DataFrame
    settled_after_s: float
    events: pd.DataFrame
    timeline: pd.DataFrame


def _watch(cluster: Cluster, topics, action: str, broker: int, do: Callable[[], None],
           settled: Callable[[pd.DataFrame], bool], timeout: float,
           interval: float = 0.25) -> FaultRun:
    before = cluster.partitions(topics)
    samples = [partition_samples(before, time.time())]
    recorder = FaultRecorder(cluster, timeout)
    recorder.act(action, broker, do=do)
    fault = recorder.events.iloc[0]
    fault_wall, fault_t = fault.wall.timestamp(), fault.t_s

    tables: list[pd.DataFrame] = []

    def sample() -> bool:
        tables.append(cluster.partitions(topics))  # raises while metadata is unavailable
        samples.append(partition_samples(tables[-1], time.time()))
        return settled(tables[-1])

    wait_until(sample, timeout, f"the cluster to settle after {action} of broker {broker}",
               interval=interval)
    after = tables[-1]
    timeline = pd.concat(samples, ignore_index=True)
    timeline["t"] = (timeline.wall - fault_wall).clip(lower=0.0)
    return FaultRun(action, broker, before, after, recorder.elapsed() - fault_t,
                    recorder.events, timeline)


def kill(cluster: Cluster, broker: int, topics, timeout: float = 60) -> FaultRun:
    """SIGKILL ``broker``; settled when every partition has a leader other than it."""
    return _watch(
        cluster, topics, "kill", broker, lambda: cluster.kill(broker),
        lambda t: bool((t.leader >= 0).all() and (t.leader != broker).all()
                       and not t.isr.map(lambda isr: broker in isr).any()),
        timeout,
    )


def restart(cluster: Cluster, broker: int, topics, timeout: float = 120) -> FaultRun:
    """Restart ``broker`` on its data; settled when every ISR is full again."""
    return _watch(
        cluster, topics, "restart", broker, lambda: cluster.restart(broker, timeout=timeout),
        lambda t: bool((t.isr.map(len) == t.replicas.map(len)).all()),
        timeout,
    )


# -- fault schedules: faults at set times while a workload runs ----------------------------

PROCESS_ACTIONS = ("kill", "shutdown", "pause", "resume", "restart")
"""Faults done to a broker's process (the ``LocalCluster`` method of that name)."""
NETWORK_ACTIONS = ("isolate", "partition", "delay", "bandwidth", "heal")
"""Faults done to the network (``cluster.network``; the cluster needs ``network=True``).

The ``Network`` method of that name, with the target as its first argument and the step's
options as keyword arguments: ``(2.0, "isolate", 1, {"from_": "cluster"})``,
``(2.0, "partition", 1, {"b": "controller"})``, ``(2.0, "delay", 1, {"dst": 2, "ms": 20})``;
``heal`` removes every network rule naming the target.
"""
SCHEDULE_ACTIONS = PROCESS_ACTIONS + NETWORK_ACTIONS
_LEADER_TARGET = re.compile(r"^leader:(?P<topic>.+):(?P<partition>\d+)$")


class FaultSchedule:
    """Apply faults at set times in a background thread while the caller runs a workload.

    A context manager: entering starts the clock and the thread, leaving waits for the
    steps still due (or cancels them if the block raised), then heals the cluster. Each
    applied step is recorded in ``events`` so plots can mark it.

    Example::

        steps = [(1.0, "kill", "leader:demo:0"), (4.0, "restart", "last")]
        steps = [(1.0, "isolate", "leader:demo:0", {"from_": "cluster"}), (9.0, "heal", "last")]
        with FaultSchedule(cluster, steps) as schedule:
            run = run_producer(cluster, config, duration=6, topics=["demo"])
        schedule.events

    Args:
        cluster: a local cluster (fault injection needs brokers labkit runs).
        steps: ``(at_s, action, target)`` or ``(at_s, action, target, options)`` in time
            order. ``at_s`` is seconds after entering the block; ``action`` is one of
            ``SCHEDULE_ACTIONS`` (a ``LocalCluster`` method, or a ``cluster.network`` one);
            ``target`` is a broker id, ``"leader:<topic>:<partition>"`` (the partition's
            leader when the step runs) or ``"last"`` (the broker of the previous step);
            ``options``, for a network action, are keyword arguments of its method.
        heal: on exit, resume every paused broker, restart every dead one and heal the
            network, so that a schedule cut short (or one ending on a fault) leaves every
            broker running and reachable.
            Partitions may still be catching up: ``wait_healthy`` waits for full ISRs.
        step_timeout: seconds each step may take (a restart waits for re-registration).

    Raises:
        ValueError: a malformed step (before anything starts).
        FaultInjectionUnavailable: the cluster is not one labkit runs.
    """

    def __init__(self, cluster: Cluster, steps, heal: bool = True, step_timeout: float = 60):
        if not cluster.local:
            raise FaultInjectionUnavailable(
                f"a fault schedule needs a cluster labkit runs; this is {cluster.describe()} "
                "(unset KAFKA_BOOTSTRAP_SERVERS to use the local cluster)"
            )
        self.cluster = cluster
        self.steps = _check_steps(steps, cluster)
        self.heal = heal
        self.step_timeout = step_timeout
        self.started_wall = float("nan")
        self._recorder = FaultRecorder(cluster, step_timeout)  # made again on entering
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    @property
    def events(self) -> pd.DataFrame:
        """One row per applied step (``FAULT_EVENT_COLUMNS``).

        step is the index into ``steps``; times are seconds since entering the block.
        """
        return self._recorder.events

    def __enter__(self) -> FaultSchedule:
        self._recorder = FaultRecorder(self.cluster, self.step_timeout)
        self.started_wall = self._recorder.started_wall
        self._thread = threading.Thread(target=self._run, name="labkit-fault-schedule",
                                        daemon=True)
        self._thread.start()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self._stop.set()  # the workload failed: cancel the steps still due
        remaining = max(0.0, self.steps[-1][0] - self.elapsed()) if self.steps else 0.0
        timeout = remaining + self.step_timeout * (len(self.steps) - len(self._recorder) + 1)
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._stop.set()
            self._thread.join(self.step_timeout)
            if exc_type is None and self._error is None:
                self._error = TimeoutError(
                    f"the fault schedule did not finish within {timeout:g} s after the block "
                    f"ended ({len(self._recorder)} of {len(self.steps)} steps applied)"
                )
        if self.heal:
            try:
                self._heal()
            except Exception as heal_error:  # noqa: BLE001 - reported below, not swallowed
                self._error = self._error or heal_error
        if exc_type is None and self._error is not None:
            raise self._error

    def elapsed(self) -> float:
        """Seconds since the block was entered."""
        return self._recorder.elapsed()

    def _run(self) -> None:
        last: int | None = None
        try:
            for at_s, action, target, options in self.steps:
                if self._stop.wait(max(0.0, at_s - self.elapsed())):
                    return
                broker = self._resolve(target, last)
                self._recorder.act(action, broker, at_s=at_s, target=target, options=options)
                last = broker
        except BaseException as exc:  # noqa: BLE001 - handed to the caller in __exit__
            self._error = exc

    def _resolve(self, target, last: int | None) -> int:
        if isinstance(target, int):
            return target
        if target == "last":
            if last is None:
                raise ValueError("fault target 'last' needs a previous step")
            return last
        match = _LEADER_TARGET.match(target)
        topic, partition = match["topic"], int(match["partition"])
        return wait_until(lambda: (b := self.cluster.leader(topic, partition)) >= 0 and b,
                          self.step_timeout, f"a leader for {topic}/{partition}")

    def _heal(self) -> None:
        heal(self.cluster, self.step_timeout)


def apply(cluster: Cluster, action: str, broker: int, timeout: float = 60,
          options: dict | None = None) -> None:
    """Apply one of ``SCHEDULE_ACTIONS`` to ``broker``; a restart returns once it serves.

    ``options`` are keyword arguments of a network action (``NETWORK_ACTIONS``).
    """
    if action in NETWORK_ACTIONS:
        getattr(cluster.network, action)(broker, **(options or {}))
    elif action == "restart":
        cluster.restart(broker, timeout=timeout)
        wait_serving(cluster, broker, timeout)
    else:
        getattr(cluster, action)(broker)


def heal(cluster: Cluster, timeout: float = 120) -> None:
    """Heal the network, resume paused brokers, start stopped ones; wait until all serve.

    Partitions may still be catching up: ``wait_healthy`` waits for full ISRs.
    """
    if getattr(cluster, "network_control", None):
        cluster.network.heal()
    for broker in sorted(cluster.nodes):
        if not cluster.is_running(broker):
            cluster.restart(broker, timeout=timeout)
        elif cluster.is_paused(broker):
            cluster.resume(broker)
    for broker in sorted(cluster.nodes):
        wait_serving(cluster, broker, timeout)


LEADER_FAULTS = {
    "pause": ("pause", "resume"),  # SIGSTOP, then SIGCONT: a GC pause or a stalled VM
    "kill": ("kill", "restart"),  # SIGKILL, then start again on its data: a crash
    "restart": ("restart", None),  # clean shutdown (leaderships handed over), then start
}
"""The ways ``leader_fault`` breaks a partition's leader: the action, then the undo."""


def leader_fault(fault: str, topic: str, partition: int = 0, at: float = 1.0,
                 length: float = 2.0) -> list[tuple[float, str, int | str]]:
    """Return ``FaultSchedule`` steps that break the leader of ``topic``/``partition``.

    Args:
        fault: one of ``LEADER_FAULTS``: "pause", "kill" or "restart".
        topic: the topic whose partition leader is broken.
        partition: the partition.
        at: seconds after the schedule starts.
        length: seconds until the broker is resumed ("pause") or started again ("kill");
            a "restart" takes as long as the broker needs to stop and start.

    Raises:
        ValueError: an unknown fault or a negative time.
    """
    if fault not in LEADER_FAULTS:
        raise ValueError(f"fault={fault!r} is not known; use one of {', '.join(LEADER_FAULTS)}")
    if not (at >= 0 and length >= 0):
        raise ValueError(f"at={at!r} and length={length!r} must be seconds >= 0")
    action, undo = LEADER_FAULTS[fault]
    steps: list[tuple[float, str, int | str]] = [(at, action, f"leader:{topic}:{partition}")]
    if undo:
        steps.append((at + length, undo, "last"))
    return steps


def replicas_led_by(broker: int, brokers, partitions: int,
                    replication_factor: int | None = None) -> list[list[int]]:
    """A replica assignment in which ``broker`` leads partition 0, the next broker 1, ....

    For ``create_topic(replica_assignment=...)`` in experiments that break a chosen broker
    and need to know what it leads. Each partition's replicas are its leader, then the
    brokers after it round the ring of ``brokers`` (sorted).

    Raises:
        ValueError: ``broker`` is not in ``brokers``, or the replication factor exceeds them.
    """
    ring = sorted(brokers)
    rf = len(ring) if replication_factor is None else replication_factor
    if broker not in ring or not 1 <= rf <= len(ring):
        raise ValueError(f"cannot lead with broker {broker} from brokers {ring} at "
                         f"replication_factor={rf}")
    first = ring.index(broker)
    return [[ring[(first + p + r) % len(ring)] for r in range(rf)] for p in range(partitions)]


def _check_steps(steps, cluster: Cluster) -> list[tuple[float, str, int | str, dict]]:
    checked: list[tuple[float, str, int | str, dict]] = []
    for number, step in enumerate(steps):
        try:
            at_s, action, target, *more = step
            options = dict(*more) if len(more) <= 1 else None
        except (TypeError, ValueError):
            options = None
        if options is None:
            raise ValueError(f"fault step {number} is {step!r}; expected (at_s, action, target) "
                             "or (at_s, action, target, options)") from None
        if isinstance(at_s, bool) or not isinstance(at_s, int | float) or not at_s >= 0:
            raise ValueError(f"fault step {number}: at_s={at_s!r} must be seconds >= 0")
        if checked and at_s < checked[-1][0]:
            raise ValueError(f"fault step {number}: at_s={at_s!r} comes before the previous "
                             f"step's {checked[-1][0]!r}; list steps in time order")
        if action not in SCHEDULE_ACTIONS:
            raise ValueError(f"fault step {number}: action={action!r} is not allowed; use one "
                             f"of {', '.join(SCHEDULE_ACTIONS)}")
        if isinstance(target, bool) or not (
                isinstance(target, int) or target == "last"
                or (isinstance(target, str) and _LEADER_TARGET.match(target))):
            raise ValueError(f"fault step {number}: target={target!r} must be a broker id, "
                             "'leader:<topic>:<partition>' or 'last'")
        if target == "last" and not checked:
            raise ValueError(f"fault step {number}: target 'last' needs a previous step")
        if options and action not in NETWORK_ACTIONS:
            raise ValueError(f"fault step {number}: {action!r} takes no options; only "
                             f"{', '.join(NETWORK_ACTIONS)} do")
        if action in NETWORK_ACTIONS:
            method = getattr(cluster.network, action)  # raises at once without a lab network
            try:
                inspect.signature(method).bind(1, **options)
            except TypeError as exc:
                raise ValueError(f"fault step {number}: options {options!r} do not fit "
                                 f"network.{action}{inspect.signature(method)} ({exc})") from None
        nodes = getattr(cluster, "nodes", None)
        if isinstance(target, int) and nodes is not None and target not in nodes:
            raise ValueError(f"fault step {number}: no broker {target} in this cluster; "
                             f"brokers are {sorted(nodes)}")
        checked.append((float(at_s), action, target, options))
    return checked


def serving(cluster: Cluster, broker: int) -> bool:
    """True if a local broker's JVM runs unpaused and accepts connections on its port.

    Being registered is not enough: right after a SIGKILL the controller still lists the
    dead broker until its session times out, and a restarted broker opens its port only
    once the controller has registered and unfenced it.
    """
    if not cluster.is_running(broker) or cluster.is_paused(broker):
        return False
    try:
        socket.create_connection(("127.0.0.1", cluster.nodes[broker].listen_port),
                                 timeout=1).close()
    except OSError:
        return False
    return True


def wait_serving(cluster: Cluster, broker: int, timeout: float = 60) -> None:
    """Wait until ``serving(cluster, broker)``.

    Raises:
        TimeoutError: it did not within ``timeout`` seconds.
    """
    wait_until(lambda: serving(cluster, broker), timeout,
               f"broker {broker} to serve clients again", interval=0.1)


class PartitionWatch:
    """Sample the leader and ISR of every partition of ``topics`` in a background thread.

    A context manager: sampling starts on entering and stops on leaving. The watch asks
    with its own admin client, whose requests time out after ``request_timeout`` seconds: a
    paused broker accepts connections but never answers, and must cost a missed sample,
    not a stalled watch.

    Args:
        cluster: where to watch.
        topics: topic names.
        interval: seconds between samples.
        request_timeout: seconds one metadata request may take.
        client_id: the watch's ``client.id`` (a lab network rule can name it).

    Attributes:
        missed: samples lost to a failed or timed-out metadata request.
    """

    def __init__(self, cluster: Cluster, topics, interval: float = 0.2,
                 request_timeout: float = 1.0, client_id: str = "labkit-watch"):
        self.topics = [topics] if isinstance(topics, str) else list(topics)
        self.interval, self.request_timeout = interval, request_timeout
        self.missed = 0
        self._admin = AdminClient(cluster.client_config(logger=client_log, **{
            "socket.timeout.ms": int(request_timeout * 1000), "client.id": client_id,
            "allow.auto.create.topics": False}))
        self._samples: list[pd.DataFrame] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="labkit-partition-watch",
                                        daemon=True)

    def __enter__(self) -> PartitionWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join(self.interval + 2 * self.request_timeout + 5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                found = self._admin.list_topics(timeout=self.request_timeout).topics
                table = pd.DataFrame(
                    [{"topic": topic, "partition": p.id, "leader": p.leader,
                      "replicas": list(p.replicas), "isr": sorted(p.isrs)}
                     for topic in self.topics if topic in found
                     for p in sorted(found[topic].partitions.values(), key=lambda p: p.id)],
                    columns=["topic", "partition", "leader", "replicas", "isr"])
            except Exception:  # noqa: BLE001 - a paused or dead broker: skip this sample
                self.missed += 1
            else:
                self._samples.append(partition_samples(table, time.time()))
            self._stop.wait(self.interval)

    @property
    def timeline(self) -> pd.DataFrame:
        """One row per partition per sample (``PARTITION_SAMPLE_COLUMNS``)."""
        samples = list(self._samples)
        if not samples:
            return pd.DataFrame(columns=list(PARTITION_SAMPLE_COLUMNS))
        return pd.concat(samples, ignore_index=True)


def wait_healthy(cluster: Cluster, topics, timeout: float = 60) -> float:
    """Wait until the cluster is whole again; return the seconds it took.

    Whole means every broker registered (and, on a local cluster, serving: see ``serving``),
    and a leader and a full ISR for every partition of ``topics``.

    Raises:
        TimeoutError: the cluster did not get there within ``timeout`` seconds.
    """
    start = time.monotonic()
    expected = sorted(getattr(cluster, "nodes", {})) or None

    def healthy() -> bool:
        if expected is not None and (cluster.brokers != expected or not all(
                serving(cluster, b) for b in expected)):
            return False
        table = cluster.partitions(list(topics))
        return bool((table.leader >= 0).all()
                    and (table.isr.map(len) == table.replicas.map(len)).all())

    wait_until(healthy, timeout, f"every broker up and a full ISR for {list(topics)}")
    return time.monotonic() - start
