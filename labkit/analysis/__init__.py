"""The analysis part: pure pandas and numpy on recorded DataFrames.

Nothing here imports ``confluent_kafka`` or the cluster code (a test holds this), so every
function works on records loaded from disk: ``metrics`` (throughput, latency, partitions),
``accounting`` (the one accounting of lost and duplicated messages, which every count of them
uses), ``audit`` (a producer run against its topic: lost, duplicated and reordered messages),
``consumer_faults`` (what a consumer redid or lost through a fault: commit modes, a side
effect's crash), ``share_groups`` (who in a share group processed what, and what became of a
fault's records), ``availability`` and ``recovery`` (phases,
outages and recovery around a fault), ``gaps`` (every "longest stretch without X"), ``rates``
(every per-second rate), ``timeline`` (what the partition samples show changing),
``groups`` (what a group's membership steps moved, and for how long partitions had no owner),
``broken_promises`` (the evidence a broken promise shows), ``bounds`` (what bounded a flat-out
run, and whether its comparison of settings means anything).
"""
