"""The presentation part: charts and control panels.

``plots`` (static charts of recorded runs; they never talk to Kafka) and ``widgets``
(ipywidgets panels around the same functions the batch path calls).
"""
