"""Notebook 07's experiments against a real cluster: statistics that cover every message."""

import matplotlib
import pytest

from labkit.analysis import client_stats
from labkit.experiments import client_internals
from labkit.viz import widgets

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def topic(cluster3):
    return client_internals.prepare_topic(cluster3)


def test_sweep_parts_cover_the_messages_labkit_measured(cluster3, topic):
    sweep = client_internals.sweep(cluster3, lingers=(0, 5), acks_values=("all",), rate=200,
                                   seconds=0.5, flat_messages=2_000, stats_interval_ms=100,
                                   topic=topic)
    assert [(m.mode, m.config["linger.ms"]) for m in sweep.measured] == [
        ("fixed", "0"), ("fixed", "5"), ("flat", "0"), ("flat", "5")]
    table = client_stats.parts_table(sweep.measured)
    assert (table.delivered > 0).all()
    # int_latency counts each message once when it goes into a batch (no retries here).
    assert (table.counted == table.delivered).all()
    # Each message's latency holds its own queue time, output-buffer wait and round trip.
    assert (table.measured_mean_ms >= table.total_low_ms).all(), table
    for m in sweep.measured:
        windows = client_stats.latency_parts(m.run.stats, m.zero)
        # Time 0 of the run on librdkafka's clock: the windows frame the run. (Its statistics
        # timer starts with the client, so on a busy machine a window may end before the
        # run's first send; it then holds no message.)
        before = windows.t <= 0
        assert (windows.messages[before] == 0).all(), windows[before]
        assert windows.t_start[~before].iloc[0] <= 0
        assert windows.t.iloc[-1] >= m.run.records.t_delivered.max()


def test_burst_sends_flat_out_in_the_middle(cluster3, topic):
    storm = client_internals.burst(cluster3, topic=topic, rate=200, before_s=0.5, burst_s=0.3,
                                   after_s=0.5, stats_interval_ms=100)
    run = storm.measured.run
    assert run.delivered == run.sent and (run.records.error == "").all()
    assert storm.burst_start_s == pytest.approx(0.5, abs=0.05)
    during = run.records.t_send.between(storm.burst_start_s, storm.burst_end_s)
    # Flat out sends far more than the fixed rate would in the same time.
    assert during.sum() == storm.burst_messages > 200 * 0.3 * 2
    assert run.records.t_send.is_monotonic_increasing
    windows = client_stats.latency_parts(run.stats, storm.measured.zero)
    assert windows.messages.sum() == run.delivered


@pytest.mark.parametrize("call, match", [
    (lambda c, t: client_internals.sweep(c, modes=["sideways"], topic=t), "modes="),
    (lambda c, t: client_internals.sweep(c, rate=0, topic=t), "rate=0 must be a positive"),
    (lambda c, t: client_internals.sweep(c, lingers=(-1,), topic=t), "linger.ms=-1 is not allowed"),
    (lambda c, t: client_internals.burst(c, topic=t, burst_s=0), "burst_s=0"),
    (lambda c, t: client_internals.run_with_stats(c, {}, t, messages=10, stats_interval_ms=1),
     "stats_interval_ms=1"),
])
def test_bad_input_is_refused_before_anything_runs(cluster3, topic, call, match):
    with pytest.raises(ValueError, match=match):
        call(cluster3, topic)


def test_internals_panel_runs_the_same_function(cluster3, topic, capsys):
    panel = widgets.internals_panel(cluster3, topic)

    def find(widget, description):
        if getattr(widget, "description", None) == description:
            return widget
        for child in getattr(widget, "children", ()):
            if (found := find(child, description)) is not None:
                return found
        return None

    find(panel, "linger.ms").value = 0
    find(panel, "rate msg/s (0=max)").value = 0
    find(panel, "messages (flat out)").value = 1_000
    find(panel, "Run").click()
    assert len(panel.measured) == 1 and panel.measured[0].run.delivered == 1_000
    capsys.readouterr()
    find(panel, "messages (flat out)").value = -3
    find(panel, "Run").click()
    assert len(panel.measured) == 1
    assert "error: messages=-3 must be a positive integer" in capsys.readouterr().out


@pytest.mark.parametrize("args, match", [
    (([5], ["2"], [], []), "acks='2' is not allowed"),
    (([5], ["all"], [1000, 0], []), "rate=0 must be a positive"),
    (([5], ["all"], [], [250, 5]), "stats_interval_ms=5 must be an integer of at least"),
    (([], ["all"], [], []), "lingers=\\[\\] and acks_values"),
])
def test_the_notebooks_settings_are_checked_together(args, match):
    with pytest.raises(ValueError, match=match):
        client_internals.check_settings(*args)
    client_internals.check_settings([0, 5], ["1", "all"], [1000, 500], [250, 100])
