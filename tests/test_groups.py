"""The phase metrics of group scenarios (``labkit.analysis.groups``), on hand-made records."""

from types import SimpleNamespace

import pandas as pd
import pytest

from labkit.analysis import groups
from labkit.workloads.members import GROUP_EVENT_COLUMNS

A = ["t-0", "t-1", "t-2", "t-3"]


def run_of(events, phases, end):
    """(events, phases, end) as a scenario run records them."""
    frame = pd.DataFrame(events, columns=GROUP_EVENT_COLUMNS)
    table = pd.DataFrame(phases, columns=["phase", "t_trigger", "t_settled", "before", "after"])
    return frame, table, end


def test_eager_step_pauses_every_partition_and_counts_handovers():
    start = {"m1": A[:2], "m2": A[2:]}
    after = {"m1": A[:1], "m2": A[1:2], "m3": A[2:]}
    run = run_of([
        (0.1, "m1", "assign", A[:2], ""), (0.1, "m2", "assign", A[2:], ""),
        (1.0, "m3", "join", [], ""),
        (2.0, "m1", "revoke", A[:2], ""), (2.0, "m2", "revoke", A[2:], ""),
        (2.5, "m1", "assign", A[:1], ""), (2.5, "m2", "assign", A[1:2], ""),
        (2.6, "m3", "assign", A[2:], ""),
    ], [("start", 0.0, 0.5, {}, start), ("add m3", 1.0, 3.0, start, after)], end=3.0)
    table = groups.phase_summary(*run)
    add = table.loc["add m3"]
    assert add.paused == 4 and add.handovers == 3 and add.net_moved == 3
    assert add.unavoidable == 2  # what m3 ends up with
    assert add.longest_pause_s == pytest.approx(0.6) and add.settle_s == pytest.approx(1.6)
    assert table.loc["start"].paused == 0 and table.loc["start"].handovers == 0


def test_restart_gap_of_the_same_member_is_a_pause_but_no_handover():
    both = {"m1": A[:2], "m2": A[2:]}
    run = run_of([
        (0.1, "m1", "assign", A[:2], ""), (0.1, "m2", "assign", A[2:], ""),
        (1.0, "m2", "revoke", A[2:], ""), (1.0, "m2", "leave", [], ""),
        (5.0, "m2", "join", [], ""), (5.2, "m2", "assign", A[2:], ""),
    ], [("start", 0.0, 0.5, {}, both), ("restart m2", 1.0, 6.0, both, both)], end=6.0)
    row = groups.phase_summary(*run).loc["restart m2"]
    assert row.handovers == 0 and row.paused == 2 and row.unavoidable == 0
    assert row.longest_pause_s == pytest.approx(4.2) and row.ownerless_s == pytest.approx(8.4)


def test_shapes_show_short_partition_names_per_member():
    run = run_of([], [("start", 0.0, 0.5, {}, {"m2": ["order-events-ab12-10", "user-events-cd-2"],
                                                "m1": ["order-events-ab12-9"]})], end=1.0)
    table = groups.shapes({"x": SimpleNamespace(phases=run[1])})
    assert list(table.columns) == ["m1", "m2"]
    assert table.loc[("x", "start")].tolist() == ["o9", "o10 u2"]


def test_phase_summaries_index_every_run_by_scenario_and_phase():
    both = {"m1": A[:2], "m2": A[2:]}
    events, phases, end = run_of([(0.1, "m1", "assign", A[:2], ""),
                                  (0.1, "m2", "assign", A[2:], "")],
                                 [("start", 0.0, 0.5, {}, both)], end=1.0)
    run = SimpleNamespace(events=events, phases=phases, end=end)
    table = groups.phase_summaries({"a": run, "b": run})
    assert table.index.names == ["scenario", "phase"]
    assert list(table.index) == [("a", "start"), ("b", "start")]


def test_restart_outcomes_say_what_the_restarted_member_had_and_whether_it_was_kept():
    both = {"m1": A[:2], "m2": A[2:]}
    moved = {"m1": A[:3], "m2": A[3:]}
    kept = run_of([(0.1, "m1", "assign", A[:2], ""), (0.1, "m2", "assign", A[2:], ""),
                   (1.0, "m2", "revoke", A[2:], ""), (1.0, "m2", "leave", [], ""),
                   (5.0, "m2", "join", [], ""), (5.2, "m2", "assign", A[2:], "")],
                  [("start", 0.0, 0.5, {}, both), ("restart m2", 1.0, 6.0, both, both)], end=6.0)
    lost = run_of([(0.1, "m1", "assign", A[:2], ""), (0.1, "m2", "assign", A[2:], ""),
                   (1.0, "m2", "revoke", A[2:], ""), (1.2, "m1", "assign", A[2:3], ""),
                   (5.2, "m2", "assign", A[3:], "")],
                  [("start", 0.0, 0.5, {}, both), ("restart m2", 1.0, 6.0, both, moved)], end=6.0)
    runs = {label: SimpleNamespace(events=e, phases=p, end=end)
            for label, (e, p, end) in {"kept": kept, "lost": lost}.items()}
    table = groups.restart_outcomes(runs, groups.phase_summaries(runs), "restart m2", "m2")
    assert table.loc["kept"].tolist() == [0, 2, pytest.approx(4.2), 2, True]
    assert table.loc["lost", "handovers"] == 1 and not table.loc["lost", "kept"]
