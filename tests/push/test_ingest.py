"""The pieces of accepting an event: the address throttle and the group-committing inbox writer."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from bot.push.ingest import AuthThrottle, InboxWriter, RejectionLog, StorageUnavailableError
from bot.storage import Storage
from bot.storage.db import DatabaseUnavailableError
from bot.storage.inbox import InboxEntry
from bot.storage.push_store import PushStore


class ManualClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_throttle_blocks_after_too_many_failures_then_lets_go() -> None:
    clock = ManualClock()
    throttle = AuthThrottle(max_failures=3, window_s=10.0, block_s=30.0, clock=clock)
    for _ in range(2):
        throttle.failed("203.0.113.7")
    assert throttle.retry_after("203.0.113.7") is None
    throttle.failed("203.0.113.7")
    assert throttle.retry_after("203.0.113.7") == pytest.approx(30.0)
    assert throttle.retry_after("198.51.100.1") is None
    clock.now += 20
    assert throttle.retry_after("203.0.113.7") == pytest.approx(10.0)
    clock.now += 10.5
    assert throttle.retry_after("203.0.113.7") is None


def test_throttle_forgets_failures_outside_its_window() -> None:
    clock = ManualClock()
    throttle = AuthThrottle(max_failures=3, window_s=10.0, block_s=30.0, clock=clock)
    throttle.failed("a")
    throttle.failed("a")
    clock.now += 11
    throttle.failed("a")
    assert throttle.retry_after("a") is None


def test_throttle_memory_is_bounded() -> None:
    throttle = AuthThrottle(max_failures=100, max_tracked=3, clock=ManualClock())
    for index in range(50):
        throttle.failed(f"198.51.100.{index}")
    assert len(throttle._failures) == 3


@pytest.fixture
async def push_store(tmp_path: Path) -> AsyncIterator[PushStore]:
    storage = await Storage.open(tmp_path / "ingest.sqlite3", Fernet.generate_key().decode())
    try:
        yield PushStore(storage.db)
    finally:
        await storage.close()


def _entry(number: int) -> InboxEntry:
    return InboxEntry(
        received_at=float(number),
        event_type="EVENT_UNIT_PANIC",
        community_id="4711",
        guild_ids=(1,),
        body={"type": "EVENT_UNIT_PANIC", "data": {"identIds": [number]}},
    )


async def test_concurrent_writes_share_one_commit(
    push_store: PushStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    real_add = push_store.inbox.add

    async def counting(entries: Sequence[InboxEntry]) -> list[int]:
        calls.append(len(entries))
        return await real_add(entries)

    monkeypatch.setattr(push_store.inbox, "add", counting)
    writer = InboxWriter(push_store.inbox)
    ids = await asyncio.gather(*(writer.write(_entry(number)) for number in range(20)))
    assert calls == [20]
    assert len(set(ids)) == 20
    rows = await push_store.inbox.unprocessed(100)
    assert [row.id for row in rows] == sorted(ids)
    assert [row.body["data"]["identIds"][0] for row in rows] == list(range(20))


async def test_a_request_arriving_while_the_commit_is_being_started_joins_it(
    push_store: PushStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    real_add = push_store.inbox.add

    async def counting(entries: Sequence[InboxEntry]) -> list[int]:
        calls.append(len(entries))
        return await real_add(entries)

    monkeypatch.setattr(push_store.inbox, "add", counting)
    writer = InboxWriter(push_store.inbox)

    async def one_loop_turn_later(entry: InboxEntry) -> int:
        await asyncio.sleep(0)
        return await writer.write(entry)

    ids = await asyncio.gather(writer.write(_entry(1)), one_loop_turn_later(_entry(2)))
    assert calls == [2]
    assert ids[1] == ids[0] + 1


async def test_a_failed_commit_answers_every_waiting_request(
    push_store: PushStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def failing(entries: Sequence[InboxEntry]) -> list[int]:
        raise DatabaseUnavailableError("disk I/O error")

    monkeypatch.setattr(push_store.inbox, "add", failing)
    writer = InboxWriter(push_store.inbox)
    results = await asyncio.gather(*(writer.write(_entry(n)) for n in range(5)), return_exceptions=True)
    assert all(isinstance(result, StorageUnavailableError) for result in results)


async def test_a_database_that_refuses_writes_is_one_warning_not_a_traceback_per_commit(
    push_store: PushStore, caplog: pytest.LogCaptureFixture
) -> None:
    writer = InboxWriter(push_store.inbox)
    db = push_store._db
    await db.conn.execute(
        "PRAGMA query_only = 1"
    )  # what a read-only file or a full disk looks like to a write

    with pytest.raises(StorageUnavailableError):
        await writer.write(_entry(1))

    [record] = [r for r in caplog.records if r.name == "bot.push.ingest"]
    assert record.levelno == logging.WARNING and record.exc_info is None
    assert "readonly database" in record.getMessage()


async def test_a_commit_that_fails_for_another_reason_is_logged_with_its_traceback(
    push_store: PushStore, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(entries: Sequence[InboxEntry]) -> list[int]:
        raise RuntimeError("a bug, not the disk")

    monkeypatch.setattr(push_store.inbox, "add", broken)
    writer = InboxWriter(push_store.inbox)

    with pytest.raises(StorageUnavailableError):
        await writer.write(_entry(1))

    [record] = [r for r in caplog.records if r.name == "bot.push.ingest"]
    assert record.levelno == logging.ERROR and record.exc_info is not None


async def test_later_writes_after_a_commit_get_their_own(push_store: PushStore) -> None:
    writer = InboxWriter(push_store.inbox)
    first = await writer.write(_entry(1))
    second = await writer.write(_entry(2))
    assert second == first + 1
    assert await push_store.inbox.depth() == 2


async def test_a_request_that_hangs_up_does_not_cancel_the_commit_others_wait_on(
    push_store: PushStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_add = push_store.inbox.add
    committing = asyncio.Event()
    finish = asyncio.Event()

    async def slow(entries: Sequence[InboxEntry]) -> list[int]:
        committing.set()
        await finish.wait()
        return await real_add(entries)

    monkeypatch.setattr(push_store.inbox, "add", slow)
    writer = InboxWriter(push_store.inbox)
    leaving = asyncio.create_task(writer.write(_entry(1)))
    staying = asyncio.create_task(writer.write(_entry(2)))
    await committing.wait()
    leaving.cancel()
    finish.set()
    assert await staying > 0
    with pytest.raises(asyncio.CancelledError):
        await leaving
    # Both rows were committed together; the one whose sender left was simply not acknowledged.
    assert await push_store.inbox.depth() == 2


async def test_the_refusal_summary_keeps_bounded_memory_under_an_address_spray(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="bot.push.ingest")
    log = RejectionLog(window_s=3600, max_addresses=3)
    log.refused("192.0.2.1", "unauthorized")  # logged on its own
    for number in range(2, 1002):
        log.refused(f"192.0.2.{number % 250}.{number}", "throttled")
    log.refused("192.0.2.2.2", "throttled")
    log.flush()
    first, summary = [record.getMessage() for record in caplog.records]
    assert first.startswith("push event from 192.0.2.1 refused (missing or unknown key)")
    assert summary.startswith("push listener refused 1001 more request(s) from at least 4 address(es)")
    assert "(1001 throttled after failed attempts)" in summary
    assert summary.endswith("most from 192.0.2.2.2 (2)")
    log.flush()  # nothing more to say
    assert len(caplog.records) == 2
