"""The workload part: what runs against the cluster and records what happened.

``producer`` (the instrumented producer, one row per message), ``transactions`` (the
transactional producer), ``consumer`` (fresh readers, a tail, a consumer group of background
members), ``share`` (KIP-932 share groups), ``client_logs`` (librdkafka's debug log captured to
a file). Workloads return records (pandas DataFrames with documented columns); they do no math
and draw nothing.
"""
