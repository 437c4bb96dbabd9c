"""The analysis part: pure pandas and numpy on recorded DataFrames.

Nothing here imports ``confluent_kafka`` or the cluster code (a test holds this), so every
function works on records loaded from disk: ``metrics`` (rates, latency, partitions),
``audit`` (lost, duplicated and reordered messages), ``availability`` and ``recovery`` (phases,
gaps and outages around a fault), ``broken_promises`` (the evidence a broken promise shows).
"""
