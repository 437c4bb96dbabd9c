"""Findings: a sentence computed from a run, checked, printed and recorded.

A notebook states what it measured with ``check(id, holds, sentence)``. The finding is
printed, appended to the file named by ``$LABKIT_FINDINGS_FILE`` (the report runner sets it,
one JSON object per line) and, if it does not hold, raises ``FindingFailed`` so the
notebook fails instead of printing a claim its own data contradicts.
"""

from __future__ import annotations

import json
import os
import re

ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")


class FindingFailed(AssertionError):
    """A finding did not hold on this run's data."""


def check(finding_id: str, holds: bool, sentence: str) -> str:
    """Record a finding, print it, and fail if it does not hold.

    Args:
        finding_id: stable id, lower case, e.g. ``"tour.kill.leaders-moved"``.
        holds: whether the run's data supports the sentence.
        sentence: the finding with its measured numbers filled in.

    Returns:
        The sentence.

    Raises:
        ValueError: a malformed id.
        FindingFailed: ``holds`` is false.
    """
    if not ID_PATTERN.match(finding_id):
        raise ValueError(
            f"finding id {finding_id!r} must be lower case letters, digits, '.', '_' or '-'"
        )
    holds = bool(holds)
    path = os.environ.get("LABKIT_FINDINGS_FILE")
    if path:
        with open(path, "a") as out:
            out.write(json.dumps({"id": finding_id, "holds": holds, "sentence": sentence}) + "\n")
    print(("HOLDS   " if holds else "FAILED  ") + sentence)
    if not holds:
        raise FindingFailed(f"finding {finding_id} does not hold: {sentence}")
    return sentence
