"""Scheduling primitives of the delivery worker: when a rate-limit bucket allows the next request
(:func:`bucket_wait`), and who gets the global request slots (:class:`PrioritySlots`). No I/O."""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
from collections.abc import AsyncIterator

from bot.push.sender import BucketState
from bot.storage.models import Priority


def bucket_wait(state: BucketState | None, *, urgent: bool, headroom_s: float) -> float:
    """Seconds until a request may take a token of this bucket (0: now).

    The last token of a window is kept for urgent requests until ``headroom_s`` before the window resets; an
    empty bucket is waited out here, not inside discord.py, so the choice of what to send stays open.
    """
    if state is None or state.resets_in is None or state.resets_in <= 0:
        return 0.0
    if state.remaining >= 2 or (state.remaining == 1 and urgent):
        return 0.0
    if state.remaining == 1:
        return max(0.0, state.resets_in - headroom_s)
    return state.resets_in


class PrioritySlots:
    """At most ``size`` holders at once. Waiters are served most urgent first, then first come first served;
    with more than one slot, the last free one is kept for urgent requests."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("at least one slot is needed")
        self._size = size
        self._free = size
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    @property
    def free(self) -> int:
        return self._free

    def _may_take(self, priority: Priority) -> bool:
        kept = 0 if priority.urgent or self._size == 1 else 1
        return self._free > kept

    @contextlib.asynccontextmanager
    async def take(self, priority: Priority) -> AsyncIterator[bool]:
        """Hold a slot; yields True if it had to wait for it (the caller may want to look at its work again)."""
        waited = False
        if not self._may_take(priority) or self._waiting_before(priority):
            waited = True
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            heapq.heappush(self._waiters, (int(priority), next(self._order), waiter))
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._release()  # granted just as it was cancelled: pass the slot on
                raise
        else:
            self._free -= 1
        try:
            yield waited
        finally:
            self._release()

    def _waiting_before(self, priority: Priority) -> bool:
        return any(not waiter.done() and rank <= priority for rank, _, waiter in self._waiters)

    def _release(self) -> None:
        self._free += 1
        while self._waiters:
            priority, _, waiter = self._waiters[0]
            if waiter.done():  # cancelled while waiting
                heapq.heappop(self._waiters)
                continue
            if not self._may_take(Priority(priority)):
                return
            heapq.heappop(self._waiters)
            self._free -= 1
            waiter.set_result(None)
