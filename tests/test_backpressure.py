"""labkit.experiments.backpressure on a real cluster behind the lab network."""

import pytest

from labkit.analysis import backpressure as pressure
from labkit.analysis import client_cuts, client_stats
from labkit.cluster import FaultInjectionUnavailable
from labkit.experiments import backpressure


def test_bad_arguments_are_refused_before_anything_starts(cluster3net):
    config = backpressure.queue_settings(300, 1024)
    with pytest.raises(ValueError, match="queue.buffering.max.messages=-5 is not allowed"):
        backpressure.queue_settings(-5, 1024)
    with pytest.raises(ValueError, match="strategy='sideways' is not known; use one of block"):
        backpressure.strategy_run(cluster3net, "t", "sideways", config, 1.0, 100, 1.0)
    with pytest.raises(ValueError, match="rate=0 is not allowed"):
        backpressure.strategy_run(cluster3net, "t", "drop", config, 1.0, 0, 1.0)
    with pytest.raises(ValueError, match="app_queue=0 is not allowed"):
        backpressure.strategy_run(cluster3net, "t", "app-queue", config, 1.0, 100, 1.0,
                                  app_queue=0)
    with pytest.raises(ValueError, match="strategies=.*use one or more of"):
        backpressure.compare_strategies(cluster3net, "t", ["block", "later"], config, 1.0,
                                        100, 1.0)
    with pytest.raises(ValueError, match="broker=7 is not a broker"):
        backpressure.leaderless_timeout(cluster3net, broker=7)
    assert not cluster3net.network.links().size


def test_a_cluster_without_the_lab_network_is_refused(cluster3):
    config = backpressure.queue_settings(300, 1024)
    with pytest.raises(FaultInjectionUnavailable, match="lab network"):
        backpressure.queue_full(cluster3, "t", config, 1.0)


def test_a_full_queue_and_three_ways_to_live_with_it(cluster3net):
    topic = backpressure.make_topic(cluster3net)
    config = backpressure.queue_settings(300, 1024, **{"linger.ms": 5})
    full = backpressure.queue_full(cluster3net, topic, config, 2.0, messages=1500)
    books = pressure.accounting(full.run.records, full.calls)
    assert books["holds"] and books["refused"] > 0 and books["reported"] >= 300
    assert pressure.first_refusal(full.run.records)["msg_id"] >= 300
    queue = client_stats.client_queue(full.run.stats, full.zero)
    assert len(queue) and pressure.over_limits(queue).empty and queue.msg_max.max() == 300

    ways = list(backpressure.ON_FULL_STRATEGIES)
    runs = backpressure.compare_strategies(cluster3net, topic, ways, config, 2.0, rate=3000,
                                           seconds=0.8, app_queue=400)
    assert not cluster3net.network.links().size  # every run healed its link
    table = pressure.strategy_table(runs.values())
    for strategy, run in runs.items():
        assert pressure.accounting(run.run.records, run.calls)["holds"], strategy
        assert pressure.over_limits(client_stats.client_queue(run.run.stats, run.zero)).empty
    block, drop, app = (table.loc[runs[s].label] for s in ("block", "drop", "app-queue"))
    assert drop.made == drop.delivered + drop.dropped and drop.dropped > 0
    assert block.dropped == 0 and block.delivered == block.made and block.never_made > 0
    assert app.dropped == 0 and 0 < app.peak_app_msgs <= 400 + 1  # + the one being sent
    assert app.queue_ms_p50 > 0 and block.queue_ms_p50 == 0


def test_a_leaderless_partition_times_messages_out_no_sooner_than_the_timeout(cluster3net):
    lt = backpressure.leaderless_timeout(cluster3net, rate=100, broker=3,
                                         message_timeout_ms=1000, baseline_s=0.5,
                                         hold_s=1.5, tail_s=0.5)
    assert cluster3net.is_running(3) and lt.restarted_s < lt.serving_s
    failed = client_cuts.failures(lt.records, 1000)
    assert len(failed) and set(failed.error) == {"_MSG_TIMED_OUT"}
    assert lt.error_texts == {"_MSG_TIMED_OUT": "Local: Message timed out"}
    assert client_cuts.early_timeouts(lt.records, 1000).empty
    rec = lt.records
    assert rec[(rec.t_send > lt.events.done_s.iloc[0]) & (rec.error == "")
               & (rec.t_delivered < lt.restarted_s)].empty
    assert (rec[rec.t_send < lt.killed_s - 0.2].error == "").all()


def _find(widget, description):
    if getattr(widget, "description", None) == description:
        return widget
    for child in getattr(widget, "children", ()):
        found = _find(child, description)
        if found is not None:
            return found
    return None


def test_the_control_panel_runs_the_same_strategies(cluster3net):
    import matplotlib

    from labkit.viz.widgets import backpressure_panel

    matplotlib.use("Agg")
    topic = backpressure.make_topic(cluster3net)
    panel = backpressure_panel(cluster3net, topic, queue_max_messages=200, rate=2000)
    _find(panel, "strategy").value = "drop"
    _find(panel, "seconds").value = 0.5
    _find(panel, "Run").click()
    assert [r.strategy for r in panel.runs] == ["drop"] and panel.runs[0].run.dropped > 0
    _find(panel, "link Mbit/s (each way)").value = -1  # bad input: one clear message, no run
    _find(panel, "Run").click()
    assert len(panel.runs) == 1 and not cluster3net.network.links().size
    _find(panel, "Clear runs").click()
    assert panel.runs == []
