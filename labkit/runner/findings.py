"""Findings: sentences computed from a run, of two kinds, printed and recorded.

- A **checked finding**, ``check(id, holds, sentence)``, states what Kafka or the client
  promises, or what follows deterministically from the configuration. One that does not hold
  is a **broken promise**: the most valuable thing the lab can show. It is printed as
  BROKEN, its evidence is displayed, and the notebook runs on; the report puts it first.
- An **observation**, ``observe(id, sentence)``, states a measured quantity that varies from
  run to run (how many messages acks=1 lost, which latency was higher on a noisy machine).
  It is printed with its numbers and never checked.

Either way the sentence carries this run's numbers, whether the finding holds or not. Each
finding is appended to the file named by ``$LABKIT_FINDINGS_FILE`` (the report runner sets
it), one JSON object per line: ``id``, ``kind`` ("check" or "observation"), ``holds``
(true/false for a check, null for an observation) and ``sentence``.
"""

from __future__ import annotations

import json
import os
import re
import traceback
from collections.abc import Callable
from typing import Any

ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
KINDS = ("check", "observation")


def check(finding_id: str, holds: bool, sentence: str, *,
          evidence: Callable[[], Any] | Any = None) -> bool:
    """Record a checked finding and print it; show its evidence if it does not hold.

    Never raises for a finding that does not hold: the notebook runs to the end, and the
    report runner decides what a broken promise means for the exit status.

    Args:
        finding_id: stable id, lower case, e.g. ``"tour.kill.leaders-moved"``.
        holds: whether the run's data supports the promise.
        sentence: the finding with this run's measured numbers filled in.
        evidence: what a reader needs to tell a client bug from a lab bug, shown only when
            the finding does not hold: a zero-argument callable (called then) returning a
            DataFrame, figure, string or a list of them, or such an object itself.

    Returns:
        Whether the finding holds.

    Raises:
        ValueError: a malformed id.
    """
    holds = bool(holds)
    _record(finding_id, "check", holds, sentence)
    print(("HOLDS    " if holds else "BROKEN   ") + sentence)
    if not holds and evidence is not None:
        _show_evidence(finding_id, evidence)
    return holds


def observe(finding_id: str, sentence: str) -> str:
    """Record an observation (a measured quantity, never checked) and print it.

    Args:
        finding_id: stable id, lower case.
        sentence: the observation with this run's measured numbers filled in.

    Returns:
        The sentence.

    Raises:
        ValueError: a malformed id.
    """
    _record(finding_id, "observation", None, sentence)
    print("OBSERVED " + sentence)
    return sentence


def _record(finding_id: str, kind: str, holds: bool | None, sentence: str) -> None:
    if not isinstance(finding_id, str) or not ID_PATTERN.match(finding_id):
        raise ValueError(
            f"finding id {finding_id!r} must be lower case letters, digits, '.', '_' or '-'"
        )
    path = os.environ.get("LABKIT_FINDINGS_FILE")
    if path:
        with open(path, "a") as out:
            out.write(json.dumps({"id": finding_id, "kind": kind, "holds": holds,
                                  "sentence": sentence}) + "\n")


def _show_evidence(finding_id: str, evidence: Callable[[], Any] | Any) -> None:
    """Display the evidence of a broken promise.

    A failure to gather it is shown, not raised, so that the rest of the notebook renders.
    """
    print(f"Evidence for {finding_id}:")
    try:
        shown = evidence() if callable(evidence) else evidence
    except Exception:  # noqa: BLE001 - the broken promise matters more than its evidence
        print("(gathering the evidence failed:)\n" + traceback.format_exc(limit=3))
        return
    for item in shown if isinstance(shown, (list, tuple)) else [shown]:
        _display(item)


def _display(item: Any) -> None:
    try:
        from IPython.display import display
    except ImportError:  # plain Python: print what can be printed
        print(item)
        return
    display(item)


def load(path) -> list[dict]:
    """Read a findings file written through ``$LABKIT_FINDINGS_FILE``.

    Lines of an older format (no ``kind``) are read as checked findings.

    Args:
        path: the ``.findings.jsonl`` file.

    Returns:
        One dict per finding: id, kind, holds, sentence.
    """
    findings = []
    with open(path) as lines:
        for line in lines:
            if line.strip():
                entry = json.loads(line)
                entry.setdefault("kind", "check")
                findings.append(entry)
    return findings


def broken(findings: list[dict]) -> list[dict]:
    """The checked findings that did not hold."""
    return [f for f in findings if f.get("kind", "check") == "check" and not f["holds"]]
