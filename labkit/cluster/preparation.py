"""Bring a shared cluster back to the state an experiment assumes, and say what was found.

A series of notebooks shares one cluster (``python -m labkit cluster up``, the report runner),
and the notebooks before this one may have killed, paused or restarted brokers. A restarted
broker rejoins every ISR but leads nothing until a preferred-leader election moves its
leaderships back, which the controller does only in its periodic check (every
``leader.imbalance.check.interval.seconds``, 300 s by default), and possibly in the middle of
the next experiment. Coordinators (the leaders of ``__consumer_offsets`` and
``__transaction_state`` partitions) move with them.

``restore()`` starts or resumes any broker that is down or paused (local clusters only), waits
until every partition has a leader and a full ISR, then elects the preferred replica (the first
of each partition's replica list) wherever another broker leads and waits until it does
(``leadership.elect_preferred``). It returns a ``Preparation`` saying what it found and what
it did. ``periodic_elections`` reads when the controller ran its own elections.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import datetime

import pandas as pd

from labkit.cluster import CONTROLLER_ID, Cluster, wait_until
from labkit.cluster.faults import heal, serving
from labkit.cluster.leadership import elect_preferred, with_preferred

SURVEY_COLUMNS = ["topic", "partition", "leader", "preferred", "replicas", "isr",
                  "under_replicated", "off_preferred"]
"""The columns of ``survey``."""

_PERIODIC = re.compile(r"^\[(?P<time>[^\]]+)\] INFO \[QuorumController id=\d+\] Periodic task "
                       r"electPreferred generated (?P<records>\d+) records")


@dataclass
class Preparation:
    """What ``restore`` found and did.

    Attributes:
        found: the partitions as found (``SURVEY_COLUMNS``), before anything was done.
        not_serving: local brokers that were down or paused, and were started or resumed.
        elected: partitions a preferred-leader election moved back, as (topic, partition).
        seconds: how long the preparation took.
    """

    found: pd.DataFrame
    not_serving: list[int]
    elected: list[tuple[str, int]]
    seconds: float

    def summary(self) -> str:
        """One sentence: the state found and what was done about it."""
        found = self.found
        state = (f"Found {len(found)} partitions of {found.topic.nunique()} topics: "
                 f"{int((found.leader < 0).sum())} without a leader, "
                 f"{int(found.under_replicated.sum())} under-replicated, "
                 f"{int(found.off_preferred.sum())} led by a broker other than their "
                 f"preferred replica")
        brokers = (f"; started or resumed broker(s) {self.not_serving}" if self.not_serving
                   else "; every broker was serving")
        return (f"{state}{brokers}; moved {len(self.elected)} leadership(s) back to the "
                f"preferred replica; every ISR full and every preferred replica leading "
                f"after {self.seconds:.1f} s.")


def survey(cluster: Cluster, topics=None, settle: float = 5.0) -> pd.DataFrame:
    """Leader, preferred replica and ISR of every partition, from one metadata request.

    Args:
        cluster: the cluster to ask.
        topics: topic names; None means every topic, internal ones included.
        settle: seconds to ask again while a named topic is missing: the broker answering
            may not yet have applied the metadata of a topic created a moment ago.

    Returns:
        One row per partition, ``SURVEY_COLUMNS``: preferred and off_preferred as
        ``leadership.with_preferred`` marks them.

    Raises:
        ValueError: a named topic does not exist.
    """
    answers: list[dict] = []

    def complete() -> bool:
        answers.append(cluster.admin().list_topics(timeout=10).topics)
        return not _missing(answers[-1], topics)

    try:
        wait_until(complete, settle, "the named topics to show in the metadata", interval=0.1)
    except TimeoutError:
        if not answers:
            cluster.admin().list_topics(timeout=10)  # raises what kept the metadata away
        missing = _missing(answers[-1], topics)
        raise ValueError(f"unknown topic(s) {', '.join(map(repr, missing))}") from None
    found = answers[-1]
    names = sorted(found) if topics is None else list(topics)
    rows = [{"topic": name, "partition": p.id, "leader": p.leader, "replicas": list(p.replicas),
             "isr": sorted(p.isrs), "under_replicated": len(p.isrs) < len(p.replicas)}
            for name in names
            for p in sorted(found[name].partitions.values(), key=lambda p: p.id)]
    table = pd.DataFrame(rows, columns=["topic", "partition", "leader", "replicas", "isr",
                                        "under_replicated"])
    return with_preferred(table)[SURVEY_COLUMNS]


def _missing(found: dict, topics) -> list[str]:
    """The named topics the metadata ``found`` lacks or reports an error for."""
    names = [] if topics is None else list(topics)
    return [name for name in names if name not in found or found[name].error is not None]


def restore(cluster: Cluster, topics=None, timeout: float = 120) -> Preparation:
    """Make every broker serve, every ISR full and every preferred replica lead.

    Args:
        cluster: the shared cluster. Brokers are started or resumed only on a local cluster
            (``faults.heal``); on an external one a broker down makes this time out.
        topics: the topics to restore; None means every topic (coordinators included).
        timeout: seconds each wait may take.

    Returns:
        The ``Preparation``: what was found and done.

    Raises:
        TimeoutError: the cluster did not get there within ``timeout`` seconds per wait.
        ValueError: a named topic does not exist.
    """
    start = time.monotonic()
    found = survey(cluster, topics)
    not_serving = []
    if cluster.local:
        not_serving = [b for b in sorted(cluster.nodes) if not serving(cluster, b)]
        if not_serving:
            heal(cluster, timeout)
    names = sorted(set(found.topic))

    def whole() -> bool:
        now = survey(cluster, names)
        return bool((now.leader >= 0).all() and not now.under_replicated.any())

    wait_until(whole, timeout, f"a leader and a full ISR for every partition of {len(names)} "
                               f"topic(s)", interval=0.25)
    now = survey(cluster, names)
    off = sorted(set(now.topic[now.off_preferred]))
    moved = elect_preferred(cluster, off, timeout) if off else pd.DataFrame(
        columns=["topic", "partition"])
    elected = sorted(zip(moved.topic, moved.partition.astype(int), strict=True))
    return Preparation(found=found, not_serving=not_serving, elected=elected,
                       seconds=time.monotonic() - start)


def periodic_elections(cluster: Cluster, since_wall: float,
                       until_wall: float | None = None) -> pd.DataFrame:
    """The controller's own periodic preferred-leader elections in a stretch of time.

    With ``auto.leader.rebalance.enable`` (the default) the controller runs one every
    ``leader.imbalance.check.interval.seconds`` and logs how many metadata records it wrote
    (0: nothing moved). Read from the dedicated controller's log (local 3-broker clusters;
    empty otherwise), whose time stamps are in the machine's local time.

    Args:
        cluster: the cluster.
        since_wall: epoch seconds; earlier elections are left out.
        until_wall: epoch seconds; later ones are left out (default: none).

    Returns:
        Columns wall (epoch seconds) and records (0: the election moved nothing).
    """
    columns = ["wall", "records"]
    if not cluster.local or getattr(cluster, "controller", None) is None:
        return pd.DataFrame(columns=columns)
    rows = []
    for line in cluster.log_tail(CONTROLLER_ID, 1_000_000).splitlines():
        match = _PERIODIC.match(line)
        if match:
            wall = datetime.strptime(match["time"], "%Y-%m-%d %H:%M:%S,%f").timestamp()
            if wall >= since_wall and (until_wall is None or wall <= until_wall):
                rows.append((wall, int(match["records"])))
    return pd.DataFrame(rows, columns=columns)
