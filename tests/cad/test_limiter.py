"""The per-community token bucket and the per-type 429 pause."""

from __future__ import annotations

import asyncio
import time

import pytest

from bot.cad.limiter import CommunityLimiter, TypePauses
from tests.cad.fixtures import FakeClock


async def test_spacing_after_the_burst() -> None:
    limiter = CommunityLimiter(rate_per_s=20.0, burst=2)
    started = time.monotonic()
    for _ in range(10):
        await limiter.acquire("c1")
    # 2 free, then 8 x 50 ms = 0.4 s; the bound is generous for a loaded machine.
    assert time.monotonic() - started >= 0.35


async def test_burst_is_immediate() -> None:
    limiter = CommunityLimiter(rate_per_s=0.1, burst=5)
    started = time.monotonic()
    for _ in range(5):
        await limiter.acquire("c1")
    assert time.monotonic() - started < 5.0  # the sixth would wait 10 s


async def test_communities_do_not_share_a_bucket() -> None:
    clock = FakeClock()
    limiter = CommunityLimiter(rate_per_s=1.0, burst=1, clock=clock)
    assert limiter.reserve("a") == 0.0
    assert limiter.reserve("b") == 0.0
    assert limiter.reserve("a") == pytest.approx(1.0)


async def test_concurrent_callers_are_served_in_arrival_order() -> None:
    limiter = CommunityLimiter(rate_per_s=50.0, burst=1)
    finished: list[int] = []

    async def take(number: int) -> None:
        await limiter.acquire("c1")
        finished.append(number)

    await asyncio.gather(*(take(n) for n in range(8)))
    assert finished == list(range(8))


async def test_reservations_queue_up_without_polling() -> None:
    clock = FakeClock()
    limiter = CommunityLimiter(rate_per_s=2.0, burst=2, clock=clock)
    waits = [limiter.reserve("c1") for _ in range(5)]
    assert waits == pytest.approx([0.0, 0.0, 0.5, 1.0, 1.5])
    clock.advance(10)
    assert limiter.reserve("c1") == 0.0  # refilled, capped at the burst


async def test_cancelled_waiter_gives_its_slot_back() -> None:
    clock = FakeClock()
    limiter = CommunityLimiter(rate_per_s=1.0, burst=1, clock=clock)
    await limiter.acquire("c1")
    waiter = asyncio.create_task(limiter.acquire("c1"))
    await asyncio.sleep(0.01)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    # Without the refund this would be 2.0: the cancelled caller's slot would still be held.
    assert limiter.reserve("c1") == pytest.approx(1.0)


def test_limiter_rejects_nonsense_settings() -> None:
    with pytest.raises(ValueError):
        CommunityLimiter(rate_per_s=0)
    with pytest.raises(ValueError):
        CommunityLimiter(burst=0)


def test_idle_buckets_are_pruned() -> None:
    clock = FakeClock()
    limiter = CommunityLimiter(rate_per_s=1.0, burst=1, clock=clock)
    for n in range(CommunityLimiter._PRUNE_ABOVE):
        limiter.reserve(f"c{n}")
    clock.advance(5)
    limiter.reserve("new")
    assert len(limiter._buckets) == 1


def test_type_pauses_expire_and_are_scoped() -> None:
    clock = FakeClock()
    pauses = TypePauses(clock=clock)
    pauses.pause("c1", "GET_CALLS", 60)
    assert pauses.remaining("c1", "GET_CALLS") == pytest.approx(60)
    assert pauses.remaining("c1", "CALL_911") == 0.0
    assert pauses.remaining("c2", "GET_CALLS") == 0.0
    clock.advance(30)
    pauses.pause("c1", "GET_CALLS", 10)  # a shorter pause never shortens a longer one
    assert pauses.remaining("c1", "GET_CALLS") == pytest.approx(30)
    clock.advance(31)
    assert pauses.remaining("c1", "GET_CALLS") == 0.0


def test_type_pauses_can_be_lifted() -> None:
    pauses = TypePauses(clock=FakeClock())
    pauses.pause("c1", "GET_CALLS", 60)
    pauses.pause("c1", "LOOKUP", 60)
    pauses.clear("c1", "LOOKUP")
    assert pauses.remaining("c1", "LOOKUP") == 0.0
    assert pauses.remaining("c1", "GET_CALLS") > 0
    pauses.clear("c1")
    assert pauses.remaining("c1", "GET_CALLS") == 0.0
