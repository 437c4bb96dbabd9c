"""The member-thread base both kinds of group share, with threads that need no broker."""

import threading

import pytest

from labkit.workloads.members import GROUP_EVENT_COLUMNS, MemberGroup, MemberThread


class _Idle(MemberThread):
    """A member that joins, waits to be told to stop (or for ``release``), and leaves."""

    def __init__(self, group, name, release: threading.Event | None = None):
        super().__init__(group, name)
        self.release = release

    def run(self):
        self.event("join")
        if self.release is not None:
            self.release.wait(10)  # deaf to stop_event: a stuck member
        else:
            self.stop_event.wait(10)
        self.event("leave", ["t-0"], "bye")


class _Group(MemberGroup):
    noun = "test group"

    def __init__(self, members=2, processing=0.0):
        super().__init__(members, processing)
        self.group_id = "g"
        self.release = threading.Event()

    def start(self):
        for _ in range(self.initial_members):
            self.add_member()
        return self

    def add_member(self, name=None, stuck=False):
        name = self._new_name(name)
        self.members[name] = _Idle(self, name, self.release if stuck else None)
        self.members[name].start()
        return name


@pytest.mark.parametrize("kwargs, message", [
    ({"members": -1}, "members=-1 must be a non-negative integer"),
    ({"processing": (0.2, 0.1)}, r"processing=\(0.2, 0.1\) must be seconds >= 0"),
])
def test_bad_members_or_processing_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        _Group(**kwargs)


def test_members_are_named_in_turn_and_their_events_share_one_schema():
    with _Group() as group:
        assert group.add_member() == "m3"
        with pytest.raises(ValueError, match="member 'm1' already exists"):
            group.add_member("m1")
        with pytest.raises(ValueError, match="no member 'm9'"):
            group._member("m9")
        assert group.wait_for_event("m3", "join", timeout=5) >= 0
    events = group.events()
    assert list(events.columns) == GROUP_EVENT_COLUMNS
    leaves = events[events.kind == "leave"]
    assert sorted(leaves.member) == ["m1", "m2", "m3"]
    assert leaves.partitions.tolist() == [["t-0"]] * 3 and set(leaves.detail) == {"bye"}
    assert set(events[events.kind == "join"].partitions.map(len)) == {0}
    assert not group.members


def test_a_stuck_member_is_an_error_and_stays_listed():
    group = _Group(members=1).start()
    group.add_member("stuck", stuck=True)
    try:
        with pytest.raises(RuntimeError, match=r"test group g: member\(s\) stuck still running"):
            group.stop(timeout=0.2)
        assert list(group.members) == ["stuck"]
    finally:
        group.release.set()
        group.stop(timeout=10)
    assert not group.members


def test_forgetting_a_member_waits_for_its_thread():
    group = _Group(members=1).start()
    group.add_member("stuck", stuck=True)
    group.members["stuck"].stop_event.set()
    with pytest.raises(RuntimeError, match="member stuck still running 0.2 s after"):
        group._forget("stuck", 0.2)
    group.release.set()
    group._forget("stuck", 10)
    group.stop()
    assert not group.members
