"""What bounded a flat-out producer run: the client thread, the queue, or the machine.

A producer sent "as fast as it can" is always held back by something. On this lab's
machines the client (labkit's loop in one Python thread, ``produce()`` and the delivery
callbacks it serves; librdkafka's own threads beside it), the brokers' JVMs and whatever
else runs all share a few cores. A flat-out comparison of settings means something only if
the setting, not labkit's own per-message cost or a neighbour's load, set the pace. This
module reads the recorded numbers of each run (see ``RUN_COLUMNS``; the experiment
``labkit.experiments.ceiling`` records them) and says which side was saturated.

**The rules**, applied to one run, first match wins:

1. ``"queue"``: the producer's local queue was full (``msg_cnt`` or ``msg_size`` at
   ``QUEUE_FULL`` or more of ``queue.buffering.max.messages`` / ``.kbytes``, in
   librdkafka's statistics) in at least ``QUEUE_BOUND_SHARE`` of the statistics samples
   taken during the run. ``produce()`` was then refused (``BufferError``) or about to be: the
   sending side downstream of the queue (librdkafka's sender threads, the network, the
   brokers' answers) took messages more slowly than the client offered them. First, because a
   full queue is a direct observation that the client waited, whatever its CPU did.
2. ``"client thread"``: the sending thread ran on a core for at least
   ``THREAD_SATURATED`` of the run's wall time. A thread cannot use more than one core, and
   one that ran 90 % of the time was rarely waiting for anything: its own per-message work
   set the pace. (The other 10 % allows for the final ``flush()``, spent waiting, and tick
   granularity.)
3. ``"machine"``: the sending thread wanted a core (it ran, or it was runnable and waited in
   the kernel's run queue) for at least ``THREAD_SATURATED`` of the time but did not get
   one often enough to be rule 2; or the machine's cores were at least
   ``MACHINE_SATURATED`` busy over the run, counting every process (the client, the
   brokers, the controller and anything else running; where the machine's CPU is not
   measurable, the client and the brokers alone). Either way the thread had work and
   shared the cores: no side alone set the pace, the cores did. The first test sees
   contention the average hides: a machine 85 % busy in bursts still keeps a thread waiting.
4. ``"none"``: nothing was saturated: the sending thread was blocked (neither running nor
   waiting for a core) more than a tenth of the time while the cores had room, so waiting
   set the pace (round trips to the brokers, the final ``flush()`` of a short run, locks).

Per run (``per_run``) these give CPU in cores (CPU seconds over wall seconds): the sending
thread, the client's other threads (librdkafka's), the brokers, and everything else on the
machine (other processes, and the kernel's interrupt work, a few per cent), and the share of
the time the sending thread waited for a core. Per setting (``table``) the labkit run sits
beside the **bare loop** (``labkit.workloads.producer.bare_loop``: the same client and
settings with no bookkeeping), run in rounds around it; their ratio says how much of the
ceiling labkit reached, and the rounds' spread says how much the ceiling itself moved while
the setting was measured. ``weigh`` says whether the settings' flat-out differences are
theirs.

Pure pandas: nothing here talks to Kafka.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from labkit.analysis import client_stats

THREAD_SATURATED = 0.9
"""Share of the wall time the sending thread ran (rule 2), or ran or waited for a core
(rule 3), at which it counts as saturated."""
MACHINE_SATURATED = 0.9
"""Share of all the machine's cores, busy, at which the machine counts as saturated."""
QUEUE_FULL = 0.9
"""Fill of the local queue (of its message or byte limit) at which a sample counts as full."""
QUEUE_BOUND_SHARE = 0.5
"""Share of the statistics samples with a full queue at which the queue counts as the bound."""
NEIGHBOURS_SHARE = 0.1
"""Share of the machine's cores other processes may use before a machine-bound rate is theirs
too (an idle machine's own housekeeping stays well below it)."""

BOUNDS = ("queue", "client thread", "machine", "none")
"""The bounds ``per_run`` names, in the order of its rules."""

BOUND_WORDS = {
    "queue": "the producer's local queue (full: the senders and brokers behind it were slower)",
    "client thread": "the client's sending thread (labkit's loop, produce() and its callbacks)",
    "machine": "the machine's cores (shared by the client, the brokers and everything else)",
    "none": "nothing saturated (round trips and the final flush set the pace)",
}
"""What each bound means, in words, for tables and sentences."""

SATURATED = {"queue": "the local queue", "client thread": "labkit's sending thread",
             "machine": "the machine's cores", "none": "nothing"}
"""What was saturated under each bound, in a few words ("saturated: the local queue")."""

RUN_COLUMNS = {
    "label": "the setting measured (one per producer config)",
    "kind": '"labkit" (run_producer) or "bare" (bare_loop, one row per round)',
    "messages": "messages delivered",
    "wall_s": "seconds from the first produce() until flush() returned",
    "thread_cpu_s": "CPU seconds of the sending thread over wall_s",
    "thread_wait_s": "seconds the sending thread was runnable but waited for a core, over "
                     "wall_s (the kernel's schedstat; NaN: not measurable)",
    "process_cpu_s": "CPU seconds of the whole client process (every thread) over wall_s",
    "broker_cpu_s": "CPU seconds of the brokers and the controller (NaN: not measurable)",
    "machine_cpu_s": "busy CPU seconds of the whole machine over wall_s, every process (NaN: "
                     "not measurable)",
    "cores": "the machine's cores",
    "queue_samples": "librdkafka statistics samples taken during the run",
    "queue_full_samples": "of those, samples with the local queue at QUEUE_FULL or more",
    "buffer_errors": "BufferError raised by produce() (NaN: not counted)",
}
"""The recorded numbers of one run, one row each: what ``per_run`` and ``table`` read."""


def queue_fill(stats: list[dict], start: float | None = None,
               end: float | None = None) -> pd.DataFrame:
    """How full the producer's local queue was in each librdkafka statistics sample.

    Args:
        stats: parsed statistics JSON, one dict per sample (``ProducerRun.stats``).
        start: keep samples taken at or after this time, in seconds on librdkafka's clock
            (its ``ts`` field, microseconds of the monotonic clock, over 1e6); None: all.
        end: keep samples taken at or before this time (same clock); None: all.

    Returns:
        One row per sample: t (s, librdkafka's clock), msg_cnt, msg_max, msg_size,
        msg_size_max, fill (the larger of msg_cnt / msg_max and msg_size / msg_size_max,
        0..1) and full (fill >= ``QUEUE_FULL``).
    """
    table = client_stats.client_queue(stats)[
        ["t", "msg_cnt", "msg_max", "msg_size", "msg_size_max"]].fillna(
        {"msg_cnt": 0, "msg_max": 0, "msg_size": 0, "msg_size_max": 0})
    if start is not None:
        table = table[table.t >= start]
    if end is not None:
        table = table[table.t <= end]
    counts = table.msg_cnt / table.msg_max.where(table.msg_max > 0)
    sizes = table.msg_size / table.msg_size_max.where(table.msg_size_max > 0)
    table = table.assign(fill=np.fmax(counts, sizes).fillna(0.0).astype(float))
    return table.assign(full=table.fill >= QUEUE_FULL).reset_index(drop=True)


def bound(thread_cores: float, thread_waiting: float, machine_busy: float,
          queue_full_share: float) -> str:
    """The bound of one run by the module's rules (first match wins).

    Args:
        thread_cores: share of the time the sending thread ran on a core (0..1).
        thread_waiting: share of the time it was runnable but waited for a core (NaN: not
            measured).
        machine_busy: share of the machine's cores busy (0..1).
        queue_full_share: share of statistics samples with a full queue (NaN: no samples).

    Returns:
        One of ``BOUNDS``.
    """
    if queue_full_share >= QUEUE_BOUND_SHARE:
        return "queue"
    if thread_cores >= THREAD_SATURATED:
        return "client thread"
    wanted = thread_cores + (0.0 if np.isnan(thread_waiting) else thread_waiting)
    if wanted >= THREAD_SATURATED or machine_busy >= MACHINE_SATURATED:
        return "machine"
    return "none"


def per_run(runs: pd.DataFrame) -> pd.DataFrame:
    """Each run's rates, CPU per side (in cores) and bound.

    Args:
        runs: one row per run, columns ``RUN_COLUMNS``.

    Returns:
        ``runs`` plus msgs_per_s, thread_cores (the sending thread), thread_waiting (the
        share of the time it waited for a core), librdkafka_cores (the client process's
        other threads), process_cores, broker_cores, others_cores (the rest of the
        machine's busy cores: other processes; NaN when the machine is not measurable),
        machine_busy (share of all cores busy), queue_full_share and bound.

    Raises:
        ValueError: a column of ``RUN_COLUMNS`` is missing.
    """
    missing = [c for c in RUN_COLUMNS if c not in runs.columns]
    if missing:
        raise ValueError(f"run rows lack the columns {missing}; see bounds.RUN_COLUMNS")
    out = runs.copy()
    wall = out.wall_s.where(out.wall_s > 0)
    out["msgs_per_s"] = out.messages / wall
    out["thread_cores"] = out.thread_cpu_s / wall
    out["thread_waiting"] = out.thread_wait_s / wall
    out["process_cores"] = out.process_cpu_s / wall
    out["librdkafka_cores"] = (out.process_cpu_s - out.thread_cpu_s).clip(lower=0) / wall
    out["broker_cores"] = out.broker_cpu_s / wall
    machine = out.machine_cpu_s / wall
    out["others_cores"] = (machine - out.process_cores - out.broker_cores.fillna(0)).clip(lower=0)
    # Not measurable: the client and the brokers are all that is known to be busy.
    busy = machine.fillna(out.process_cores + out.broker_cores.fillna(0))
    out["machine_busy"] = busy / out.cores
    samples = out.queue_samples.where(out.queue_samples > 0)
    out["queue_full_share"] = out.queue_full_samples / samples
    out["bound"] = [bound(*values) for values in zip(
        out.thread_cores, out.thread_waiting, out.machine_busy, out.queue_full_share,
        strict=True)]
    return out


SUMMED = ("messages", "wall_s", "thread_cpu_s", "thread_wait_s", "process_cpu_s", "broker_cpu_s",
          "machine_cpu_s", "queue_samples", "queue_full_samples", "buffer_errors")


def table(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per setting: labkit's flat-out run beside the bare loop's ceiling.

    The bare rounds of a setting are summed (messages, seconds, samples) before the rules
    are applied, so the bare loop gets one bound over all its rounds; its rate is the
    median of the rounds' rates and its spread how far the slowest round fell below the
    fastest, (high - low) / high, measured the way ``weigh`` measures the settings'
    differences.

    Args:
        runs: one row per run, columns ``RUN_COLUMNS`` (a "labkit" row and any number of
            "bare" rows per label).

    Returns:
        Indexed by label, in the order the labels first appear. Columns: msgs_per_s,
        bare_msgs_per_s, ratio (labkit over bare), bare_low, bare_high, bare_spread,
        bare_rounds, thread_cores, thread_waiting, librdkafka_cores, process_cores,
        broker_cores, others_cores, machine_busy, cores, queue_full_share, buffer_errors,
        bound, and the bare loop's bare_thread_cores, bare_thread_waiting,
        bare_broker_cores, bare_machine_busy, bare_queue_full_share and bare_bound. A
        setting without bare rounds gets NaN there (and "" for bare_bound).
    """
    measured = per_run(runs)
    labels = list(dict.fromkeys(runs.label))
    own = measured[measured.kind == "labkit"].drop_duplicates("label", keep="last")
    own = own.set_index("label").reindex(labels)
    bare = runs[runs.kind == "bare"]
    rounds = per_run(bare) if len(bare) else measured.iloc[:0]
    rates = rounds.groupby("label", sort=False).msgs_per_s
    summed = bare.groupby("label", sort=False)[list(SUMMED)].sum(min_count=1)
    if len(summed):
        summed = summed.assign(cores=bare.groupby("label", sort=False).cores.first(), kind="bare")
        overall = per_run(summed.reset_index()).set_index("label")
    else:
        overall = pd.DataFrame(columns=["thread_cores", "thread_waiting", "broker_cores",
                                        "machine_busy", "queue_full_share", "bound"],
                               dtype=float)
    result = pd.DataFrame(index=pd.Index(labels, name="label"))
    result["msgs_per_s"] = own.msgs_per_s
    result["bare_msgs_per_s"] = rates.median().reindex(labels)
    result["ratio"] = result.msgs_per_s / result.bare_msgs_per_s
    result["bare_low"] = rates.min().reindex(labels)
    result["bare_high"] = rates.max().reindex(labels)
    result["bare_spread"] = (result.bare_high - result.bare_low) / result.bare_high
    result["bare_rounds"] = rates.size().reindex(labels).fillna(0).astype(int)
    for column in ("thread_cores", "thread_waiting", "librdkafka_cores", "process_cores",
                   "broker_cores", "others_cores", "machine_busy", "cores",
                   "queue_full_share", "buffer_errors", "bound"):
        result[column] = own[column]
    for column in ("thread_cores", "thread_waiting", "broker_cores", "machine_busy",
                   "queue_full_share", "bound"):
        result[f"bare_{column}"] = overall[column].reindex(labels)
    result["bare_bound"] = result.bare_bound.astype(object).fillna("")
    return result


def grouped(settings: pd.DataFrame, groups) -> pd.DataFrame:
    """``table``'s settings summarised per group (say, per codec over a grid of settings).

    Args:
        settings: ``table``'s result.
        groups: the group of each setting, aligned with ``settings``' rows.

    Returns:
        One row per group, in order of first appearance: settings (how many),
        msgs_per_s and bare_msgs_per_s (medians over the group's settings), ratio (the
        first median over the second), bound (the group's most common bound, the earlier
        in ``BOUNDS`` on a tie) and bound_count (how many of its settings had it).
    """
    keys = pd.Series(list(groups), index=settings.index)
    rows = {}
    for key, members in settings.groupby(keys, sort=False):
        counts = members.bound.value_counts()
        top = min(counts[counts == counts.max()].index, key=BOUNDS.index)
        rate, ceiling = members.msgs_per_s.median(), members.bare_msgs_per_s.median()
        rows[key] = {"settings": len(members), "msgs_per_s": rate, "bare_msgs_per_s": ceiling,
                     "ratio": rate / ceiling, "bound": top, "bound_count": int(counts[top])}
    return pd.DataFrame.from_dict(rows, orient="index")


@dataclass
class Verdict:
    """Whether a flat-out comparison of settings measured the settings.

    Attributes:
        meaningful: the settings' flat-out rates differ by more than the ceiling moved on
            its own, no run bound by the machine's cores shared them with other processes
            using ``NEIGHBOURS_SHARE`` of them or more, and labkit's client thread did not
            set every rate.
        reason: the first of these that holds: "client thread" (every labkit run was bound
            by its own sending thread, whose per-message cost is the same for every
            setting), "neighbours" (a run was bound by the machine while other processes
            used at least ``NEIGHBOURS_SHARE`` of its cores: its rate measured their load
            too), "no spread" (the bare loop ran once per setting, so how far the ceiling
            moves by itself is unknown), "spread" (the rates differ by no more than the bare
            loop's largest round-to-round spread), else "settings".
        bounds: the labkit runs' bounds, each once, in order of first appearance.
        differ: (fastest - slowest) / fastest of the labkit runs' rates.
        bare_differ: the same of the bare loop's ceilings.
        spread: the largest ``bare_spread`` over the settings with two rounds or more (the
            ceiling's own drift while one setting was measured; NaN with fewer rounds).
        others: the most cores other processes used during a labkit run (NaN: not measured).
        fastest: the label of the fastest labkit run.
        slowest: the label of the slowest labkit run.
    """

    meaningful: bool
    reason: str
    bounds: list[str]
    differ: float
    bare_differ: float
    spread: float
    others: float
    fastest: str
    slowest: str

    @property
    def words(self) -> str:
        """The reason in words, for a finding's sentence."""
        return {
            "client thread": "every setting was bound by labkit's own sending thread, whose "
                             "per-message cost is the same for every setting",
            "neighbours": "the machine's cores were the bound while other processes shared "
                          "them, so each rate also measured their load",
            "no spread": "the bare loop ran once per setting, so how far the ceiling moves by "
                         "itself is unknown",
            "spread": "the settings differ by no more than the bare loop's own rounds of one "
                      "setting",
            "settings": "the settings differ by more than the bare loop's own rounds of one "
                        "setting, and no run the machine's cores bounded shared them with "
                        f"other processes using {NEIGHBOURS_SHARE:.0%} of them or more",
        }[self.reason]


def weigh(settings: pd.DataFrame) -> Verdict:
    """Decide whether the settings' flat-out differences are the settings'.

    The reasons, first match wins (see ``Verdict.reason``): every labkit run bound by the
    client thread (labkit's per-message cost does not depend on the setting); a run bound
    by the machine while other processes used ``NEIGHBOURS_SHARE`` or more of its cores; one
    bare round per setting (the ceiling's own drift unknown); labkit rates that differ,
    fastest to slowest, by no more than the largest round-to-round spread of the bare loop
    (the ceiling moved that much by itself while one setting was measured). Meaningful
    otherwise. Differences and spreads are both measured from the larger rate, so they
    compare.

    Args:
        settings: ``table``'s result (two settings or more).

    Returns:
        The ``Verdict``.
    """
    rates = settings.msgs_per_s.dropna()
    ceilings = settings.bare_msgs_per_s.dropna()
    differ = float((rates.max() - rates.min()) / rates.max()) if len(rates) else float("nan")
    bare_differ = (float((ceilings.max() - ceilings.min()) / ceilings.max()) if len(ceilings)
                   else float("nan"))
    several = settings[settings.bare_rounds >= 2].bare_spread
    spread = float(several.max()) if len(several) else float("nan")
    others = float(settings.others_cores.max())
    crowded = (settings.bound == "machine") & (
        settings.others_cores >= NEIGHBOURS_SHARE * settings.cores)
    bounds = list(dict.fromkeys(settings.bound.dropna()))
    if bounds == ["client thread"]:
        reason = "client thread"
    elif crowded.any():
        reason = "neighbours"
    elif np.isnan(spread):
        reason = "no spread"
    elif not differ > spread:
        reason = "spread"
    else:
        reason = "settings"
    return Verdict(meaningful=reason == "settings", reason=reason, bounds=bounds,
                   differ=differ, bare_differ=bare_differ, spread=spread, others=others,
                   fastest=str(rates.idxmax()) if len(rates) else "",
                   slowest=str(rates.idxmin()) if len(rates) else "")
