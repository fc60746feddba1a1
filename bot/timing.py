"""Time and waiting, as the dependencies tests inject: one name per meaning.

Three clocks, told apart by name although two share a type: a :data:`WallClock` gives Unix seconds
(``time.time``) for timestamps that are stored or compared across restarts; a :data:`MonotonicClock` gives
seconds that only move forward (``time.monotonic``) for intervals, deadlines and rate limits inside one
process; a :data:`DateTimeClock` gives a timezone-aware ``datetime`` (:func:`utc_now`).

:data:`IdleWait` is how a task awaits something only outside input ends (a background loop waiting for work or
a timer, a command waiting on a read another task makes). Production uses :func:`plain_await`; SimCord tests
declare these waits with ``env.external_wait`` so settling a simulated guild does not wait for them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

T = TypeVar("T")

WallClock = Callable[[], float]
MonotonicClock = Callable[[], float]
DateTimeClock = Callable[[], datetime]
IdleWait = Callable[[Awaitable[Any]], Awaitable[Any]]


def utc_now() -> datetime:
    return datetime.now(UTC)


async def plain_await(awaitable: Awaitable[T]) -> T:
    """The production :data:`IdleWait`: just ``await``."""
    return await awaitable
