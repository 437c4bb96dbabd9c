"""labkit.analysis.backpressure on small hand-made frames: no broker."""

import numpy as np
import pandas as pd
import pytest

from labkit.analysis import backpressure as pressure
from labkit.analysis import client_stats


def _records(t_send, latency_s, errors=None):
    t_send = np.asarray(t_send, dtype=float)
    latency = np.asarray(latency_s, dtype=float)
    errors = errors or [""] * len(t_send)
    return pd.DataFrame({"msg_id": np.arange(len(t_send)), "t_send": t_send,
                         "t_delivered": t_send + latency, "latency_ms": latency * 1000,
                         "error": errors})


def test_blocked_time_starts_at_the_slot_or_when_the_previous_hand_off_returned():
    want = pd.Series([0.0, 1.0, 2.0, 3.0])
    handed = pd.Series([0.0, 1.5, 2.0, np.nan])
    # message 1 waited 0.5 s past its slot; message 2 could start at its slot (2.0 > 1.5);
    # a message given up blocked for nothing.
    assert pressure.blocked_ms(want, handed).tolist() == pytest.approx([0, 500, 0, 0])
    # Behind schedule: each hand-off starts when the one before returned.
    assert pressure.blocked_ms(pd.Series([0.0, 0.1, 0.2]),
                               pd.Series([0.5, 0.9, 1.0])).tolist() == pytest.approx(
        [500, 400, 100])


def test_journeys_split_the_time_from_wish_to_report():
    records = _records([0.5, 1.0], [0.2, 0.3])
    wanted = pd.DataFrame({"msg_id": [0, 1], "t_want": [0.0, 0.25], "t_handed": [0.25, 0.5]})
    j = pressure.journeys(wanted, records)
    assert j.behind_ms.tolist() == pytest.approx([250, 250])
    assert j.queue_ms.tolist() == pytest.approx([250, 500])
    assert j.delivery_ms.tolist() == pytest.approx([200, 300])
    assert j.total_ms.tolist() == pytest.approx([700, 1050])


def test_held_over_time_counts_the_producer_and_the_application_queue():
    records = _records([1.0, 1.0, 2.0], [1.0, 2.0, 0.5])
    wanted = pd.DataFrame({"msg_id": [0, 1, 2], "t_want": [0.0, 0.0, 0.0],
                           "t_handed": [0.5, 0.5, 1.5]})
    j = pressure.journeys(wanted, records)
    held = pressure.held_over_time(j, step_s=0.5).set_index("t")
    assert held.loc[0.5, "app_msgs"] == 2 and held.loc[0.5, "client_msgs"] == 0
    assert held.loc[1.0, "client_msgs"] == 2 and held.loc[1.5, "app_msgs"] == 1
    assert held.loc[2.0, "client_msgs"] == 2  # one reported at 2.0, one sent at 2.0
    assert held.loc[3.0, "client_msgs"] == 0
    assert held.loc[1.5, "behind_s"] == pytest.approx(1.5)


def test_accounting_holds_only_with_one_callback_per_reported_message():
    records = _records([0, 0.1, np.nan], [0.1, 0.1, np.nan], ["", "_MSG_TIMED_OUT", "BufferError"])
    assert pressure.accounting(records, 2) == {"made": 3, "refused": 1, "reported": 2,
                                               "unreported": 0, "calls": 2, "holds": True}
    assert not pressure.accounting(records, 3)["holds"]  # a message reported twice
    unreported = records.assign(error=["", "unreported", "BufferError"])
    assert not pressure.accounting(unreported, 1)["holds"]


def test_first_refusal_counts_what_was_held_then():
    records = _records([0.0, 0.1, 0.2, np.nan, 0.3], [0.15, 1, 1, np.nan, 1],
                       ["", "", "", "BufferError", ""])
    first = pressure.first_refusal(records)
    assert first == {"msg_id": 3, "accepted_before": 3, "reported_before": 1, "held": 2}
    assert np.isnan(pressure.first_refusal(_records([0.0], [0.1]))["msg_id"])


def test_stats_against_counts_and_limits():
    records = _records([0.0, 0.0, 0.5], [1.0, 2.0, 0.1])
    wanted = pd.DataFrame({"msg_id": [0, 1, 2], "t_want": [0.0] * 3,
                           "t_handed": [0.0, 0.0, 0.5]})
    stats = [{"ts": 1_000_000 + 800_000, "age": 1, "msg_cnt": 3, "msg_size": 300,
              "msg_max": 2, "msg_size_max": 1000},
             {"ts": 1_000_000 + 1_500_000, "msg_cnt": 1, "msg_size": 100, "msg_max": 2,
              "msg_size_max": 1000}]
    queue = client_stats.client_queue(stats, zero=1.0)
    assert queue.t.tolist() == pytest.approx([0.8, 1.5])
    table = pressure.stats_against_counts(pressure.journeys(wanted, records), queue)
    # At 0.8 s three were sent and one reported: 2 held, while the statistic said 3.
    assert table.counted.tolist() == [2, 1] and table.difference.tolist() == [1, 0]
    assert pressure.over_limits(queue).msg_cnt.tolist() == [3]


def test_strategy_row_reads_drops_and_memory():
    records = _records([0.0, np.nan, 0.2], [0.1, np.nan, 0.1], ["", "BufferError", ""])
    wanted = pd.DataFrame({"msg_id": [0, 1, 2], "t_want": [0.0, 0.1, 0.2],
                           "t_handed": [0.0, np.nan, 0.2]})
    queue = pd.DataFrame({"t": [0.05], "msg_cnt": [1], "msg_size": [200], "msg_max": [5],
                          "msg_size_max": [10_000]})
    row = pressure.strategy_row(pressure.journeys(wanted, records), queue, offered=4,
                                wall_s=1.0, size=200)
    assert (row["made"], row["never_made"], row["dropped"], row["delivered"]) == (3, 1, 1, 2)
    assert row["msgs_per_s"] == 2 and row["peak_client_bytes"] == 200
    assert row["peak_app_msgs"] == 0 and row["queue_ms_p50"] == 0


def test_timeout_phases_and_the_silence_before_the_leader_went():
    # killed at 1; no leader from 5; a leader again at 8; message.timeout.ms 1000
    t_send = [0.5, 1.5, 2.0, 6.0, 9.0]
    delivered = [0.51, 5.1, 5.1, 7.05, 9.01]
    errors = ["", "_MSG_TIMED_OUT", "_MSG_TIMED_OUT", "_MSG_TIMED_OUT", ""]
    records = _records(t_send, np.subtract(delivered, t_send), errors)
    phases = pressure.timeout_phases(records, 1.0, 5.0, 8.0, 1000).set_index("phase")
    assert phases.loc["dead broker still named leader", "timed_out"] == 2
    assert phases.loc["dead broker still named leader", "late_max_ms"] == pytest.approx(2600)
    assert phases.loc["no leader", "waited_max_ms"] == pytest.approx(1050)
    assert phases.loc["leader back", "acknowledged"] == 1
    quiet = pressure.overdue_silence(records, 1000, 1.0, 5.0)
    assert (quiet["start"], quiet["end"], quiet["overdue"]) == (1.0, 5.0, 2)
    assert pressure.no_leader(pd.DataFrame({"t": [0, 1, 2, 3], "leader": [3, 3, -1, 3]}),
                              0.5) == (2, 3)
