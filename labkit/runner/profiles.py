"""Run-size profiles shared by every notebook: smoke (seconds, for tests), standard, full."""

from __future__ import annotations

from typing import TypeVar

PROFILES = ("smoke", "standard", "full")

_T = TypeVar("_T")


def choose(profile: str, *, smoke: _T, standard: _T, full: _T) -> _T:
    """Return the value for ``profile``.

    Example: ``messages = choose(profile, smoke=2_000, standard=200_000, full=2_000_000)``.

    Raises:
        ValueError: ``profile`` is not one of ``PROFILES``.
    """
    if profile not in PROFILES:
        raise ValueError(f"profile={profile!r} is not known; use one of {', '.join(PROFILES)}")
    return {"smoke": smoke, "standard": standard, "full": full}[profile]
