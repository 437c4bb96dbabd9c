"""Reading a broker's server.log: when it became a follower and what it cut (pure)."""

from pathlib import Path

from labkit.analysis.broker_logs import TRUNCATION_COLUMNS, truncations

# Lines as Kafka 4.4 logged them in a leader_cut_off run (paths shortened).
LOG = (Path(__file__).parent / "data" / "broker_cut_off.log").read_text()


def test_each_truncation_is_paired_with_the_log_end_the_broker_had_when_it_became_a_follower():
    found = truncations(LOG, ["cut-off-c5828f41", "cut-off-ce931b75"])
    assert list(found.columns) == list(TRUNCATION_COLUMNS)
    assert found[["topic", "log_end", "truncated_to", "records", "new_leader",
                  "leader_epoch"]].values.tolist() == [
        ["cut-off-c5828f41", 1658, 201, 1457, 2, 1], ["cut-off-ce931b75", 219, 204, 15, 2, 1]]
    assert str(found.time.iloc[0]) == "2026-11-29 15:25:05.253000"


def test_other_topics_and_truncations_without_a_follower_line_are_left_out():
    assert truncations(LOG, ["__consumer_offsets"]).empty  # no Follower line before it
    assert truncations(LOG, ["elsewhere"]).empty
    assert truncations("", ["cut-off-c5828f41"]).empty
