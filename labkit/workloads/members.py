"""Group members as background threads, and the one event log every group keeps.

``ConsumerGroup`` (``labkit.workloads.consumer``) and ``ShareGroup`` (``labkit.workloads.share``)
each run N members, every member a thread polling its own client until told to stop, and
record what happens to the members as events. What they share lives here: ``MemberThread``
(one member) and ``MemberGroup`` (starting, stopping, looking up and forgetting members,
recording events).

Columns of ``events()`` (``GROUP_EVENT_COLUMNS``), the same for both kinds of group:

========== ==================================================================================
t          float, seconds since the group started (``t0``)
member     str, the member's name (m1, m2, ...)
kind       str, what happened (each group lists its kinds: join, leave, error, crash, ...)
partitions list of "topic-partition" the event concerns ([] when it names none)
detail     str, e.g. an error's name and reason ("" when there is nothing to add)
========== ==================================================================================
"""

from __future__ import annotations

import random
import threading
import time
from typing import Any

import pandas as pd
from confluent_kafka import KafkaException

from labkit.cluster import wait_until

GROUP_EVENT_COLUMNS = ["t", "member", "kind", "partitions", "detail"]


class MemberThread(threading.Thread):
    """One group member: a thread polling its own client until ``stop_event`` is set.

    Subclasses create the client and write ``run()``; they record events with ``event``.

    Args:
        group: the group it belongs to.
        name: the member's name (m1, m2, ...).
    """

    def __init__(self, group: MemberGroup, name: str):
        super().__init__(name=f"labkit-{group.group_id}-{name}", daemon=True)
        self.group, self.member = group, name
        self.stop_event = threading.Event()

    def event(self, kind: str, partitions=(), detail: str = "") -> None:
        """Record an event of this member (see ``GROUP_EVENT_COLUMNS``)."""
        self.group._event(self.member, kind, partitions, detail)

    def _on_error(self, err) -> None:
        """The ``error_cb``: an error the client reports outside any call."""
        self.event("error", detail=f"{err.name()}: {err.str()}")

    def _close(self, client) -> None:
        """Close the client (it leaves the group) and record the leave.

        A failed close is recorded as an error event; the member leaves all the same.
        """
        try:
            client.close()
        except (KafkaException, RuntimeError) as exc:
            self.event("error", detail=f"close failed: {exc}")
        self.event("leave")


class MemberGroup:
    """The members of a group and its event log; a context manager (``start`` / ``stop``).

    Subclasses set ``group_id`` and write ``start()`` and ``add_member()``.

    Args:
        members: how many members to start with.
        processing: seconds of simulated work per record: a number, or (low, high) for a
            uniform random time (see ``_work``).

    Raises:
        ValueError: a bad ``members`` or ``processing``.
    """

    noun = "group"  # how messages name the group, e.g. "consumer group"

    def __init__(self, members: int, processing: float | tuple[float, float]):
        if not isinstance(members, int) or members < 0:
            raise ValueError(f"members={members!r} must be a non-negative integer")
        low, high = processing if isinstance(processing, tuple) else (processing, processing)
        if not 0 <= low <= high:
            raise ValueError(f"processing={processing!r} must be seconds >= 0, or (low, high)")
        self.initial_members = members
        self.processing = (low, high)
        self._rng = random.Random(0)
        self.members: dict[str, Any] = {}
        self._count = 0
        self._events: list[tuple] = []
        self.t0 = time.monotonic()
        self._started = False

    def start(self) -> MemberGroup:
        """Start the initial members."""
        raise NotImplementedError

    def stop(self, timeout: float = 30) -> None:
        """Tell every member to stop and wait for their threads.

        Raises:
            RuntimeError: a member's thread was still running ``timeout`` s after it was
                told to stop (it is left in ``members``).
        """
        for member in self.members.values():
            member.stop_event.set()
        for member in list(self.members.values()):
            member.join(timeout)
        stuck = [name for name, member in self.members.items() if member.is_alive()]
        self.members = {name: self.members[name] for name in stuck}
        if stuck:
            raise RuntimeError(f"{self.noun} {self.group_id}: member(s) {', '.join(stuck)} "
                               f"still running {timeout:g} s after stop()")

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def _work(self) -> None:
        """Simulate processing one record: sleep ``processing`` seconds."""
        low, high = self.processing
        if high > 0:
            time.sleep(low if low == high else self._rng.uniform(low, high))

    # -- membership -------------------------------------------------------------------------

    def _new_name(self, name: str | None) -> str:
        """``name``, or the next of m1, m2, ...

        Raises:
            ValueError: the name is taken.
        """
        self._count += 1
        name = name or f"m{self._count}"
        if name in self.members:
            raise ValueError(f"member {name!r} already exists; members are {list(self.members)}")
        return name

    def _member(self, name: str):
        if name not in self.members:
            raise ValueError(f"no member {name!r}; members are {list(self.members)}")
        return self.members[name]

    def _forget(self, name: str, timeout: float) -> None:
        """Wait for a stopped member's thread, then drop it from ``members``.

        Raises:
            RuntimeError: the thread is still running after ``timeout`` s (it stays listed).
        """
        member = self.members[name]
        member.join(timeout)
        if member.is_alive():
            raise RuntimeError(f"{self.noun} {self.group_id}: member {name} still running "
                               f"{timeout:g} s after it was told to stop")
        del self.members[name]

    # -- events -----------------------------------------------------------------------------

    def _event(self, member: str, kind: str, partitions=(), detail: str = "") -> None:
        self._events.append((time.monotonic() - self.t0, member, kind, list(partitions),
                             detail))

    def events(self) -> pd.DataFrame:
        """Every member event so far (``GROUP_EVENT_COLUMNS``; each group lists its kinds)."""
        return pd.DataFrame(list(self._events), columns=GROUP_EVENT_COLUMNS)

    def wait_for_event(self, member: str, kind: str, timeout: float = 60) -> float:
        """Wait until ``member`` has an event of ``kind``; return its ``t`` (the first one)."""
        def found():
            return next((e[0] for e in list(self._events) if e[1] == member and e[2] == kind),
                        None)

        return wait_until(lambda: found() is not None and [found()], timeout,
                          f"a {kind} event of member {member}")[0]
