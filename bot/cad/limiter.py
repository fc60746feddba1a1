"""Client-side pacing for CAD requests.

Sonoran does not publish v1 limits and blocks abusive traffic automatically, so every community gets its own
token bucket (about one request a second sustained, a small burst for a user's command). After a 429 that
retries could not get past, the official clients stop sending that request type for 60 s; ``TypePauses``
does the same so a rate-limited community is answered at once instead of hammering the CAD.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from bot.timing import MonotonicClock


@dataclass
class _Bucket:
    tokens: float
    updated: float


class CommunityLimiter:
    """One token bucket per community ID.

    ``acquire`` reserves its slot synchronously and then sleeps until that slot, so callers are served in the
    order they arrived (fair under concurrency) and nobody polls. Tokens may go negative: a negative balance
    is the queue of reservations already handed out.
    """

    # Idle communities whose bucket has refilled carry no information; drop them past this many.
    _PRUNE_ABOVE = 1024

    def __init__(
        self, rate_per_s: float = 1.0, burst: int = 5, *, clock: MonotonicClock = time.monotonic
    ) -> None:
        if rate_per_s <= 0:
            raise ValueError("rate_per_s must be positive")
        if burst < 1:
            raise ValueError("burst must be at least 1")
        self.rate_per_s = rate_per_s
        self.burst = burst
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}

    def _refill(self, community_id: str) -> _Bucket:
        now = self._clock()
        bucket = self._buckets.get(community_id)
        if bucket is None:
            if len(self._buckets) >= self._PRUNE_ABOVE:
                self._prune(now)
            bucket = self._buckets[community_id] = _Bucket(tokens=float(self.burst), updated=now)
        else:
            elapsed = max(0.0, now - bucket.updated)
            bucket.tokens = min(float(self.burst), bucket.tokens + elapsed * self.rate_per_s)
            bucket.updated = now
        return bucket

    def _prune(self, now: float) -> None:
        full = [
            key
            for key, bucket in self._buckets.items()
            if bucket.tokens + (now - bucket.updated) * self.rate_per_s >= self.burst
        ]
        for key in full:
            del self._buckets[key]

    def reserve(self, community_id: str) -> float:
        """Take one token now and return how many seconds the caller must wait before using it."""
        bucket = self._refill(community_id)
        bucket.tokens -= 1.0
        return 0.0 if bucket.tokens >= 0 else -bucket.tokens / self.rate_per_s

    def _refund(self, community_id: str) -> None:
        bucket = self._buckets.get(community_id)
        if bucket is not None:
            bucket.tokens = min(float(self.burst), bucket.tokens + 1.0)

    async def acquire(self, community_id: str) -> None:
        """Wait for this community's next request slot."""
        delay = self.reserve(community_id)
        if delay <= 0:
            return
        try:
            await asyncio.sleep(delay)
        except asyncio.CancelledError:
            # A cancelled caller never sends; give its slot back so later callers are not slowed for nothing.
            self._refund(community_id)
            raise


class TypePauses:
    """Request types that must not be sent for a while, per community (after an unbeaten 429)."""

    def __init__(self, *, clock: MonotonicClock = time.monotonic) -> None:
        self._clock = clock
        self._until: dict[tuple[str, str], float] = {}

    def pause(self, community_id: str, request_type: str, seconds: float) -> None:
        until = self._clock() + seconds
        key = (community_id, request_type)
        self._until[key] = max(until, self._until.get(key, 0.0))

    def remaining(self, community_id: str, request_type: str) -> float:
        """Seconds left on the pause, 0.0 when the type may be sent."""
        key = (community_id, request_type)
        until = self._until.get(key)
        if until is None:
            return 0.0
        left = until - self._clock()
        if left <= 0:
            del self._until[key]
            return 0.0
        return left

    def clear(self, community_id: str, request_type: str | None = None) -> None:
        """Lift pauses early (e.g. after /setup changed the credentials)."""
        for key in [k for k in self._until if k[0] == community_id and request_type in (None, k[1])]:
            del self._until[key]
