"""Delivery against a Discord that rate-limits, fails and refuses: batching, buckets, retries, failures."""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
from typing import Any

import pytest

from bot.cad import events as ev
from bot.push.delivery import DeliveryConfig
from bot.push.discord_sender import DiscordPySender
from bot.push.pipeline import PushPipeline
from bot.storage.models import Category
from tests.push.conftest import FAST_DELIVERY, GUILD_A, GUILD_B, PushWorld, channel_of, envelope

UNITS = channel_of(GUILD_A, Category.UNITS)
PANIC = channel_of(GUILD_A, Category.PANIC)
RECORDS = channel_of(GUILD_A, Category.RECORDS)
OTHER = channel_of(GUILD_A, Category.OTHER)
DISPATCH = channel_of(GUILD_A, Category.DISPATCH)
# Back-offs long enough to tell one attempt count from the next in the log (each doubles, jitter +-20%).
SLOWER_BACKOFF = DeliveryConfig(**{**FAST_DELIVERY.__dict__, "backoff_base_s": 0.2, "backoff_max_s": 10.0})


def _status_event(ident: int) -> dict[str, Any]:
    return envelope("EVENT_UNIT_STATUS", {"identIds": [ident], "status": 2})


def _titles(world: PushWorld, channel_id: int) -> list[str]:
    return [embed["title"] for embed in world.fake.all_embeds(channel_id)]


async def _until_processed(world: PushWorld) -> None:
    async with asyncio.timeout(10):
        while await world.pipeline.store.inbox.depth():
            await asyncio.sleep(0.02)


async def _outbox(world: PushWorld, status: str) -> list[Any]:
    return await world.pipeline.store.outbox.rows(guild_id=GUILD_A, status=status)


async def test_a_backlog_is_packed_into_few_messages_in_order(push_world: PushWorld) -> None:
    push_world.fake.fail_channel(UNITS, 503)
    for ident in range(1, 26):
        await push_world.post(_status_event(ident))
    await _until_processed(push_world)
    push_world.fake.fail_channel(UNITS, None)
    await push_world.settle()

    assert _titles(push_world, UNITS) == [f"🔄 Unit #{ident} — Available" for ident in range(1, 26)]
    messages = push_world.fake.messages(UNITS)
    # The first message was fixed before the outage ended; the rest of the backlog goes 10 at a time.
    assert len(messages) <= 4
    assert all(len(message.embeds) <= 10 for message in messages)
    assert push_world.fake.exhausted_bucket_requests == []


async def test_a_burst_respects_the_bucket_and_packs_instead_of_queueing(push_world: PushWorld) -> None:
    await asyncio.gather(*(push_world.post(_status_event(ident)) for ident in range(1, 31)))
    await push_world.settle()
    assert sorted(_titles(push_world, UNITS)) == sorted(f"🔄 Unit #{i} — Available" for i in range(1, 31))
    assert len(push_world.fake.messages(UNITS)) < 30
    assert push_world.fake.exhausted_bucket_requests == []
    assert all(request.status != 429 for request in push_world.fake.requests)


async def test_many_channels_in_parallel_never_hit_an_exhausted_bucket(push_world: PushWorld) -> None:
    events = []
    for ident in range(1, 16):
        events.append(_status_event(ident))
        events.append(envelope("EVENT_UNIT_PANIC", {"identIds": [ident]}))
        events.append(envelope("EVENT_PAGER_REBORN", {"addresses": [f"ST{ident}"], "body": "Fire"}))
    await asyncio.gather(*(push_world.post(event) for event in events))
    await push_world.settle()
    for guild in (GUILD_A, GUILD_B):
        for category in (Category.UNITS, Category.PANIC, Category.OTHER):
            assert len(push_world.fake.all_embeds(channel_of(guild, category))) == 15
    assert push_world.fake.exhausted_bucket_requests == []


async def test_429_with_retry_after_is_waited_out(push_world: PushWorld) -> None:
    push_world.fake.inject(PANIC, 429, 429, retry_after=0.3)
    await push_world.post(envelope("EVENT_UNIT_PANIC", {"identIds": [57]}))
    await push_world.settle()
    requests = push_world.fake.requests_to(PANIC, "POST")
    assert [request.status for request in requests] == [429, 429, 200]
    for limited, following in itertools.pairwise(requests):
        assert following.at - limited.at >= 0.3
    assert len(push_world.fake.messages(PANIC)) == 1
    assert push_world.fake.exhausted_bucket_requests == []


async def test_server_errors_are_retried_with_backoff_and_delivered_once(push_world: PushWorld) -> None:
    push_world.fake.inject(PANIC, 503, 503, 500)
    await push_world.post(envelope("EVENT_UNIT_PANIC", {"identIds": [57]}))
    await push_world.settle()
    statuses = [request.status for request in push_world.fake.requests_to(PANIC, "POST")]
    assert statuses == [503, 503, 500, 200]
    [message] = push_world.fake.messages(PANIC)
    assert all(
        request.body and request.body["nonce"] == message.nonce
        for request in push_world.fake.requests_to(PANIC)
    )
    _, metrics = await push_world.get("/metrics")
    assert 'sonoran_push_deliveries_total{kind="message",outcome="retried"} 2.0' in metrics


async def test_403_is_recorded_on_the_route_and_not_retried_forever(push_world: PushWorld) -> None:
    push_world.fake.fail_channel(PANIC, 403)
    for ident in (57, 58, 59):
        await push_world.post(envelope("EVENT_UNIT_PANIC", {"identIds": [ident]}))
    await push_world.post(_status_event(57))
    await push_world.settle()

    route = await push_world.storage.routes.get(GUILD_A, Category.PANIC)
    assert route.last_error is not None and "403" in route.last_error
    # One refused request; the channel's queue is then dropped instead of hammering Discord.
    assert len(push_world.fake.requests_to(PANIC)) == 1
    failed = [row for row in await _outbox(push_world, "failed") if row.channel_id == PANIC]
    assert len(failed) == 3
    assert len(push_world.fake.all_embeds(UNITS)) == 1
    assert len(push_world.fake.all_embeds(channel_of(GUILD_B, Category.PANIC))) == 3
    assert (await push_world.storage.routes.get(GUILD_B, Category.PANIC)).last_error is None
    _, metrics = await push_world.get("/metrics")
    assert 'sonoran_push_deliveries_total{kind="message",outcome="failed"} 3.0' in metrics


async def test_404_unknown_channel_is_recorded_on_the_route(push_world: PushWorld) -> None:
    push_world.fake.fail_channel(RECORDS, 404)
    record = {"record": {"id": 884, "name": "Warrant", "type": 2, "sections": []}}
    await push_world.post(envelope("EVENT_RECORD_ADD", record))
    await push_world.settle()
    route = await push_world.storage.routes.get(GUILD_A, Category.RECORDS)
    assert route.last_error is not None and "404" in route.last_error
    assert await push_world.storage.routes.failed(GUILD_A) == [route]
    assert len(push_world.fake.requests_to(RECORDS)) == 1


async def test_a_channel_that_works_again_clears_its_recorded_failure(push_world: PushWorld) -> None:
    await push_world.restart(delivery=DeliveryConfig(**{**FAST_DELIVERY.__dict__, "channel_cooldown_s": 0.2}))
    push_world.fake.fail_channel(PANIC, 403)
    await push_world.post(envelope("EVENT_UNIT_PANIC", {"identIds": [57]}))
    await push_world.settle()
    assert (await push_world.storage.routes.get(GUILD_A, Category.PANIC)).last_error is not None
    push_world.fake.fail_channel(PANIC, None)
    await asyncio.sleep(0.3)
    await push_world.post(envelope("EVENT_UNIT_PANIC", {"identIds": [58]}))
    await push_world.settle()
    assert len(push_world.fake.messages(PANIC)) == 1
    async with asyncio.timeout(5):
        while (await push_world.storage.routes.get(GUILD_A, Category.PANIC)).last_error is not None:
            await asyncio.sleep(0.02)


async def test_a_rejected_packed_message_is_split_and_its_parts_delivered(push_world: PushWorld) -> None:
    push_world.fake.fail_channel(UNITS, 503)
    for ident in range(1, 6):
        await push_world.post(_status_event(ident))
    await _until_processed(push_world)
    push_world.fake.fail_channel(UNITS, None)
    push_world.fake.max_embeds = 1  # Discord now refuses any packed message with a 400
    await push_world.settle()
    assert _titles(push_world, UNITS) == [f"🔄 Unit #{ident} — Available" for ident in range(1, 6)]
    assert all(len(message.embeds) == 1 for message in push_world.fake.messages(UNITS))
    assert any(request.status == 400 for request in push_world.fake.requests_to(UNITS))
    assert await _outbox(push_world, "failed") == []


async def test_a_rejected_single_message_is_recorded_failed_not_retried(push_world: PushWorld) -> None:
    push_world.fake.inject(PANIC, 400)
    await push_world.post(envelope("EVENT_UNIT_PANIC", {"identIds": [57]}))
    await push_world.settle()
    assert [request.status for request in push_world.fake.requests_to(PANIC)] == [400]
    [failed] = await _outbox(push_world, "failed")
    assert failed.last_error is not None and "400" in failed.last_error
    # A bad message is not the channel's fault: the route shows no failure.
    assert (await push_world.storage.routes.get(GUILD_A, Category.PANIC)).last_error is None


async def test_timeouts_are_retried_and_the_nonce_prevents_a_duplicate(push_world: PushWorld) -> None:
    await push_world.restart(reopen_storage=False, sender_timeout_s=0.3)
    push_world.fake.hold_responses(PANIC)
    await push_world.post(envelope("EVENT_UNIT_PANIC", {"identIds": [57]}))
    async with asyncio.timeout(5):
        while len(push_world.fake.requests_to(PANIC)) < 2:
            await asyncio.sleep(0.02)
    push_world.fake.release(PANIC)
    await push_world.settle()
    requests = push_world.fake.requests_to(PANIC, "POST")
    assert len(requests) >= 2
    assert len({request.body["nonce"] for request in requests if request.body}) == 1
    assert len(push_world.fake.messages(PANIC)) == 1


async def test_nothing_is_lost_under_mixed_faults(push_world: PushWorld) -> None:
    push_world.fake.inject(UNITS, 429, 503, retry_after=0.2)
    push_world.fake.inject(OTHER, 503, 500)
    push_world.fake.fail_channel(PANIC, 403)
    sent = 0
    for ident in range(1, 13):
        await push_world.post(_status_event(ident))
        await push_world.post(envelope("EVENT_PAGER_REBORN", {"addresses": [f"ST{ident}"], "body": "Fire"}))
        await push_world.post(envelope("EVENT_UNIT_PANIC", {"identIds": [ident]}))
        sent += 3
    await push_world.settle()

    delivered = sum(len(push_world.fake.all_embeds(channel)) for channel in (UNITS, OTHER, PANIC))
    failed = len(await _outbox(push_world, "failed"))
    assert delivered + failed == sent
    assert delivered == 24 and failed == 12
    assert len(push_world.fake.messages(UNITS)) + len(push_world.fake.messages(OTHER)) < 24
    assert push_world.fake.exhausted_bucket_requests == []
    assert await _outbox(push_world, "pending") == []


class _SenderWithABug(DiscordPySender):
    """The real sender, except that its first call fails the way a bug would."""

    calls = 0

    async def send_message(self, channel_id: int, payload: dict[str, Any]) -> int:
        type(self).calls += 1
        if type(self).calls == 1:
            raise TypeError("a bug in the sender")
        return await super().send_message(channel_id, payload)


async def test_an_unexpected_sender_error_backs_off_instead_of_spinning(push_world: PushWorld) -> None:
    await push_world.pipeline.stop()
    push_world.pipeline = PushPipeline(
        push_world.storage, _SenderWithABug(push_world.http), delivery=FAST_DELIVERY
    )
    await push_world.pipeline.start()
    await push_world.pipeline.publish_local(GUILD_A, ev.UnitPanicEvent(ident_ids=[57]))
    await push_world.pipeline.wait_until_idle(10)
    assert _SenderWithABug.calls == 2
    assert len(push_world.fake.messages(PANIC)) == 1


def _waits(caplog: pytest.LogCaptureFixture, pattern: str) -> list[tuple[str, ...]]:
    return [
        match.groups()
        for record in caplog.records
        if record.name == "bot.push.delivery" and (match := re.search(pattern, record.getMessage()))
    ]


async def test_a_rate_limit_after_server_errors_waits_its_retry_after_and_is_not_an_error(
    push_world: PushWorld, caplog: pytest.LogCaptureFixture
) -> None:
    await push_world.restart(reopen_storage=False, delivery=SLOWER_BACKOFF)
    caplog.set_level(logging.WARNING, logger="bot.push.delivery")
    push_world.fake.inject(PANIC, 503, 503)
    # A 429 from Cloudflare in front of Discord (no Via header), which discord.py hands to the bot.
    push_world.fake.inject(PANIC, 429, retry_after=0.6, via=False)
    push_world.fake.inject(PANIC, 503)
    await push_world.post(envelope("EVENT_UNIT_PANIC", {"identIds": [57]}))
    await push_world.settle()

    requests = push_world.fake.requests_to(PANIC, "POST")
    assert [request.status for request in requests] == [503, 503, 429, 503, 200]
    assert requests[3].at - requests[2].at >= 0.6
    errors = _waits(caplog, r"failed \(Discord server error 503\); retry (\d+) in ([\d.]+) s")
    limited = _waits(caplog, r"was rate limited \(.*\); trying again in ([\d.]+) s as asked")
    # The rate limit waits exactly what it asked for, not the error back-off (0.8 s by then) ...
    assert limited == [("0.6",)]
    # ... and is not counted: the error after it is the third (0.8 s +-20%), not a fourth (1.6 s).
    assert [int(attempt) for attempt, _ in errors] == [1, 2, 3]
    assert 0.6 <= float(errors[2][1]) <= 1.0
    [sent] = await _outbox(push_world, "sent")
    assert sent.attempts == 3
    assert len(push_world.fake.messages(PANIC)) == 1


async def test_a_rate_limited_card_edit_waits_its_retry_after_and_is_not_an_error(
    push_world: PushWorld, caplog: pytest.LogCaptureFixture
) -> None:
    await push_world.restart(reopen_storage=False, delivery=SLOWER_BACKOFF)
    call = {"callId": 311, "title": "Traffic Stop", "status": 1, "idents": [], "notes": []}
    await push_world.post(envelope("EVENT_DISPATCH_NEW", {"dispatch": call}))
    await push_world.settle()
    caplog.set_level(logging.WARNING, logger="bot.push.delivery")
    push_world.fake.inject(DISPATCH, 503)
    push_world.fake.inject(DISPATCH, 429, retry_after=0.6, via=False)
    push_world.fake.inject(DISPATCH, 503)
    await push_world.post(
        envelope("EVENT_DISPATCH_NOTE", {"callId": 311, "note": {"label": "1A-12", "content": "Driver fled"}})
    )
    await push_world.settle()

    edits = push_world.fake.requests_to(DISPATCH, "PATCH")
    assert [request.status for request in edits] == [503, 429, 503, 200]
    assert edits[2].at - edits[1].at >= 0.6
    errors = _waits(caplog, r"editing live card \d+ failed \(.*\); retry in ([\d.]+) s")
    limited = _waits(caplog, r"editing live card \d+ was rate limited \(.*\); trying again in ([\d.]+) s")
    assert limited == [("0.6",)]
    # First error 0.2 s, second 0.4 s (+-20%): the rate limit in between did not count as an error.
    assert len(errors) == 2
    assert float(errors[0][0]) <= 0.3
    assert 0.3 <= float(errors[1][0]) <= 0.5
    [message] = push_world.fake.messages(DISPATCH)
    assert "Driver fled" in str(message.embeds)
