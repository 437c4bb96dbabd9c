"""The workload part: what runs against the cluster and records what happened.

``producer`` (the instrumented producer, one row per message, the one delivery recorder and the
bare reference loop), ``marks`` (the 24-byte mark at the start of a value naming its message),
``transactions`` (the transactional producer), ``readers`` (a fresh read of whole topics, a live
tail), ``consumer`` (consumer groups of background members), ``share`` (KIP-932 share groups),
``members`` (what both kinds of group share: the member thread, starting and stopping members,
the one event schema), ``client_logs`` (librdkafka's debug log captured to a file). Workloads
return records (pandas DataFrames with documented columns); they do no math and draw nothing.
"""
