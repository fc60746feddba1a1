"""Per-member cooldowns whose length each guild chooses (e.g. one /911 per 30 s).

In memory on purpose: a restart forgiving a cooldown is harmless, and the check must cost nothing.
"""

from __future__ import annotations

import time

from bot.timing import MonotonicClock


class MemberCooldowns:
    def __init__(self, clock: MonotonicClock = time.monotonic, max_entries: int = 50_000) -> None:
        self._clock = clock
        self._until: dict[tuple[str, int, int], float] = {}
        self._max_entries = max_entries

    def retry_after(self, bucket: str, guild_id: int, user_id: int) -> float:
        """Seconds left before this member may use ``bucket`` again (0 when free)."""
        until = self._until.get((bucket, guild_id, user_id))
        return 0.0 if until is None else max(0.0, until - self._clock())

    def start(self, bucket: str, guild_id: int, user_id: int, seconds: float) -> None:
        if seconds <= 0:
            return
        if len(self._until) >= self._max_entries:
            self._forget_expired()
        self._until[(bucket, guild_id, user_id)] = self._clock() + seconds

    def reset(self, bucket: str, guild_id: int, user_id: int) -> None:
        self._until.pop((bucket, guild_id, user_id), None)

    def _forget_expired(self) -> None:
        now = self._clock()
        for key in [key for key, until in self._until.items() if until <= now]:
            del self._until[key]
