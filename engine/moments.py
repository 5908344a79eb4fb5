"""Moments in time as the contracts write them: RFC 3339 strings in UTC (``...Z``)."""

from __future__ import annotations

import datetime


def parse(moment: str) -> datetime.datetime:
    """An RFC 3339 time (``Z`` or an offset; none is read as UTC); ValueError if it is none."""
    parsed = datetime.datetime.fromisoformat(moment.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=datetime.UTC)


def format(moment: datetime.datetime) -> str:
    """``moment`` as the contracts write it: UTC, whole seconds, ``Z``."""
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def later(moment: str, seconds: float) -> str:
    """The moment ``seconds`` after ``moment``."""
    return format(parse(moment) + datetime.timedelta(seconds=seconds))


def reached(now: str, due: str) -> bool:
    """Whether ``now`` is at or after ``due``."""
    return parse(now) >= parse(due)
