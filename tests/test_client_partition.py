"""labkit.experiments.client_partition on a real cluster behind the lab network."""

import pytest

from labkit.analysis import client_cuts
from labkit.cluster import FaultInjectionUnavailable
from labkit.experiments import client_partition


def test_bad_arguments_are_refused_before_anything_starts(cluster3net):
    with pytest.raises(ValueError, match="direction='sideways'; use one of both"):
        client_partition.member_cut_off(cluster3net, direction="sideways")
    with pytest.raises(ValueError, match="hold_s=-1 must be seconds"):
        client_partition.producer_cut_off(cluster3net, hold_s=-1)
    with pytest.raises(ValueError, match="brokers are"):
        client_partition.producer_cut_off(cluster3net, broker=7)


def test_a_cluster_without_the_lab_network_is_refused(cluster3):
    with pytest.raises(FaultInjectionUnavailable, match="lab network"):
        client_partition.producer_cut_off(cluster3)


def test_a_producer_cut_off_from_one_leader_times_out_there_only(cluster3net):
    cut = client_partition.producer_cut_off(cluster3net, rate=100, broker=1,
                                            message_timeout_ms=2000, baseline_s=0.5,
                                            hold_s=3.5, tail_s=2.0)
    assert cut.cut_partitions == [0] and cut.leaders[0] == 1
    assert not cluster3net.network.links().size  # healed
    failed = client_cuts.failures(cut.records, 2000)
    assert len(failed) and set(failed.error) == {"_MSG_TIMED_OUT"}
    assert client_cuts.early_timeouts(cut.records, 2000).empty
    done = float(cut.events.done_s.iloc[0])
    # Every message to partition 0 sent while the cut lasted longer than its timeout failed.
    # (On a loaded machine a message to a reachable leader can time out too: not asserted.)
    rec = cut.records
    stuck = rec[(rec.partition == 0) & (rec.t_send > done) & (rec.t_send < cut.healed_s - 2.2)]
    assert len(stuck) and (stuck.error == "_MSG_TIMED_OUT").all()
    assert client_cuts.acked_sent_during(cut.records, [0], done, cut.healed_s).empty
    assert client_cuts.first_ack_after(cut.records, [0], cut.healed_s) > cut.healed_s
    assert client_cuts.first_ack_after(cut.records, [1, 2], done) < cut.healed_s


def test_a_member_cut_off_from_its_coordinator_loses_its_partitions(cluster3net):
    # The hold outlasts the 6 s session by 6 s: time for the others' rebalance to finish
    # before the heal even on a loaded machine (it once took 9.5 s after the cut).
    cut = client_partition.member_cut_off(cluster3net, rate=100, hold_s=12.0, baseline_s=1.0,
                                          tail_s=0.5)
    assert not cluster3net.network.links().size  # healed
    assert client_cuts.owned_once(cut.final, cut.partitions) and len(cut.final) == 3
    at = client_cuts.member_moments(cut.group_events, cut.member, cut.cut_s)
    assert cut.cut_s < at["lost"] < cut.healed_s
    assert at["others_assigned"] < cut.healed_s < at["back"]
    produced = cut.run.records
    seen = set(cut.messages.msg_id[cut.messages.run_id == cut.run.run_id])
    assert set(produced.msg_id[produced.error == ""]) <= seen
