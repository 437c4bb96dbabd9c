"""What a broken delivery promise shows: the messages involved and the client's own log.

When a checked finding such as "acks=all lost no acknowledged message" does not hold, the
reader needs to tell a client bug from a lab bug: which messages, where every copy of each
sits, when each was sent and acknowledged relative to the fault (``audit.evidence``), and
what the producer's librdkafka logged around those moments, if its debug log was captured
(``run_producer(client_log_file=...)``, ``labkit.workloads.client_logs``).

``for_producer`` gathers both for one producer run, ``for_runs`` for every run of an
experiment that has a problem; ``log_lines`` the log part alone. They return what
``findings.check(..., evidence=...)`` displays.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

import pandas as pd

from labkit.analysis import audit, logs
from labkit.analysis.audit import AuditResult

LOG_BEFORE_S = 3.0  # log lines kept before each send and acknowledgement: an epoch bump or
# a retry that explains a duplicate may come seconds before it
LOG_AFTER_S = 1.0  # and after it
LOG_LIMIT = 60  # at most this many lines per producer: the nearest to a moment
EOS_LOG_PATTERN = (r"bump|drain|sequence number|skipped seq|timed out|retr|persisted"
                   r"|state change|fatal")
"""The client log lines shown whatever their partition: idempotence state changes, epoch
bumps and drains, sequence errors, timeouts, retries."""


def log_lines(run, times, zero_wall: float | None = None, before_s: float = LOG_BEFORE_S,
              after_s: float = LOG_AFTER_S, limit: int = LOG_LIMIT,
              contains: str | None = None) -> pd.DataFrame | None:
    """The producer's captured debug log lines around some moments.

    Args:
        run: a ``ProducerRun`` (its ``client_log_file`` and ``started_wall``).
        times: moments in seconds relative to ``zero_wall`` (e.g. ``sent_s`` and ``acked_s``
            of ``audit.evidence`` rows computed with the same zero).
        zero_wall: epoch seconds that are 0 (default the run's ``started_wall``).
        before_s: seconds kept before each moment.
        after_s: seconds kept after each moment.
        limit: at most this many lines, the nearest to a moment.
        contains: keep only lines matching this regular expression (case-insensitive).

    Returns:
        ``logs.lines_around`` rows (time order), or None when no log was captured.
    """
    path = getattr(run, "client_log_file", None)
    if not path or not os.path.exists(path):
        return None
    zero = run.started_wall if zero_wall is None else zero_wall
    log = logs.read_log(path, zero)
    return logs.lines_around(log, list(times), before_s, after_s, limit=limit,
                              contains=contains)


def excerpt(lines: pd.DataFrame, title: str) -> str:
    """Log lines as text, one a line: time (s, on the lines' clock), facility, text."""
    body = "\n".join(f"{t:+9.3f} s  {facility:<8} {text}"
                     for t, facility, text in zip(lines.t, lines.facility, lines.text,
                                                  strict=True))
    return f"{title} ({len(lines)} lines)\n{body}"


def for_producer(result: AuditResult, run, zero_wall: float | None = None,
                 problems: Iterable[str] | None = None, limit: int = LOG_LIMIT) -> list:
    """The problem messages of one producer run, and its log lines around them.

    Args:
        result: the ``audit()`` of the run's messages.
        run: the ``ProducerRun``.
        zero_wall: epoch seconds shown as 0, e.g. the fault (default the run's start).
        problems: keep only messages with one of these problems ("lost", "duplicated",
            "reordered"; a "duplicated+reordered" message has both); None keeps all.
        limit: at most this many log lines.

    Returns:
        ``[table]`` or ``[table, log excerpt]``: the ``audit.evidence`` table (times relative
        to ``zero_wall``), then, if the run captured its debug log and a message broke a
        promise, the log lines around their sends and acknowledgements that name their
        partitions or the idempotent producer's state (``EOS_LOG_PATTERN``), as text
        (``excerpt``).
    """
    table = audit.evidence(result, run.records, run.started_wall, zero_wall)
    if problems is not None:
        wanted = set(problems)
        table = table[table.problem.map(lambda p: bool(set(p.split("+")) & wanted))]
        table = table.reset_index(drop=True)
    shown: list = [table]
    if not table.empty:
        # Lines about these partitions, and the idempotent producer's state changes,
        # retries and timeouts.
        parts = "|".join(rf"\[{int(p)}\]" for p in sorted(set(table.partition)))
        lines = log_lines(run, pd.concat([table.sent_s, table.acked_s]), zero_wall,
                          limit=limit, contains=f"{parts}|{EOS_LOG_PATTERN}")
        if lines is not None:
            label = getattr(run, "label", "the producer")
            shown.append(excerpt(lines, f"librdkafka debug log of {label} nearest to these "
                                        f"messages' sends and acknowledgements"))
    return shown


def for_runs(runs, audits: dict[str, AuditResult], zero_wall: float,
             problems: Iterable[str] | None = None) -> list:
    """The evidence of every run whose audit found a problem, each under a title.

    Args:
        runs: ``ProducerRun``s (label, records, started_wall, client_log_file).
        audits: ``audit()`` results by run label.
        zero_wall: epoch seconds shown as 0, e.g. the fault.
        problems: keep only these problems (see ``for_producer``); None keeps all.

    Returns:
        Per run with a problem: a title, then what ``for_producer`` shows. Empty if no run
        has one.
    """
    shown: list = []
    for run in runs:
        table, *log = for_producer(audits[run.label], run, zero_wall, problems)
        if table.empty:
            continue
        shown += [f"{run.label}: {table.msg_id.nunique()} problem messages, {len(table)} rows "
                  f"(times in seconds since the fault)", table, *log]
    return shown
