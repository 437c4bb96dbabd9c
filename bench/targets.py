"""Issue 12's targets: each bench section returns ``Target`` rows, ``run_all`` prints them.

A target is printed, never asserted: a missed one is a finding to look into.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass


@dataclass
class Target:
    """One target of one bench run.

    Attributes:
        name: what is measured, e.g. "producer: labkit / bare loop".
        value: the measured value, formatted with its unit, e.g. "0.92" or "187 MB".
        goal: the target, e.g. ">= 0.8" or "<= 200 MB".
        met: whether the value meets the goal; None if the section did not run to the end.
    """

    name: str
    value: str
    goal: str
    met: bool | None

    def __post_init__(self):
        # A comparison of NumPy numbers gives numpy.bool_, which ``is True`` never matches.
        if self.met is not None:
            self.met = bool(self.met)

    @property
    def verdict(self) -> str:
        """"met", "MISSED", or "ERROR" (no value)."""
        return {True: "met", False: "MISSED", None: "ERROR"}[self.met]


def line(target: Target) -> str:
    """The one-line form a section prints as soon as it has measured a target."""
    return f"  target {target.name}: {target.value}  (target {target.goal}: {target.verdict})"


def summary(targets: list[Target]) -> str:
    """Every target as one text table: name, value, target, met or missed."""
    rows = [("target", "value", "goal", "")] + [
        (t.name, t.value, t.goal, t.verdict) for t in targets]
    widths = [max(len(row[k]) for row in rows) for k in range(4)]
    out = []
    for n, row in enumerate(rows):
        out.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
                   .rstrip())
        if n == 0:
            out.append("  ".join("-" * width for width in widths))
    met = sum(t.met is True for t in targets)
    out.append(f"{met} of {len(targets)} targets met")
    return "\n".join(out)


def within(value: float, reference: float, tolerance: float) -> bool:
    """Whether ``value`` is within ``tolerance`` (0.2: 20 %) of ``reference``, either way."""
    return abs(value - reference) <= tolerance * abs(reference)


def positive_int(text: str) -> int:
    """Argparse type: an integer >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
    return value
