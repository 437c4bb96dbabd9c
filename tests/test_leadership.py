"""Preferred leader elections: the pure selection on a hand-made table, and a real election
on the session's 3-broker cluster after a crash moved a leader away."""

import pandas as pd

from labkit.cluster import unique_name, wait_until
from labkit.cluster.faults import heal, replicas_led_by, wait_healthy
from labkit.cluster.leadership import elect_preferred, off_preferred


def test_off_preferred_lists_the_partitions_led_by_another_replica():
    table = pd.DataFrame({"topic": ["t", "t", "u"], "partition": [0, 1, 0],
                          "leader": [1, 3, -1], "replicas": [[1, 2, 3], [2, 3, 1], [3, 1, 2]],
                          "isr": [[1, 2, 3], [1, 2, 3], [1, 2]]})
    off = off_preferred(table)
    assert off[["topic", "partition", "leader", "preferred"]].values.tolist() == [
        ["t", 1, 3, 2], ["u", 0, -1, 3]]


def test_elect_preferred_gives_a_crashed_broker_its_leaderships_back(cluster3):
    topic = unique_name("preferred")
    cluster3.create_topic(topic, 3, replica_assignment=replicas_led_by(2, cluster3.brokers, 3))
    assert elect_preferred(cluster3, [topic]).empty  # a fresh topic: nothing to move
    cluster3.kill(2)
    heal(cluster3)  # restarts broker 2: it comes back as a follower
    wait_healthy(cluster3, [topic], timeout=120)
    assert cluster3.leader(topic, 0) != 2
    moved = elect_preferred(cluster3, [topic])
    assert (moved.partition == 0).any() and (moved.leader == 2).all()
    # The election is done when the controller answers; the brokers' metadata follows.
    # (wait_until raises, naming the wait, if the leaders are not 2, 3, 1 within 30 s)
    wait_until(lambda: [cluster3.leader(topic, p) for p in range(3)] == [2, 3, 1], 30,
               "the brokers' metadata to show leaders 2, 3, 1 after the election")
    assert off_preferred(cluster3.partitions([topic])).empty
    cluster3.delete_topic(topic)
