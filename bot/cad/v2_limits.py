"""The v2 API's per-key limits, kept on the bot's side so the CAD never has to refuse us.

Sonoran rate-limits v2 per API key and per endpoint, per minute (the numbers live in ``v2_endpoints``). Every
guild using the same key draws on one budget, and so does anything else holding that key (the game server's
own integration), which is why a 429 can still arrive and is honoured too:

- ``KeyBudgets.acquire`` takes a slot from a sliding 60 s window, or says how many seconds until one frees.
  A sliding window never sends more than the limit in any minute, so it also stays inside the gateway's
  fixed per-minute windows. Nothing waits: the caller answers the member at once with that time.
- ``KeyBudgets.pause`` blocks an endpoint until the time a 429 named (``Retry-After``, ``RateLimit-Reset`` or
  ``X-RateLimit-Reset``), or for a default pause when the gateway named none.

Budgets are filed under a keyed digest of the API key (a salt per ``KeyBudgets``), never the key itself.
"""

from __future__ import annotations

import email.utils
import hashlib
import hmac
import math
import os
import time
from collections import deque
from collections.abc import Mapping
from datetime import UTC, datetime

from bot.cad.v2_endpoints import WINDOW_S, Operation
from bot.timing import MonotonicClock

# Official clients wait at most 10 s on a 429; without a stated time the bot pauses the endpoint that long.
DEFAULT_PAUSE_S = 10.0
# X-RateLimit-Reset is sometimes an epoch timestamp rather than a number of seconds.
_EPOCH_THRESHOLD = 1_000_000_000


class KeyBudgets:
    """Request budgets per (API key, endpoint). One instance per process, shared by every client."""

    _PRUNE_ABOVE = 4096

    def __init__(self, *, clock: MonotonicClock = time.monotonic, window_s: float = WINDOW_S) -> None:
        if window_s <= 0:
            raise ValueError("window_s must be positive")
        self._clock = clock
        self._window_s = window_s
        self._salt = os.urandom(16)
        self._sent: dict[tuple[str, str], deque[float]] = {}
        self._paused_until: dict[tuple[str, str], float] = {}

    def key_id(self, api_key: str) -> str:
        """A stable, non-reversible name for ``api_key`` within this process (what budgets are filed under)."""
        return hmac.new(self._salt, api_key.encode(), hashlib.sha256).hexdigest()[:32]

    def _slot(self, api_key: str, operation: Operation) -> tuple[str, str]:
        return (self.key_id(api_key), operation.budget_key)

    def _window(self, slot: tuple[str, str], now: float) -> deque[float]:
        sent = self._sent.get(slot)
        if sent is None:
            if len(self._sent) >= self._PRUNE_ABOVE:
                self._prune(now)
            sent = self._sent[slot] = deque()
        while sent and sent[0] <= now - self._window_s:
            sent.popleft()
        return sent

    def _prune(self, now: float) -> None:
        for slot in [s for s, sent in self._sent.items() if not sent or sent[-1] <= now - self._window_s]:
            del self._sent[slot]
        for slot in [s for s, until in self._paused_until.items() if until <= now]:
            del self._paused_until[slot]

    def paused_for(self, api_key: str, operation: Operation) -> float:
        """Seconds left before ``operation`` may be sent again after a 429 (0.0 when it may)."""
        slot = self._slot(api_key, operation)
        until = self._paused_until.get(slot)
        if until is None:
            return 0.0
        left = until - self._clock()
        if left <= 0:
            del self._paused_until[slot]
            return 0.0
        return left

    def acquire(self, api_key: str, operation: Operation) -> float:
        """Take one request slot now and return 0.0, or take nothing and return seconds until one frees."""
        paused = self.paused_for(api_key, operation)
        if paused > 0:
            return paused
        now = self._clock()
        sent = self._window(self._slot(api_key, operation), now)
        if len(sent) >= operation.budget_per_minute:
            return max(sent[0] + self._window_s - now, 0.001)
        sent.append(now)
        return 0.0

    def release(self, api_key: str, operation: Operation) -> None:
        """Give back the latest slot of a request that never reached the CAD (the connection did not open)."""
        sent = self._sent.get(self._slot(api_key, operation))
        if sent:
            sent.pop()

    def remaining(self, api_key: str, operation: Operation) -> int:
        """Requests ``operation`` may still send in the current window (0 while paused)."""
        if self.paused_for(api_key, operation) > 0:
            return 0
        sent = self._window(self._slot(api_key, operation), self._clock())
        return max(0, operation.budget_per_minute - len(sent))

    def pause(self, api_key: str, operation: Operation, seconds: float) -> None:
        """Send nothing on ``operation``'s endpoint with this key for ``seconds`` (a later end wins)."""
        slot = self._slot(api_key, operation)
        until = self._clock() + max(0.0, seconds)
        self._paused_until[slot] = max(until, self._paused_until.get(slot, 0.0))

    def forget(self, api_key: str) -> None:
        """Drop every budget and pause of ``api_key`` (after the key was replaced)."""
        key_id = self.key_id(api_key)
        for table in (self._sent, self._paused_until):
            for slot in [s for s in table if s[0] == key_id]:
                del table[slot]


def retry_delay(headers: Mapping[str, str], *, now: datetime | None = None) -> float | None:
    """Seconds a 429 asks us to wait: ``Retry-After`` (seconds or HTTP-date), else ``RateLimit-Reset`` or
    ``X-RateLimit-Reset`` (seconds, or an epoch timestamp). ``None`` when no header says."""
    current = now or datetime.now(UTC)
    value = headers.get("Retry-After")
    if value:
        parsed = _seconds_or_date(value.strip(), current)
        if parsed is not None:
            return parsed
    for name in ("RateLimit-Reset", "X-RateLimit-Reset"):
        value = headers.get(name)
        if not value:
            continue
        try:
            number = float(value.strip())
        except ValueError:
            continue
        if not math.isfinite(number):
            continue
        if number >= _EPOCH_THRESHOLD:
            number -= current.timestamp()
        return max(0.0, number)
    return None


def _seconds_or_date(value: str, now: datetime) -> float | None:
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())
