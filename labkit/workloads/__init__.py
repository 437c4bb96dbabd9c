"""The workload part: what runs against the cluster and records what happened.

``producer`` (the instrumented producer, one row per message, and the one delivery recorder),
``transactions`` (the transactional producer), ``readers`` (a fresh read of whole topics, a live
tail), ``consumer`` (consumer groups of background members), ``share`` (KIP-932 share groups),
``members`` (what both kinds of group share: the member thread, starting and stopping members,
the one event schema), ``client_logs`` (librdkafka's debug log captured to a file). Workloads
return records (pandas DataFrames with documented columns); they do no math and draw nothing.
"""
