"""The crash experiment's placement, argument checks and loss table; the experiment itself
runs against the real cluster in notebook 20's smoke test."""

import pandas as pd
import pytest

from labkit.analysis.audit import audit, crash_totals, lost_messages
from labkit.experiments.durability import LeaderCrash, crash_runs, placement


def test_the_victim_leads_every_third_partition_and_each_has_three_replicas():
    assert placement([1, 2, 3], 2, 4) == [[2, 3, 1], [3, 1, 2], [1, 2, 3], [2, 3, 1]]
    for victim in (1, 2, 3):
        replicas = placement([3, 1, 2], victim, 6)
        assert [r[0] for r in replicas].count(victim) == 2
        assert all(sorted(r) == [1, 2, 3] for r in replicas)


def test_placement_needs_three_brokers_including_the_victim():
    with pytest.raises(ValueError, match="needs 3 brokers including victim 4"):
        placement([1, 2, 3], 4, 3)
    with pytest.raises(ValueError, match="brokers are \\[1\\]"):
        placement([1], 1, 3)


@pytest.mark.parametrize("kwargs, message", [
    ({"runs": 0}, "runs=0 must be >= 1"),
    ({"fault_at": 5.0}, "fault_at=5.0 must lie in \\[0, duration=4.0\\)"),
    ({"down_s": -1}, "down_s=-1 must be >= 0"),
    ({"configs": {"bad": {"acks": "2"}}}, "acks"),
])
def test_bad_arguments_are_refused_before_anything_runs(kwargs, message):
    args = {"configs": {"acks=1": {"acks": "1"}}, "runs": 1, "rate": 100, "duration": 4.0,
            "fault_at": 1.0, "down_s": 1.0, **kwargs}
    with pytest.raises(ValueError, match=message):
        crash_runs(None, **args)


def test_crash_runs_refuse_a_single_broker_cluster(cluster1):
    with pytest.raises(ValueError, match="placement needs 3 brokers"):
        crash_runs(cluster1, {"acks=1": {"acks": "1"}}, runs=1, rate=100, duration=2.0,
                   fault_at=1.0, down_s=1.0)


def _run(number, victim, led, produced, found):
    events = pd.DataFrame({"action": ["kill"], "broker": [victim],
                           "wall": pd.to_datetime([100.0], unit="s", utc=True)})
    producer = type("Run", (), {"started_wall": 99.0, "records": produced})()
    return LeaderCrash(number, victim, {"t": led}, {"acks=1": "t"}, events,
                    {"acks=1": producer}, {"acks=1": audit(produced, found)})


def test_lost_messages_say_where_and_when_each_was_acknowledged():
    produced = pd.DataFrame({"msg_id": [0, 1, 2], "topic": pd.Categorical(["t"] * 3),
                             "partition": [0, 1, 0], "offset": [0, 0, 1], "error": "",
                             "t_delivered": [0.5, 0.7, 1.2]})
    found = pd.DataFrame({"topic": ["t"], "partition": [1], "offset": [0], "msg_id": [1]})
    run = _run(0, 2, [0], produced, found)
    lost = lost_messages([run])
    assert lost.msg_id.tolist() == [0, 2]
    assert lost.led_by_victim.all() and lost.victim.eq(2).all()
    assert lost.acked_s.round(6).tolist() == [-0.5, 0.2]  # 99 + t_delivered - 100
    table = crash_totals([run])
    assert table.loc[("acks=1", 0), "lost"] == 2 and table.index.names == ["config", "run"]


def test_no_loss_gives_an_empty_table_with_the_columns():
    produced = pd.DataFrame({"msg_id": [0], "topic": pd.Categorical(["t"]), "partition": [0],
                             "offset": [0], "error": "", "t_delivered": [0.5]})
    found = pd.DataFrame({"topic": ["t"], "partition": [0], "offset": [0], "msg_id": [0]})
    lost = lost_messages([_run(0, 1, [0], produced, found)])
    assert lost.empty and "led_by_victim" in lost.columns


def test_lost_when_acked_counts_every_lost_message_per_config_and_names_the_kill():
    import matplotlib

    matplotlib.use("Agg")
    from labkit.viz import plots

    produced = pd.DataFrame({"msg_id": [0, 1, 2], "topic": pd.Categorical(["t"] * 3),
                             "partition": [0, 1, 0], "offset": [0, 0, 1], "error": "",
                             "t_delivered": [0.5, 0.7, 1.2]})
    found = pd.DataFrame({"topic": ["t"], "partition": [1], "offset": [0], "msg_id": [1]})
    lost = lost_messages([_run(0, 2, [0], produced, found), _run(1, 3, [0], produced, found)])
    fig = plots.lost_when_acked(lost, configs=["acks=1", "acks=all"])
    ax = fig.axes[0]
    # Each config's count, zeros included, under its name; one colour per run.
    assert [t.get_text() for t in ax.get_yticklabels()] == ["acks=all\n0 lost", "acks=1\n4 lost"]
    assert sum(bar.get_height() > 0 for bar in ax.patches) == 4  # 2 runs x 2 time bins
    assert len(ax.get_legend().get_texts()) == 2
    assert "kill the leader" in [t.get_text() for t in ax.texts]
    matplotlib.pyplot.close(fig)
