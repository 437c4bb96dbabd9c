"""labkit.cluster.preparation against the session's real 3-broker cluster: a broker left dead
and the leaderships a crash moved away are put back, and the summary says what was found."""

from datetime import datetime

import pandas as pd
import pytest

from labkit.cluster import faults, unique_name
from labkit.cluster.preparation import (
    SURVEY_COLUMNS,
    Preparation,
    periodic_elections,
    restore,
    survey,
)


def test_the_summary_counts_what_was_found_and_done():
    found = pd.DataFrame([("t", 0, 2, 1, [1, 2, 3], [2, 3], True, True),
                          ("t", 1, 2, 2, [2, 3, 1], [2, 3], True, False),
                          ("u", 0, -1, 3, [3, 1, 2], [], True, False)], columns=SURVEY_COLUMNS)
    text = Preparation(found, [1], [("t", 0)], 2.25).summary()
    assert text.startswith("Found 3 partitions of 2 topics: 1 without a leader, "
                           "3 under-replicated, 1 led by a broker other than their preferred")
    assert "started or resumed broker(s) [1]" in text and "moved 1 leadership(s)" in text
    assert "after 2.2 s" in text or "after 2.3 s" in text
    assert "every broker was serving" in Preparation(found, [], [], 0.1).summary()


def test_periodic_elections_are_read_from_the_controllers_log():
    log = "\n".join([
        "[2026-11-29 03:14:50,160] INFO [QuorumController id=0] Activated periodic tasks: "
        "electPreferred, electUnclean (org.apache.kafka.controller.PeriodicTaskControlManager)",
        "[2026-11-29 03:19:50,161] INFO [QuorumController id=0] Periodic task electPreferred "
        "generated 4 records in 1237 microseconds. (org.apache.kafka.controller."
        "PeriodicTaskControlManager)",
        "[2026-11-29 03:24:50,165] INFO [QuorumController id=0] Periodic task electPreferred "
        "generated 0 records in 1902 microseconds. (org.apache.kafka.controller."
        "PeriodicTaskControlManager)"])
    local = type("Local", (), {"local": True, "controller": object(),
                               "log_tail": lambda self, node, lines: log})()
    first = datetime(2026, 11, 29, 3, 19, 50, 161000).timestamp()  # the log's local time
    table = periodic_elections(local, 0.0)
    assert table.records.tolist() == [4, 0]
    assert table.wall.iloc[0] == pytest.approx(first)
    assert periodic_elections(local, first + 1).records.tolist() == [0]
    assert periodic_elections(local, 0.0, first).records.tolist() == [4]
    external = type("External", (), {"local": False})()
    assert periodic_elections(external, 0.0).empty


def test_survey_refuses_an_unknown_topic_and_reads_every_topic_at_once(cluster3):
    with pytest.raises(ValueError, match="unknown topic"):
        survey(cluster3, [unique_name("missing")], settle=1)
    topic = unique_name("survey")
    cluster3.create_topic(topic, 2)
    everything = survey(cluster3)
    assert list(everything.columns) == SURVEY_COLUMNS
    assert everything[everything.topic == topic].partition.tolist() == [0, 1]


def test_restore_starts_a_dead_broker_and_gives_its_leaderships_back(cluster3):
    topic = unique_name("prepare")
    cluster3.create_topic(topic, 3, replica_assignment=[[1, 2, 3], [2, 3, 1], [3, 1, 2]])
    faults.kill(cluster3, 1, [topic], timeout=90)  # returns once broker 1 is fenced
    found = survey(cluster3, [topic])
    assert found.leader.iloc[0] in (2, 3) and found.off_preferred.tolist() == [True, False,
                                                                              False]
    prepared = restore(cluster3, [topic], timeout=120)
    assert prepared.not_serving == [1] and prepared.elected == [(topic, 0)]
    after = survey(cluster3, [topic])
    assert after.leader.tolist() == [1, 2, 3] and not after.under_replicated.any()
    assert "started or resumed broker(s) [1]" in prepared.summary()
    again = restore(cluster3, [topic])
    assert again.not_serving == [] and again.elected == []
    assert cluster3.brokers == [1, 2, 3]
