"""The same event arriving over both transports is stored once.

A community can receive an event twice: over the bot's websocket session and over HTTP (the CAD's fallback, or a
FiveM server forwarding what its own session got, if the hub ever fans an event out to both). Push events carry
no ID, so a copy is recognised by its content: a digest of the canonical envelope (type and data, keys sorted;
never the key) per community.

It must never drop a distinct event. So:

- only **across** transports: two identical events over the same transport are both kept (a unit can report
  the same status twice, and the CAD sends what it sends);
- **one for one**: an arrival is a copy only if the other transport brought the same digest within
  ``window_s`` and that arrival has not already been matched. Two identical events over the websocket and their
  two forwarded copies over HTTP make two matches, not one; a third HTTP copy is kept;
- only for communities that have a websocket session at all (``watch``); HTTP-only communities pay nothing.

What it cannot tell apart: two *distinct* events with identical content, one per transport, within the window
(e.g. the hub alternating between two sessions on one server id). That setup is what ``/setup`` warns against.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from bot.timing import MonotonicClock

DEDUPE_WINDOW_S = 120.0
MAX_REMEMBERED = 20_000


@dataclass(eq=False)
class _Seen:
    at: float
    community_id: str
    digest: str
    transport: str
    matched: bool = False


class CrossTransportDedupe:
    """See the module docstring. ``is_copy`` is called once per accepted event, before it is stored."""

    def __init__(self, *, window_s: float = DEDUPE_WINDOW_S, clock: MonotonicClock = time.monotonic) -> None:
        self._window_s = window_s
        self._clock = clock
        self._watched: frozenset[str] = frozenset()
        self._recent: deque[_Seen] = deque()
        # (community, digest) -> arrivals still in the window, oldest first
        self._by_digest: dict[tuple[str, str], list[_Seen]] = {}
        self.copies_dropped = 0

    def watch(self, community_ids: Iterable[str]) -> None:
        """The communities that have a websocket session now (the only ones that can get copies)."""
        self._watched = frozenset(community_ids)

    def is_copy(self, community_id: str, transport: str, envelope: Mapping[str, Any]) -> bool:
        """True when this arrival is the other transport's copy of an event already stored."""
        if community_id not in self._watched:
            return False
        now = self._clock()
        self._expire(now)
        digest = envelope_digest(envelope)
        arrivals = self._by_digest.setdefault((community_id, digest), [])
        original = next((a for a in arrivals if a.transport != transport and not a.matched), None)
        if original is not None:
            original.matched = True
            self.copies_dropped += 1
            return True
        seen = _Seen(now, community_id, digest, transport)
        arrivals.append(seen)
        self._recent.append(seen)
        if len(self._recent) > MAX_REMEMBERED:
            self._forget(self._recent.popleft())
        return False

    def _expire(self, now: float) -> None:
        while self._recent and self._recent[0].at <= now - self._window_s:
            self._forget(self._recent.popleft())

    def _forget(self, seen: _Seen) -> None:
        key = (seen.community_id, seen.digest)
        arrivals = self._by_digest.get(key)
        if arrivals is None:
            return
        arrivals[:] = [arrival for arrival in arrivals if arrival is not seen]
        if not arrivals:
            del self._by_digest[key]


def envelope_digest(envelope: Mapping[str, Any]) -> str:
    """SHA-256 of the event's type (upper-cased) and data, JSON with sorted keys: the same for a copy whatever
    the key's case, the transport or the order of the object's members."""
    event_type = str(envelope.get("type", "")).strip().upper()
    canonical = json.dumps(
        {"type": event_type, "data": envelope.get("data")},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()
