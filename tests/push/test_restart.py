"""A stop or crash at any point loses nothing and duplicates nothing: everything pending is in SQLite."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bot.config import ServerSettings
from bot.push.discord_sender import DiscordPySender
from bot.push.pipeline import PushPipeline
from bot.storage import Storage
from bot.storage.db import DatabaseUnavailableError
from bot.storage.models import Category
from tests.push.conftest import GUILD_A, PushWorld, channel_of, envelope

UNITS = channel_of(GUILD_A, Category.UNITS)
PANIC = channel_of(GUILD_A, Category.PANIC)
DISPATCH = channel_of(GUILD_A, Category.DISPATCH)


def _status_event(ident: int) -> dict[str, Any]:
    return envelope("EVENT_UNIT_STATUS", {"identIds": [ident], "status": 2})


def _expected_titles(count: int) -> list[str]:
    return [f"🔄 Unit #{ident} — Available" for ident in range(1, count + 1)]


async def _until(predicate: Any, timeout_s: float = 10.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not await predicate():
            await asyncio.sleep(0.02)


async def test_deliveries_pending_at_stop_are_sent_exactly_once_after_restart(push_world: PushWorld) -> None:
    push_world.fake.fail_channel(UNITS, 503)
    for ident in range(1, 11):
        await push_world.post(_status_event(ident))

    async def processed() -> bool:
        return await push_world.pipeline.store.inbox.depth() == 0

    await _until(processed)
    await push_world.restart()  # stops the pipeline with 10 deliveries owed, reopens the database file
    assert push_world.fake.all_embeds(UNITS) == []
    push_world.fake.fail_channel(UNITS, None)
    await push_world.settle()
    assert [embed["title"] for embed in push_world.fake.all_embeds(UNITS)] == _expected_titles(10)


async def test_events_accepted_but_not_processed_before_a_stop_are_delivered_after_it(
    push_world: PushWorld,
) -> None:
    """Acknowledged means stored: a listener without running loops (a crash right after the commit)."""
    await push_world.pipeline.stop()
    listener_only = push_world.build_pipeline()
    server = listener_only.create_server(ServerSettings(host="127.0.0.1", port=0))
    await server.start()
    try:
        url = server.url
        for ident in range(1, 6):
            async with push_world.session.post(
                url + "/sonorancad/event", json=_status_event(ident)
            ) as response:
                assert response.status == 200
    finally:
        await server.stop()
    assert push_world.fake.requests_to(UNITS) == []

    await push_world.storage.close()
    push_world.storage = await Storage.open(push_world.db_path, push_world.secret_key)
    push_world.pipeline = push_world.build_pipeline()
    await push_world.pipeline.start()
    await push_world.settle()
    assert [embed["title"] for embed in push_world.fake.all_embeds(UNITS)] == _expected_titles(5)


async def test_a_reply_lost_in_a_crash_does_not_duplicate_the_message(push_world: PushWorld) -> None:
    """Discord stored the message but the bot died before reading the answer: the resend carries the same
    nonce with enforce_nonce, and Discord answers with the message it already has."""
    push_world.fake.hold_responses(PANIC)
    await push_world.post(envelope("EVENT_UNIT_PANIC", {"identIds": [57]}))

    async def stored() -> bool:
        return len(push_world.fake.messages(PANIC)) == 1

    await _until(stored)
    await push_world.pipeline.stop()  # cancels the request whose answer is being held back
    push_world.fake.release(PANIC)
    await push_world.restart(reopen_storage=True)
    await push_world.settle()

    posts = push_world.fake.requests_to(PANIC, "POST")
    assert len(posts) == 2
    nonces = {request.body["nonce"] for request in posts if request.body}
    assert len(nonces) == 1 and len(next(iter(nonces))) <= 25
    assert all(request.body and request.body["enforce_nonce"] is True for request in posts)
    [message] = push_world.fake.messages(PANIC)
    rows = await push_world.pipeline.store.outbox.rows(guild_id=GUILD_A, status="sent")
    assert [row.message_id for row in rows] == [message.id]


async def test_a_packed_message_is_resent_as_the_same_message_after_restart(push_world: PushWorld) -> None:
    """Which rows form a message is fixed before sending, so a resend cannot grow and swallow newer rows."""
    push_world.fake.fail_channel(UNITS, 503)
    for ident in range(1, 4):
        await push_world.post(_status_event(ident))

    async def attempted() -> bool:
        return len(push_world.fake.requests_to(UNITS)) >= 2

    await _until(attempted)
    await push_world.pipeline.stop()
    first_attempt = push_world.fake.requests_to(UNITS)[0].body
    assert first_attempt is not None
    push_world.fake.fail_channel(UNITS, None)
    await push_world.restart()
    for ident in range(4, 8):
        await push_world.post(_status_event(ident))
    await push_world.settle()
    messages = push_world.fake.messages(UNITS)
    assert messages[0].embeds == first_attempt["embeds"]
    assert messages[0].nonce == first_attempt["nonce"]
    assert [embed["title"] for embed in push_world.fake.all_embeds(UNITS)] == _expected_titles(7)


async def test_stop_with_a_request_in_flight_returns_promptly(push_world: PushWorld) -> None:
    push_world.fake.hold_responses(PANIC)
    await push_world.post(envelope("EVENT_UNIT_PANIC", {"identIds": [57]}))

    async def arrived() -> bool:
        return len(push_world.fake.requests_to(PANIC)) == 1

    await _until(arrived)
    async with asyncio.timeout(5):  # drain_timeout_s is 1 s in these tests
        await push_world.pipeline.stop()
    push_world.fake.release(PANIC)


async def test_a_fresh_pipeline_object_on_the_same_database_shares_the_nonce_prefix(
    push_world: PushWorld,
) -> None:
    first = await push_world.pipeline.store.nonce_prefix()
    other = PushPipeline(push_world.storage, DiscordPySender(push_world.http))
    assert await other.store.nonce_prefix() == first
    await push_world.restart()
    assert await push_world.pipeline.store.nonce_prefix() == first


async def test_the_same_pipeline_object_can_be_stopped_and_started_again(push_world: PushWorld) -> None:
    await push_world.pipeline.stop()
    await push_world.pipeline.start()
    await push_world.post(envelope("EVENT_UNIT_PANIC", {"identIds": [57]}))
    await push_world.settle()
    assert len(push_world.fake.messages(PANIC)) == 1


async def test_loops_survive_a_database_hiccup(
    push_world: PushWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = push_world.pipeline.store
    tables = {"unprocessed": store.inbox, "pending_head": store.outbox}
    failures = {"unprocessed": 1, "pending_head": 1}

    def failing_once(name: str) -> Any:
        real = getattr(tables[name], name)

        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            if failures[name]:
                failures[name] -= 1
                raise DatabaseUnavailableError("database is locked")
            return await real(*args, **kwargs)

        return wrapper

    for name in failures:
        monkeypatch.setattr(tables[name], name, failing_once(name))
    await push_world.post(envelope("EVENT_UNIT_PANIC", {"identIds": [57]}))
    await push_world.settle()
    assert failures == {"unprocessed": 0, "pending_head": 0}
    assert len(push_world.fake.messages(PANIC)) == 1


async def test_started_before_discord_login_events_are_stored_and_wait_for_delivery(
    push_world: PushWorld,
) -> None:
    # What the process does while it cannot log in to Discord yet: listener and processing, no delivery.
    await push_world.pipeline.stop()
    push_world.pipeline = push_world.build_pipeline()
    await push_world.pipeline.start(deliver=False)

    status, answer, _ = await push_world.post(envelope("EVENT_UNIT_PANIC", {"identIds": [57]}))
    assert (status, answer["status"]) == (200, "accepted")

    async def processed_into_the_outbox() -> bool:
        stats = await push_world.pipeline.store.outbox.stats()
        return await push_world.pipeline.store.inbox.depth() == 0 and stats.depth == 2  # guilds A and B

    await _until(processed_into_the_outbox)
    push_world.pipeline.wake()
    await asyncio.sleep(0.2)
    assert push_world.fake.requests == []  # nothing is sent before the process is logged in

    await push_world.pipeline.start_delivery()
    await push_world.settle()
    [message] = push_world.fake.messages(PANIC)
    assert message.embeds[0]["title"] == "🚨 PANIC — Unit #57"
