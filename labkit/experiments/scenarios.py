"""Scripted consumer-group scenarios: a live stream plus a sequence of membership changes.

Each function runs a ``ConsumerGroup`` under a background producer, applies its changes,
waits for the group to settle after each, and returns the stopped group (its records stay
readable) with the producer's run.
"""

from __future__ import annotations

from typing import Any

from labkit.cluster import Cluster
from labkit.workloads.consumer import ConsumerGroup
from labkit.workloads.producer import Background, ProducerRun


def membership_changes(cluster: Cluster, topics, rate: float, config: dict[str, Any],
                       processing: float = 0.0, members: int = 3,
                       changes=(("add", "m4"), ("remove", "m2"), ("crash", "m3")),
                       **group_args: Any) -> tuple[ConsumerGroup, ProducerRun]:
    """Start ``members`` members, stream at ``rate`` msg/s and apply ``changes`` in turn.

    Args:
        cluster: where to run.
        topics: topics to produce to and consume.
        rate: msg/s of the background stream.
        config: group config (e.g. strategy, session.timeout.ms).
        processing: simulated seconds of work per message.
        members: initial members (m1, m2, ...).
        changes: (action, member) pairs: "add" (a new member of that name), "remove"
            (graceful), "crash", or "restart" (close it, then add it again under the same
            name and settings, e.g. the same group.instance.id).
        **group_args: other ``ConsumerGroup`` arguments.

    Returns:
        The stopped group and the stream's ProducerRun; every message the stream
        delivered has been processed before the group stopped.
    """
    with ConsumerGroup(cluster, topics, members=members, config=config, processing=processing,
                       **group_args) as group:
        group.wait_for_stable()
        with Background(cluster, {"acks": "all"}, rate=rate, topics=topics) as stream:
            for action, name in changes:
                apply_change(group, action, name)
                group.wait_for_stable()
        group.wait_for_run(stream.run, timeout=300)
    return group, stream.run


def apply_change(group: ConsumerGroup, action: str, name: str) -> None:
    """Apply one membership change to a running group (see ``membership_changes``).

    Raises:
        ValueError: an unknown action.
    """
    if action == "add":
        group.add_member(name)
    elif action == "remove":
        group.remove_member(name)
    elif action == "crash":
        group.crash_member(name)
    elif action == "restart":
        overrides = group.member_overrides(name)
        group.remove_member(name)
        group.add_member(name, **overrides)
    else:
        raise ValueError(f"unknown change {action!r}; use add, remove, crash or restart")


def rebalance_in_flight(cluster: Cluster, topics, rate: float, config: dict[str, Any],
                        commit_every: int, commit_on_revoke: bool, processing: float = 0.0,
                        batch_size: int = 20) -> tuple[ConsumerGroup, ProducerRun]:
    """Two members committing every ``commit_every`` batches; a third joins mid-stream.

    The rebalance revokes partitions whose processed messages may not be committed yet;
    with ``commit_on_revoke`` the members commit them in on_revoke first.

    Returns:
        The stopped group and the stream's ProducerRun (all of it processed).
    """
    with ConsumerGroup(cluster, topics, members=2, config=config, commit="sync-per-batch",
                       commit_every=commit_every, commit_on_revoke=commit_on_revoke,
                       processing=processing, batch_size=batch_size) as group:
        group.wait_for_stable()
        with Background(cluster, {"acks": "all"}, rate=rate, topics=topics) as stream:
            group.wait_for_messages(max(1, int(rate // 2)))
            group.add_member()
            group.wait_for_stable()
        group.wait_for_run(stream.run, timeout=300)
    return group, stream.run
