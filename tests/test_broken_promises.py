"""What a broken promise shows (labkit.analysis.broken_promises, durability.crash_evidence,
ReplicationRun.evidence) and notebook 22's cuts (availability.below_min_isr): hand-made runs,
then one crash run against the session's real cluster with the producers' debug logs."""

import numpy as np
import pandas as pd
import pytest

from labkit.analysis import broken_promises
from labkit.analysis.audit import EVIDENCE_COLUMNS, audit
from labkit.analysis.availability import below_min_isr
from labkit.cluster.faults import FAULT_EVENT_COLUMNS
from labkit.experiments import durability
from labkit.experiments.replication import ReplicationRun
from labkit.workloads.client_logs import capture

# -- hand-made runs: no broker -------------------------------------------------------------


def producer(records, started_wall=1000.0, client_log_file=None, run_id="r"):
    """A stand-in for a ProducerRun."""
    return type("Run", (), {"records": records, "started_wall": started_wall,
                            "client_log_file": client_log_file, "run_id": run_id})()


def records(*rows):
    """Producer records from (msg_id, partition, offset, error, t_send, t_delivered)."""
    frame = pd.DataFrame(rows, columns=["msg_id", "partition", "offset", "error", "t_send",
                                        "t_delivered"])
    frame.insert(1, "topic", pd.Categorical(["t"] * len(frame)))
    return frame


def found(*rows):
    """Reader rows from (partition, offset, msg_id), topic "t", run "r"."""
    frame = pd.DataFrame(rows, columns=["partition", "offset", "msg_id"]).astype(np.int64)
    return frame.assign(topic="t", run_id="r")


# msg 0 in place, msg 1 acknowledged and lost, msg 2 written twice
SENT = records((0, 0, 0, "", 0.0, 0.1), (1, 0, 1, "", 1.0, 1.2), (2, 0, 2, "", 2.0, 2.1))
FOUND = found((0, 0, 0), (0, 1, 2), (0, 2, 2))


def write_log(path, lines):
    """A captured client log with (wall, facility, text) lines."""
    with capture(path) as logger:
        for wall, facility, text in lines:
            record = logger.makeRecord(logger.name, 10, __file__, 0,
                                       "%s [%s] %s", (facility, "rdkafka#producer-1", text),
                                       None)
            record.created = wall
            logger.handle(record)


def test_for_producer_lists_every_copy_and_the_log_lines_around_them(tmp_path):
    log = tmp_path / "producer.log"
    # Kept: from 3 s before to 1 s after each send and acknowledgement.
    write_log(log, [(995.0, "PRODUCE", "t [0]: far from everything"),
                    (1001.25, "PRODUCE", "t [0]: just after the lost one was acked"),
                    (1001.3, "PRODUCE", "t [7]: another partition"),
                    (1003.0, "MSGSET", "t [0]: around the duplicate")])
    result = audit(SENT, FOUND, "r")
    table, lines = broken_promises.for_producer(result, producer(SENT, client_log_file=str(log)),
                                                zero_wall=1001.0)
    assert list(table.columns) == list(EVIDENCE_COLUMNS)
    assert table.msg_id.tolist() == [1, 2, 2] and table.problem.tolist() == [
        "lost", "duplicated", "duplicated"]
    # times relative to the fault at wall 1001: msg 1 was sent at 1000 + 1.0
    assert table.sent_s.tolist() == pytest.approx([0.0, 1.0, 1.0])
    assert lines.splitlines()[1:] == [
        "   +0.250 s  PRODUCE  t [0]: just after the lost one was acked",
        "   +2.000 s  MSGSET   t [0]: around the duplicate"]
    assert lines.startswith("librdkafka debug log of the producer") and "(2 lines)" in lines
    only_lost = broken_promises.for_producer(result, producer(SENT, client_log_file=str(log)),
                                             1001.0, problems=["lost"])
    assert only_lost[0].msg_id.tolist() == [1]
    assert "far from" not in only_lost[1] and "around the duplicate" not in only_lost[1]
    # without a filter, every line near a moment (the other partition's too)
    near = broken_promises.log_lines(producer(SENT, client_log_file=str(log)), [0.0], 1001.0)
    assert near.text.str[:6].tolist() == ["t [0]:", "t [7]:"]


def test_without_a_captured_log_or_a_problem_only_the_table_is_shown(tmp_path):
    result = audit(SENT, FOUND, "r")
    assert len(broken_promises.for_producer(result, producer(SENT))) == 1
    missing = producer(SENT, client_log_file=str(tmp_path / "never-written.log"))
    assert len(broken_promises.for_producer(result, missing)) == 1
    clean = audit(SENT, found((0, 0, 0), (0, 1, 1), (0, 2, 2)), "r")
    log = tmp_path / "producer.log"
    write_log(log, [(1000.1, "PRODUCE", "a line")])
    shown = broken_promises.for_producer(clean, producer(SENT, client_log_file=str(log)))
    assert len(shown) == 1 and shown[0].empty
    assert broken_promises.log_lines(producer(SENT), [0.1]) is None


def test_crash_evidence_puts_each_run_on_its_own_kill():
    events = pd.DataFrame({"action": ["kill", "restart"], "broker": [2, 2],
                           "wall": pd.to_datetime([1001.0, 1003.0], unit="s", utc=True)})
    run = durability.LeaderCrash(
        number=0, victim=2, led={"t": [0]}, topics={"acks=1": "t"}, events=events,
        producers={"acks=1": producer(SENT)}, audits={"acks=1": audit(SENT, FOUND, "r")})
    table, faults = durability.crash_evidence([run], ["acks=1"], problems=["lost"])
    assert table.msg_id.tolist() == [1] and table.led_by_victim.tolist() == [True]
    assert table[["config", "run", "victim"]].iloc[0].tolist() == ["acks=1", 0, 2]
    assert table.acked_s.tolist() == pytest.approx([0.2])  # 1000 + 1.2 - 1001
    assert faults.action.tolist() == ["kill", "restart"] and faults.run.tolist() == [0, 0]
    nothing, _ = durability.crash_evidence([run], ["acks=1"], problems=["reordered"])
    assert nothing.empty and "led_by_victim" in nothing.columns


def min_isr_run():
    """A hand-made ``min_isr_outage`` run: brokers 2 and 3 killed at 1 s, the ISRs seen
    shrunk at 2 s, broker 2 restarted at 4 s, min ISR met at 5 s, broker 3 back at 6.5 s."""
    events = pd.DataFrame([
        {"step": 0, "action": "kill", "target": "2", "broker": 2, "at_s": 1.0, "t_s": 1.0,
         "done_s": 1.0, "wall": 1001.0},
        {"step": 1, "action": "kill", "target": "3", "broker": 3, "at_s": 1.0, "t_s": 1.0,
         "done_s": 1.0, "wall": 1001.0},
        {"step": 2, "action": "restart", "target": "2", "broker": 2, "at_s": 4.0,
         "t_s": 4.0, "done_s": 4.5, "wall": 1004.0},
        {"step": 3, "action": "restart", "target": "3", "broker": 3, "at_s": 5.5,
         "t_s": 5.5, "done_s": 6.5, "wall": 1005.5}], columns=list(FAULT_EVENT_COLUMNS))
    events["wall"] = pd.to_datetime(events.wall, unit="s", utc=True)
    alls = records((0, 0, 0, "", 0.5, 0.6), (1, 0, -1, "NOT_ENOUGH_REPLICAS", 2.5, 2.6),
                   (2, 0, -1, "_MSG_TIMED_OUT", 3.0, 3.5), (3, 0, 1, "", 5.2, 5.3))
    ones = records((0, 0, 0, "", 0.5, 0.6), (1, 0, 1, "", 2.5, 2.6), (2, 0, 2, "", 3.0, 3.1))
    producers = {"acks=all": producer(alls, run_id="a"), "acks=1": producer(ones, run_id="o")}
    seen = pd.DataFrame({"run_id": ["o", "o", "o"], "msg_id": [0, 1, 2],
                         "t_consumed": [1000.7, 1005.1, 1005.1]})
    audits = {label: audit(p.records, found().assign(run_id=p.run_id), p.run_id)
              for label, p in producers.items()}
    return ReplicationRun(
        topics={"acks=all": "t", "acks=1": "t"}, producers=producers, audits=audits,
        events=events,
        milestones=pd.DataFrame({"name": ["ISR shrank", "min ISR met", "whole again"],
                                 "t_s": [2.0, 5.0, 7.0], "wall": [1002.0, 1005.0, 1007.0]}),
        phase_starts=[(0.0, "healthy"), (1.0, "dead"), (2.0, "ISR below min"),
                      (4.0, "broker 2 restarting"), (5.0, "min ISR met"),
                      (7.0, "whole again")],
        partitions=pd.DataFrame(columns=["wall", "topic", "partition", "leader", "isr", "t"]),
        seen=seen, started_wall=1000.0, ended_s=8.0, min_insync=2)


def test_below_min_isr_cuts_the_run_at_its_milestones():
    run = min_isr_run()
    facts = below_min_isr(run, [2, 3])
    assert facts.below_s == pytest.approx(2.0)  # from the ISRs seen shrunk to the restart
    assert facts.counts.loc["acks=all", "sent"] == 2
    assert facts.counts.loc["acks=all", "acked"] == 0
    assert facts.refused == {"acks=all": 1, "acks=1": 0}
    assert facts.other_failures == {"acks=all": "1 with _MSG_TIMED_OUT", "acks=1": ""}
    assert facts.held["acks=1"].msg_id.tolist() == [1, 2]
    assert facts.held["acks=1"].t_seen.tolist() == pytest.approx([5.1, 5.1])
    assert facts.enough["acks=all"].msg_id.tolist() == [3]
    assert facts.first_restart.broker == 2 and facts.second_restart.done_s == 6.5
    assert run.acked_between("acks=1", 0.0, 1.0).msg_id.tolist() == [0]


def test_a_replication_run_shows_its_lost_messages_and_faults():
    run = min_isr_run()  # nothing was found: every acknowledged message is lost
    table, faults = run.evidence("acks=1", ["lost"])
    assert table.msg_id.tolist() == [0, 1, 2] and (table.problem == "lost").all()
    assert table.acked_s.tolist() == pytest.approx([0.6, 2.6, 3.1])  # on the run's clock
    assert faults.action.tolist() == ["kill", "kill", "restart", "restart"]
    assert np.isnan(table.sent_s).sum() == 0


# -- the real cluster ------------------------------------------------------------------------


def test_crash_runs_capture_each_producers_debug_log(cluster3, tmp_path):
    runs = durability.crash_runs(cluster3, {"acks=1": {"acks": "1"}}, runs=1, rate=300,
                                 duration=3.0, fault_at=1.0, down_s=1.0,
                                 client_log_dir=tmp_path)
    log = tmp_path / "run0-acks-1.log"
    assert runs[0].producers["acks=1"].client_log_file == str(log)
    assert log.stat().st_size > 0
    shown = durability.crash_evidence(runs, ["acks=1"])
    assert shown[1].action.tolist() == ["kill", "restart"]
    if not shown[0].empty:  # a message lost or duplicated: its log lines come along
        assert len(shown) == 3 and shown[2].startswith("Run 0, librdkafka debug log of acks=1")
    assert cluster3.brokers == [1, 2, 3]


def test_for_runs_titles_each_broken_run_and_leaves_out_clean_ones(tmp_path):
    sent = records((0, 1, 0, "", 1.0, 1.5), (1, 1, 1, "", 2.0, 12.0))
    log = found((1, 0, 0), (1, 1, 1), (1, 2, 1))  # msg 1 written twice
    clean = records((0, 0, 0, "", 1.0, 1.1))
    path = tmp_path / "client.log"
    write_log(path, [(1001.0, "PRODUCE", "t [1]: Produce MessageSet"),
                     (1005.0, "DRAIN", "bumped epoch to PID{Id:1,Epoch:1}"),
                     (1011.5, "ERRSEQ", "t [1]: skipped sequence numbers"),
                     (1011.9, "FETCH", "t [0]: unrelated line")])
    broken_run, clean_run = producer(sent, 1000.0, str(path)), producer(clean, 1000.0)
    broken_run.label, clean_run.label = "broken", "clean"
    audits = {"clean": audit(clean, found((0, 0, 0))), "broken": audit(sent, log)}
    shown = broken_promises.for_runs([clean_run, broken_run], audits, zero_wall=1002.0)
    assert len(shown) == 3 and shown[0].startswith("broken: 1 problem messages, 2 rows")
    assert shown[1].offset.tolist() == [1, 2] and shown[1].acked_s.tolist() == [10.0, 10.0]
    # Near msg 1's send (0.0 s) or ack (10.0 s), about its partition or the producer's state;
    # the epoch bump at 3.0 s is outside both windows, the FETCH line is about partition 0.
    excerpt = shown[2]
    assert "(2 lines)" in excerpt and "skipped sequence" in excerpt and "-1.000 s" in excerpt
    assert "unrelated" not in excerpt and "bumped epoch" not in excerpt
    assert broken_promises.for_runs([clean_run], audits, zero_wall=1002.0) == []
