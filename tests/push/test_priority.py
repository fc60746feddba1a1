"""Urgent alerts first: through the real pipeline and discord.py's client to the Discord fake, a panic never
waits behind routine traffic, within a channel (its next message, or the slot the flood leaves free) and across
channels competing for the bot's request slots; routine traffic still drains, in order within each category."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from bot.push.delivery import DeliveryConfig
from bot.push.sender import BucketState
from bot.push.slots import PrioritySlots, bucket_wait
from bot.storage.models import Category, Priority, delivery_priority
from testing.discord_rest import StoredMessage
from tests.formatting.samples import SAMPLE_ENVELOPES
from tests.push.conftest import API_KEY, FAST_DELIVERY, GUILD_A, GUILD_B, PushWorld, channel_of, envelope

# Small communities route every category to one channel.
SHARED = 1_900


async def _share_one_channel(world: PushWorld) -> None:
    for category in Category:
        await world.storage.routes.set_channel(GUILD_A, category, SHARED)


def _status(ident: int) -> dict[str, Any]:
    return envelope("EVENT_UNIT_STATUS", {"identIds": [ident], "status": 2})


def _panic(ident: int = 57) -> dict[str, Any]:
    return envelope("EVENT_UNIT_PANIC", {"identIds": [ident], "isPanic": True})


def _sample(type_: str) -> dict[str, Any]:
    return {**SAMPLE_ENVELOPES[type_], "key": API_KEY}


def _kind(embed: dict[str, Any]) -> str:
    title = str(embed.get("title", ""))
    for marker, kind in (
        ("PANIC", "panic"),
        ("911 #", "911"),
        ("Call #", "dispatch"),
        ("Note on", "dispatch"),
        ("Unit #", "units"),
        ("Record", "records"),
    ):
        if marker in title:
            return kind
    return f"? {title}"


def _message_kinds_of(message: StoredMessage) -> str:
    return "+".join(sorted({_kind(embed) for embed in message.embeds}))


def _message_kinds(world: PushWorld, channel_id: int) -> list[str]:
    """One entry per message: the kinds of its embeds (a message never mixes priorities)."""
    return [_message_kinds_of(message) for message in world.fake.messages(channel_id)]


def _unit_idents(world: PushWorld, channel_id: int) -> list[int]:
    return [
        int(str(embed["title"]).split("Unit #")[1].split()[0])
        for embed in world.fake.all_embeds(channel_id)
        if _kind(embed) == "units"
    ]


async def _until(predicate: Callable[[], bool | Awaitable[bool]], timeout_s: float = 15.0) -> None:
    async with asyncio.timeout(timeout_s):
        while True:
            outcome = predicate()
            if outcome if isinstance(outcome, bool) else await outcome:
                return
            await asyncio.sleep(0.01)


async def _processed(world: PushWorld) -> bool:
    return await world.pipeline.store.inbox.depth() == 0


async def _post_all(world: PushWorld, envelopes: list[dict[str, Any]], parallel: int = 25) -> None:
    for start in range(0, len(envelopes), parallel):
        answers = await asyncio.gather(*(world.post(body) for body in envelopes[start : start + parallel]))
        assert all(status == 200 for status, _, _ in answers)


# -- within one channel ------------------------------------------------------------------------------


async def test_a_panic_behind_a_flood_takes_the_slot_the_flood_leaves_free(push_world: PushWorld) -> None:
    """A flood of unit events, then a panic, into one channel at 5 messages per window: the flood leaves the
    last request of each window to urgent alerts, so the panic is the next message and goes out in the same
    window, not after the flood (which takes many more windows)."""
    await _share_one_channel(push_world)
    fake = push_world.fake
    fake.window = 2.0  # long enough that a panic waiting for the next window, or for the flood, would show
    await _post_all(push_world, [_status(ident) for ident in range(1, 151)])

    def one_request_left_for_a_while() -> bool:
        state = fake.bucket_state(SHARED)
        return state is not None and state[0] == 1 and state[1] - time.monotonic() > 1.0

    # The flood's first requests of a window have gone; the last one is kept.
    await _until(one_request_left_for_a_while)
    _, window_ends = fake.bucket_state(SHARED) or (0, 0.0)
    posted_at = time.monotonic()
    await push_world.post(_panic())
    await _until(lambda: "panic" in _message_kinds(push_world, SHARED))

    after_panic = [request for request in fake.requests_to(SHARED, "POST") if request.at > posted_at]
    panic_message = next(m for m in fake.messages(SHARED) if "panic" in _message_kinds_of(m))
    assert after_panic[0].body is not None and after_panic[0].body["nonce"] == panic_message.nonce
    assert after_panic[0].at < window_ends  # in the same window: it did not wait for the flood's slots

    await push_world.settle(timeout_s=60)
    kinds = _message_kinds(push_world, SHARED)
    assert kinds.count("panic") == 1 and kinds.index("panic") < len(kinds) - 5
    # The flood arrives complete and in order.
    assert _unit_idents(push_world, SHARED) == list(range(1, 151))
    assert fake.exhausted_bucket_requests == []


async def test_a_backlog_drains_panic_then_911_then_dispatch_then_the_rest(push_world: PushWorld) -> None:
    await _share_one_channel(push_world)
    fake = push_world.fake
    # Discord keeps the answer to the first message back: everything after it queues in the outbox.
    fake.hold_responses(SHARED)
    await push_world.post(_status(1))
    await _until(lambda: len(fake.requests_to(SHARED)) == 1)
    await _post_all(push_world, [_status(ident) for ident in range(2, 22)], parallel=1)
    for body in (
        _sample("EVENT_RECORD_ADD"),
        _sample("EVENT_DISPATCH_NEW"),
        _sample("EVENT_911"),
        _panic(),
        _status(22),
    ):
        await push_world.post(body)
    await _until(lambda: _processed(push_world))
    fake.release(SHARED)
    await push_world.settle()

    assert _message_kinds(push_world, SHARED) == [
        "units",  # already on its way
        "panic",
        "911",
        "dispatch",
        "units",  # 2-11
        "units",  # 12-21
        "records+units",  # the record, then 22: routine traffic packs in order of arrival
    ]
    assert _unit_idents(push_world, SHARED) == list(range(1, 23))
    messages = fake.messages(SHARED)
    # The alert's message pings the route's role; the packed routine ones ping no one.
    assert messages[1].content is not None and messages[1].content.startswith("<@&")
    assert all(message.allowed_mentions == {"parse": []} for message in messages[4:])


async def test_routine_traffic_keeps_a_share_of_a_channel_that_dispatch_traffic_fills(
    push_world: PushWorld,
) -> None:
    await _share_one_channel(push_world)
    fake = push_world.fake
    fake.hold_responses(SHARED)
    await push_world.post(_status(1))
    await _until(lambda: len(fake.requests_to(SHARED)) == 1)
    # Twenty unit events, then sixteen dispatch calls (each a live card: a message of its own).
    calls = [
        envelope(
            "EVENT_DISPATCH_NOTE", {"callId": call_id, "note": {"label": "1A-12", "content": "en route"}}
        )
        for call_id in range(700, 716)
    ]
    await _post_all(push_world, [*(_status(ident) for ident in range(2, 22)), *calls], parallel=1)
    await _until(lambda: _processed(push_world))
    fake.release(SHARED)
    await push_world.settle()

    # Dispatch goes first, but every fifth message serves the oldest waiting row: the units are not held
    # back until all sixteen dispatch cards have gone.
    assert _message_kinds(push_world, SHARED) == [
        "units",  # already on its way
        *["dispatch"] * 4,
        "units",  # 2-11
        *["dispatch"] * 4,
        "units",  # 12-21
        *["dispatch"] * 8,
    ]
    assert _unit_idents(push_world, SHARED) == list(range(1, 22))
    cards = [str(embed["title"]) for embed in fake.all_embeds(SHARED) if _kind(embed) == "dispatch"]
    assert cards == [f"📟 Call #{call_id}" for call_id in range(700, 716)]


async def test_card_edits_never_hold_up_an_alert_in_the_same_channel(push_world: PushWorld) -> None:
    """Edits and posts use separate Discord buckets: a channel that has used up its card edits for the window
    still posts a panic at once."""
    await _share_one_channel(push_world)
    fake = push_world.fake
    fake.window = 3.0
    await push_world.post(envelope("EVENT_DISPATCH_NEW", {"dispatch": {"callId": 311, "title": "Stop"}}))
    await _until(lambda: len(fake.messages(SHARED)) == 1)
    for number in range(1, 6):
        note = {"callId": 311, "note": {"label": "1A-12", "content": f"note {number}"}}
        await push_world.post(envelope("EVENT_DISPATCH_NOTE", note))
        if number < 5:
            await _until(lambda n=number: len(fake.requests_to(SHARED, "PATCH")) == n)
    edit_bucket = fake.bucket_state(SHARED, "edit")
    assert edit_bucket is not None
    await push_world.post(_panic())
    await _until(lambda: "panic" in _message_kinds(push_world, SHARED))

    [panic_post] = [
        r for r in fake.requests_to(SHARED, "POST") if r.body and "PANIC" in str(r.body["embeds"])
    ]
    assert panic_post.at < edit_bucket[1]  # before the edit bucket even reset
    await push_world.settle()
    [card] = [m for m in fake.messages(SHARED) if "Call #311" in str(m.embeds)]
    assert "note 5" in str(card.embeds)


# -- across channels -------------------------------------------------------------------------------------


async def test_urgent_channels_get_the_next_free_request_slot_first(push_world: PushWorld) -> None:
    await push_world.restart(
        reopen_storage=False,
        delivery=DeliveryConfig(**{**FAST_DELIVERY.__dict__, "max_parallel_requests": 1}),
    )
    fake = push_world.fake
    units_a = channel_of(GUILD_A, Category.UNITS)
    panic_channels = {channel_of(GUILD_A, Category.PANIC), channel_of(GUILD_B, Category.PANIC)}
    # The only slot is taken by a request whose answer Discord keeps back.
    fake.hold_responses(units_a)
    await push_world.post(_status(1))
    await _until(lambda: len(fake.requests_to(units_a)) == 1)
    # Routine work for many channels (both guilds) lines up for the slot first ...
    routine = [_status(2), _status(3)]
    for ident in range(4):
        routine.append(_sample("EVENT_RECORD_ADD"))
        routine.append(envelope("EVENT_PAGER_REBORN", {"addresses": [f"ST{ident}"], "body": "Fire"}))
    await _post_all(push_world, routine, parallel=1)
    await _until(lambda: _processed(push_world))
    await asyncio.sleep(0.1)
    assert [request.method for request in fake.requests] == ["POST"]
    # ... then a panic (for both guilds) arrives.
    await push_world.post(_panic())
    await _until(lambda: _processed(push_world))
    fake.release(units_a)
    await push_world.settle()

    sent = [request.channel_id for request in fake.requests if request.method == "POST"]
    assert sent[0] == units_a
    assert set(sent[1:3]) == panic_channels
    assert len(sent) > 3  # the routine work followed


# -- the scheduling rules on their own -----------------------------------------------------------------


def test_priority_follows_the_category() -> None:
    assert [delivery_priority(category) for category in Category] == [
        Priority.CALLS_911,
        Priority.PANIC,
        Priority.DISPATCH,
        Priority.ROUTINE,
        Priority.ROUTINE,
        Priority.ROUTINE,
    ]
    assert delivery_priority("something new") == Priority.ROUTINE
    assert [priority.urgent for priority in Priority] == [True, True, False, False]


@pytest.mark.parametrize(
    ("state", "urgent", "expected"),
    [
        (None, False, 0.0),  # nothing known: go (discord.py still keeps to the limit)
        (BucketState(remaining=0, resets_in=None), False, 0.0),  # already reset
        (BucketState(remaining=3, resets_in=4.0), False, 0.0),
        (BucketState(remaining=1, resets_in=4.0), True, 0.0),  # the kept request is the alert's
        (BucketState(remaining=1, resets_in=4.0), False, 3.5),  # routine waits until 0.5 s before reset
        (BucketState(remaining=1, resets_in=0.3), False, 0.0),  # ... and then uses it
        (BucketState(remaining=0, resets_in=2.0), True, 2.0),  # empty: wait here, choice still open
    ],
)
def test_bucket_wait(state: BucketState | None, urgent: bool, expected: float) -> None:
    assert bucket_wait(state, urgent=urgent, headroom_s=0.5) == pytest.approx(expected)


async def test_slots_go_most_urgent_first_then_in_arrival_order() -> None:
    slots = PrioritySlots(1)
    order: list[str] = []
    release_first = asyncio.Event()

    async def hold(name: str, priority: Priority, until: asyncio.Event | None = None) -> None:
        async with slots.take(priority):
            order.append(name)
            if until is not None:
                await until.wait()

    first = asyncio.create_task(hold("first", Priority.ROUTINE, release_first))
    await asyncio.sleep(0)
    waiters = [
        asyncio.create_task(hold(name, priority))
        for name, priority in (
            ("routine-1", Priority.ROUTINE),
            ("dispatch", Priority.DISPATCH),
            ("routine-2", Priority.ROUTINE),
            ("panic", Priority.PANIC),
        )
    ]
    await asyncio.sleep(0)
    release_first.set()
    await asyncio.gather(first, *waiters)
    assert order == ["first", "panic", "dispatch", "routine-1", "routine-2"]


async def test_the_last_free_slot_is_kept_for_urgent_requests_and_cancelled_waiters_give_way() -> None:
    slots = PrioritySlots(2)
    held = asyncio.Event()

    async def hold(priority: Priority) -> None:
        async with slots.take(priority):
            await held.wait()

    routine = asyncio.create_task(hold(Priority.ROUTINE))
    await asyncio.sleep(0)
    assert slots.free == 1
    second_routine = asyncio.create_task(hold(Priority.ROUTINE))
    await asyncio.sleep(0)
    assert slots.free == 1 and not second_routine.done()  # kept for urgent work
    urgent = asyncio.create_task(hold(Priority.CALLS_911))
    await asyncio.sleep(0)
    assert slots.free == 0  # taken at once, past the waiting routine request
    second_routine.cancel()
    held.set()
    await asyncio.gather(routine, urgent)
    assert slots.free == 2
    async with asyncio.timeout(1), slots.take(Priority.ROUTINE) as waited:
        assert not waited
