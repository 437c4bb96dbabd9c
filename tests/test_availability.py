"""labkit.analysis.availability on hand-made records: phases, outages, visibility. No broker."""

import math

import numpy as np
import pandas as pd
import pytest

from labkit.analysis.availability import (
    PHASE_COLUMNS,
    outage_at,
    outages,
    phases,
    read_delays,
    visibility,
)

NAN = float("nan")


def records(rows):
    """Producer records from (t_send, t_delivered, error) triples; msg_id in order."""
    frame = pd.DataFrame(rows, columns=["t_send", "t_delivered", "error"])
    return frame.assign(msg_id=np.arange(len(frame)))


RUN = records([
    (0.1, 0.2, ""), (0.5, 0.6, ""),                       # healthy
    (1.2, 4.2, "_MSG_TIMED_OUT"), (1.5, 1.6, ""),         # brokers dying
    (2.0, 2.0, "NOT_ENOUGH_REPLICAS"), (2.5, 2.5, "NOT_ENOUGH_REPLICAS"),
    (2.7, NAN, "unreported"), (2.8, NAN, "BufferError"),  # degraded
    (3.5, 3.6, ""),                                       # recovered
])
STARTS = [(0.0, "healthy"), (1.0, "dying"), (2.0, "degraded"), (3.0, "recovered")]


def test_phases_count_each_message_in_the_phase_it_was_sent_in():
    table = phases(RUN, STARTS).set_index("phase")
    assert list(table.index) == ["healthy", "dying", "degraded", "recovered"]
    assert list(table.columns[:len(PHASE_COLUMNS) - 1]) == list(PHASE_COLUMNS[1:])
    assert table.sent.tolist() == [2, 2, 3, 1]  # the BufferError was never sent
    assert table.acked.tolist() == [2, 1, 0, 1]
    assert table.failed.tolist() == [0, 1, 2, 0]
    assert table.unreported.tolist() == [0, 0, 1, 0]
    assert table.NOT_ENOUGH_REPLICAS.tolist() == [0, 0, 2, 0]
    assert table._MSG_TIMED_OUT.tolist() == [0, 1, 0, 0]
    assert table.start_s.tolist() == [0.0, 1.0, 2.0, 3.0]
    assert table.end_s.tolist()[:3] == [1.0, 2.0, 3.0] and math.isinf(table.end_s.iloc[-1])


def test_phases_by_delivery_time_move_late_reports_and_drop_missing_ones():
    table = phases(RUN, STARTS, end=5.0, time_column="t_delivered").set_index("phase")
    # the timed-out message sent at 1.2 reported at 4.2: counted in "recovered"
    assert table.sent.tolist() == [2, 1, 2, 2]
    assert table._MSG_TIMED_OUT.tolist() == [0, 0, 0, 1]
    assert table.unreported.sum() == 0
    assert table.end_s.iloc[-1] == 5.0


def test_phases_leave_out_messages_outside_the_phases():
    table = phases(RUN, [(1.0, "dying"), (2.0, "degraded")], end=2.6)
    assert table.sent.tolist() == [2, 2]  # before 1.0 and from 2.6 on are left out


def test_phases_check_their_arguments():
    with pytest.raises(ValueError, match="at least one"):
        phases(RUN, [])
    with pytest.raises(ValueError, match="time order"):
        phases(RUN, [(2.0, "b"), (1.0, "a")])
    with pytest.raises(ValueError, match="before the last phase start"):
        phases(RUN, STARTS, end=2.0)
    with pytest.raises(ValueError, match="lack the column"):
        phases(RUN.drop(columns="error"), STARTS)


def test_outages_are_the_gaps_between_successful_deliveries_longest_first():
    found = outages(RUN, min_gap_s=0.5)
    assert found.to_dict("list") == {"start_s": [1.6, 0.6], "end_s": [3.6, 1.6],
                                     "seconds": pytest.approx([2.0, 1.0])}
    with_edges = outages(RUN, min_gap_s=1.5, start=0.0, end=6.0)
    assert with_edges.start_s.tolist() == [3.6, 1.6]
    assert with_edges.seconds.tolist() == pytest.approx([2.4, 2.0])


def test_a_run_without_deliveries_is_one_outage_between_its_edges():
    failed = records([(0.1, 0.2, "NOT_ENOUGH_REPLICAS")])
    assert outages(failed, start=0.0, end=3.0).to_dict("list") == {
        "start_s": [0.0], "end_s": [3.0], "seconds": [3.0]}
    assert outages(failed).empty


def test_outage_at_finds_the_deliveries_around_an_instant():
    assert outage_at(RUN, 2.0) == (1.6, 3.6)
    assert outage_at(RUN, 1.6) == (1.6, 3.6)  # a delivery at t itself is "before"
    before, after = outage_at(RUN, 10.0)
    assert before == 3.6 and math.isnan(after)
    assert math.isnan(outage_at(RUN, 0.0)[0])


def test_visibility_puts_the_first_read_of_each_message_on_the_run_clock():
    seen = pd.DataFrame({"run_id": ["r", "r", "r", "other"], "msg_id": [0, 3, 0, 1],
                         "t_consumed": [1000.5, 1004.0, 1002.0, 1000.7]})
    out = visibility(RUN, seen, "r", zero_wall=1000.0)
    assert out.t_seen.iloc[0] == 0.5 and out.t_seen.iloc[3] == 4.0
    assert out.t_seen.drop(index=[0, 3]).isna().all()  # msg 1 was read for another run only
    assert list(out.columns) == [*RUN.columns, "t_seen"]


def test_read_delays_measure_from_acknowledgement_to_first_read_per_phase():
    seen = pd.DataFrame({"run_id": "r", "msg_id": [0, 1, 3, 8],
                         "t_consumed": [1000.3, 1000.9, 1003.8, 1003.7]})
    table = read_delays(visibility(RUN, seen, "r", 1000.0), STARTS).set_index("phase")
    # acknowledged: msg 0 (0.2), 1 (0.6) healthy; 3 (1.6) dying; 8 (3.6) recovered
    assert table.acked.tolist() == [2, 1, 0, 1]
    assert table.read.tolist() == [2, 1, 0, 1]
    assert table.median_s.loc["healthy"] == pytest.approx(0.2)
    assert table.max_s.loc["healthy"] == pytest.approx(0.3)
    assert table.max_s.loc["dying"] == pytest.approx(2.2)
    assert math.isnan(table.median_s.loc["degraded"])
    with pytest.raises(ValueError, match="t_seen"):
        read_delays(RUN, STARTS)
