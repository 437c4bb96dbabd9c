"""Partition assignment compared: one membership scenario played by several groups at once.

A ``Scenario`` is a group configuration plus a list of membership steps (``add_member``,
``remove_member`` gracefully, ``restart_member`` after some time away). ``run_scenarios`` plays
several scenarios side by side, each its own ``ConsumerGroup`` on the same topics, so every
strategy or protocol meets the same conditions at the same time. After the start and after
each step it waits until the group has settled (``settle``): for a KIP-848 group that
includes every member owning the target assignment the coordinator computed for it.

The records are the groups' events and phases; ``labkit.analysis.groups.phase_summary``
turns them into what moved and how long partitions had no owner in each phase.

Columns of ``ScenarioRun.phases``:

============ ===============================================================================
phase        "start", or the step's label ("add m4", "remove m1", "restart m2")
t_trigger    s since the group started: when the step began (0 for "start")
t_settled    s since the group started: when the group was seen settled after it
before       member -> sorted partitions, settled, before the step ({} for "start")
after        member -> sorted partitions, settled, after the step
============ ===============================================================================
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from confluent_kafka.admin import ConfigResource

from labkit.analysis import metrics
from labkit.cluster import Cluster, wait_until
from labkit.workloads.consumer import ConsumerGroup

STEP_KINDS = ("add", "remove", "restart")


class Aborted(RuntimeError):
    """A scenario was stopped because another one failed or the run was interrupted."""


@dataclass(frozen=True)
class Step:
    """One membership change of a scenario (``add_member``, ``remove_member``, ``restart_member``).

    Attributes:
        kind: "add", "remove" (graceful: the member closes and leaves) or "restart" (the
            member closes, stays away ``down_s`` seconds, and comes back under the same name
            and the same per-member settings, e.g. the same ``group.instance.id``).
        member: the member's name.
        down_s: seconds a restarted member stays away.
        overrides: consumer settings of an added member.
    """

    kind: str
    member: str
    down_s: float = 0.0
    overrides: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if self.kind not in STEP_KINDS:
            raise ValueError(f"step kind {self.kind!r}; use one of {', '.join(STEP_KINDS)}")
        if not self.member:
            raise ValueError("a step needs a member name, e.g. add_member('m4')")
        if self.down_s < 0:
            raise ValueError(f"down_s={self.down_s!r} must be seconds >= 0")

    @property
    def label(self) -> str:
        """E.g. "add m4"."""
        return f"{self.kind} {self.member}"


def add_member(member: str, **overrides: Any) -> Step:
    """A step: start a member named ``member`` (dotted settings via a dict: ``**{...}``)."""
    return Step("add", member, overrides=overrides)


def remove_member(member: str) -> Step:
    """A step: stop ``member`` gracefully (it closes its consumer and leaves the group)."""
    return Step("remove", member)


def restart_member(member: str, down_s: float) -> Step:
    """A step: close ``member``, wait ``down_s`` seconds, start it again under the same name."""
    return Step("restart", member, down_s=float(down_s))


@dataclass
class Scenario:
    """What one group does: its settings and its membership steps.

    Attributes:
        config: consumer settings of every member (as ``ConsumerGroup(config=...)``).
        steps: membership changes, played in order after the group first settles.
        members: members at the start, named m1, m2, ...
        member_config: per-member settings, name -> settings (e.g. ``group.instance.id``);
            they apply again when a member is restarted.
    """

    config: dict[str, Any]
    steps: list[Step]
    members: int = 3
    member_config: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class ScenarioRun:
    """What happened when a scenario ran.

    Attributes:
        label: the scenario's name.
        group_id: its consumer group.
        protocol: "classic" or "consumer" (KIP-848).
        events: the group's events (``ConsumerGroup.events()``).
        phases: one row per phase (see the module docstring).
        end: s since the group started when the scenario finished (before members stopped).
        partitions: every "topic-partition" the group was subscribed to.
    """

    label: str
    group_id: str
    protocol: str
    events: pd.DataFrame
    phases: pd.DataFrame
    end: float
    partitions: list[str]

    def phase(self, name: str) -> pd.Series:
        """One row of ``phases`` by its name, e.g. ``run.phase("add m4").after``."""
        found = self.phases[self.phases.phase == name]
        if found.empty:
            raise ValueError(f"no phase {name!r}; phases are {list(self.phases.phase)}")
        return found.iloc[0]

    def ownership(self) -> pd.DataFrame:
        """Who owned which partition when, up to the end of the scenario (for plots)."""
        events = self.events[self.events.t <= self.end]
        return metrics.ownership(events, end=self.end)


# -- settling -------------------------------------------------------------------------------


def targets_reached(group: ConsumerGroup) -> bool:
    """Whether a KIP-848 group's coordinator says it has reconciled (always True if classic).

    Reconciled: the group's state is STABLE and every member owns the target assignment the
    coordinator computed for it. While a KIP-848 group is assigning or reconciling,
    confluent-kafka reports its state as UNKNOWN, and the coordinator's current assignment
    can agree with the members' callbacks although partitions are still to move.
    """
    if group.protocol != "consumer":
        return True
    desc = group.cluster.admin().describe_consumer_groups([group.group_id])[group.group_id]
    described = desc.result(10)
    if described.state.name != "STABLE":
        return False
    for member in described.members:
        if member.target_assignment is None:
            continue
        current = {(p.topic, p.partition) for p in member.assignment.topic_partitions}
        target = {(p.topic, p.partition) for p in member.target_assignment.topic_partitions}
        if current != target:
            return False
    return True


def settle(group: ConsumerGroup, timeout: float = 90,
           abort: threading.Event | None = None) -> dict[str, list[str]]:
    """Wait until ``group`` has settled and return its assignment.

    Settled: ``ConsumerGroup.wait_for_stable`` holds and, for a KIP-848 group, every member
    owns its target assignment (``targets_reached``).

    Args:
        group: a started group.
        timeout: seconds allowed.
        abort: when set, give up at once.

    Raises:
        TimeoutError: the group did not settle within ``timeout`` seconds.
        Aborted: ``abort`` was set.
    """
    deadline = time.monotonic() + timeout

    def settled():
        if abort is not None and abort.is_set():
            raise Aborted(f"stopped waiting for group {group.group_id}")
        assignment = group.wait_for_stable(timeout=max(0.0, min(2.0, deadline - time.monotonic())))
        return [assignment] if targets_reached(group) else None  # a list: {} is falsy

    return wait_until(settled, timeout, f"group {group.group_id} to settle",
                      passes=lambda exc: isinstance(exc, TimeoutError),
                      on_timeout=lambda _last: TimeoutError(
                          f"group {group.group_id} did not settle within {timeout:g} s; "
                          f"members own {group.assignment()}"))[0]


# -- running --------------------------------------------------------------------------------


def _check(scenarios: dict[str, Scenario]) -> None:
    if not scenarios:
        raise ValueError("scenarios is empty; give at least one label -> Scenario")
    for label, scenario in scenarios.items():
        names = {f"m{i}" for i in range(1, scenario.members + 1)}
        for step in scenario.steps:
            if step.kind == "add":
                if step.member in names:
                    raise ValueError(f"scenario {label!r}: add_member({step.member!r}), but "
                                     f"{step.member} is already a member")
                names.add(step.member)
            elif step.member not in names:
                raise ValueError(f"scenario {label!r}: {step.label}, but the members then are "
                                 f"{sorted(names)}")
            if step.kind == "remove":
                names.discard(step.member)


def _play(cluster: Cluster, topics, label: str, scenario: Scenario, settle_timeout: float,
          abort: threading.Event) -> ScenarioRun:
    group = ConsumerGroup(cluster, topics, members=scenario.members, config=scenario.config,
                          member_config=scenario.member_config)
    rows = []
    with group:
        after = settle(group, settle_timeout, abort)
        rows.append(("start", 0.0, time.monotonic() - group.t0, {}, after))
        for step in scenario.steps:
            before = after
            t_trigger = time.monotonic() - group.t0
            if step.kind == "add":
                group.add_member(step.member, **step.overrides)
            else:
                group.remove_member(step.member)
            if step.kind == "restart":
                if abort.wait(step.down_s):
                    raise Aborted(f"scenario {label!r} stopped")
                group.add_member(step.member)
            after = settle(group, settle_timeout, abort)
            rows.append((step.label, t_trigger, time.monotonic() - group.t0, before, after))
        end = time.monotonic() - group.t0
        partitions = group.partitions()
    phases = pd.DataFrame(rows, columns=["phase", "t_trigger", "t_settled", "before", "after"])
    return ScenarioRun(label, group.group_id, group.protocol, group.events(), phases, end,
                       partitions)


def run_scenarios(cluster: Cluster, topics, scenarios: dict[str, Scenario],
                  settle_timeout: float = 90) -> dict[str, ScenarioRun]:
    """Play every scenario at the same time, each its own new consumer group on ``topics``.

    Args:
        cluster: where to consume.
        topics: topics every group subscribes to.
        scenarios: label -> Scenario.
        settle_timeout: seconds each wait for a settled group may take.

    Returns:
        label -> ScenarioRun, in the order of ``scenarios``.

    Raises:
        ValueError: a step names a member that does not exist then (or already exists).
        TimeoutError: a group did not settle in time (the other scenarios are stopped).
    """
    _check(scenarios)
    abort = threading.Event()
    with ThreadPoolExecutor(max_workers=len(scenarios),
                            thread_name_prefix="labkit-scenario") as pool:
        futures = {label: pool.submit(_play, cluster, topics, label, scenario,
                                      settle_timeout, abort)
                   for label, scenario in scenarios.items()}
        try:
            return {label: future.result() for label, future in futures.items()}
        except BaseException:
            abort.set()  # the others stop at their next wait; the pool joins them
            raise


def broker_group_settings(cluster: Cluster) -> dict[str, str]:
    """The coordinator's timing settings for both protocols, as one broker reports them.

    Returns:
        Setting name -> value: ``group.consumer.heartbeat.interval.ms``,
        ``group.consumer.session.timeout.ms``, ``group.consumer.assignment.interval.ms`` (how
        often a KIP-848 group's target assignment may be recomputed; "" if the broker has no
        such setting), ``group.initial.rebalance.delay.ms``.
    """
    resource = ConfigResource("BROKER", str(cluster.brokers[0]))
    found = cluster.admin().describe_configs([resource])[resource].result(10)
    names = ("group.consumer.heartbeat.interval.ms", "group.consumer.session.timeout.ms",
             "group.consumer.assignment.interval.ms", "group.initial.rebalance.delay.ms")
    return {name: found[name].value if name in found else "" for name in names}
