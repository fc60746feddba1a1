"""The processor takes the inbox a batch at a time: one transaction per batch, a bug undone row by row, card
changes coalesced in memory, and acknowledgements served first while the listener is busy (but never for long)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

import bot.push.processor as processor_module
from bot.cad import events as ev
from bot.cards.state import DispatchCardState, apply_dispatch_event
from bot.push.metrics import PushMetrics
from bot.push.processor import PushProcessor
from bot.push.unit_directory import UnitDirectory
from bot.storage import Storage
from bot.storage.inbox import InboxEntry
from bot.storage.models import Category
from bot.storage.push_store import PushStore

GUILD = 111_000_000_000_000_001
COMMUNITY = "4711"
DISPATCH_CHANNEL = 1_003
UNITS_CHANNEL = 1_004
PANIC_CHANNEL = 1_005


@pytest.fixture
async def storage(tmp_path: Path) -> AsyncIterator[Storage]:
    opened = await Storage.open(tmp_path / "batches.sqlite3", Fernet.generate_key().decode())
    await opened.routes.set_channel(GUILD, Category.DISPATCH, DISPATCH_CHANNEL)
    await opened.routes.set_channel(GUILD, Category.UNITS, UNITS_CHANNEL)
    await opened.routes.set_channel(GUILD, Category.PANIC, PANIC_CHANNEL)
    try:
        yield opened
    finally:
        await opened.close()


def _processor(storage: Storage, **options: Any) -> tuple[PushProcessor, PushStore, PushMetrics]:
    store = PushStore(storage.db)
    metrics = PushMetrics()
    processor = PushProcessor(
        storage, store, UnitDirectory(store.unit_names), metrics, on_queued=lambda: None, **options
    )
    return processor, store, metrics


def _entry(type_: str, data: dict[str, Any] | list[Any], *, received_at: float | None = None) -> InboxEntry:
    return InboxEntry(
        received_at=time.time() if received_at is None else received_at,
        event_type=type_,
        community_id=COMMUNITY,
        guild_ids=(GUILD,),
        body={"type": type_, "data": data},
    )


def _new_call(call_id: int) -> InboxEntry:
    return _entry(
        "EVENT_DISPATCH_NEW",
        {"dispatch": {"callId": call_id, "title": f"Call {call_id}", "status": 1, "idents": [], "notes": []}},
    )


def _note(call_id: int, text: str) -> InboxEntry:
    return _entry("EVENT_DISPATCH_NOTE", {"callId": call_id, "note": {"label": "1A-12", "content": text}})


def _processed(metrics: PushMetrics, type_: str, outcome: str) -> float:
    value = metrics.registry.get_sample_value(
        "sonoran_push_events_processed_total", {"type": type_, "outcome": outcome}
    )
    return value or 0.0


async def test_one_batch_coalesces_card_changes_and_undoes_only_the_row_that_hit_a_bug(
    storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_on_unknown_calls(state: Any, event: ev.PushEvent, now: Any) -> Any:
        if isinstance(event, ev.DispatchClosedEvent) and state is None:
            raise RuntimeError("reducer bug")
        if isinstance(event, ev.DispatchNewEvent) and event.dispatch.call_id == 999:
            raise RuntimeError("reducer bug")
        return apply_dispatch_event(state, event, now)

    monkeypatch.setattr(processor_module, "apply_dispatch_event", broken_on_unknown_calls)
    processor, store, metrics = _processor(storage)
    await store.inbox.add(
        [
            _new_call(311),
            _note(311, "Driver fled"),
            # Closes 311, then fails on 999: the closing of 311 must be undone with the rest of this row.
            _entry("EVENT_DISPATCH_CLOSED", {"callIds": [311, 999]}),
            # Starts card 500 (and queues its post), then fails on 999: neither may remain.
            _entry(
                "EVENT_DISPATCH_NEW",
                [
                    {"dispatch": {"callId": call_id, "title": "Two at once", "status": 1, "idents": []}}
                    for call_id in (500, 999)
                ],
            ),
            _entry("EVENT_UNIT_STATUS", {"identIds": [57], "status": 2}),
            _note(311, "In custody"),
        ]
    )

    assert await processor.process_pending() == 6
    assert await store.inbox.depth() == 0
    assert await store.cards.get(GUILD, "dispatch", 500) is None
    card = await store.cards.get(GUILD, "dispatch", 311)
    assert card is not None
    state = DispatchCardState.model_validate(card.state)
    assert [note.content for note in state.notes] == ["Driver fled", "In custody"]
    assert not state.closed and not card.finished
    # Created and changed twice in one batch: written once, as the card its post will render.
    assert card.version == 1
    outbox = await store.outbox.rows()
    assert [(row.channel_id, row.card_id) for row in outbox] == [
        (DISPATCH_CHANNEL, card.id),
        (UNITS_CHANNEL, None),
    ]
    assert _processed(metrics, "EVENT_DISPATCH_CLOSED", "error") == 1
    assert _processed(metrics, "EVENT_DISPATCH_NEW", "posted") == 1
    assert _processed(metrics, "EVENT_DISPATCH_NEW", "error") == 1
    assert _processed(metrics, "EVENT_DISPATCH_NOTE", "posted") == 2
    assert _processed(metrics, "EVENT_UNIT_STATUS", "posted") == 1


async def test_changes_to_a_posted_card_in_one_batch_make_one_write_that_owes_one_edit_per_change(
    storage: Storage,
) -> None:
    processor, store, _ = _processor(storage)
    await store.inbox.add([_new_call(311)])
    assert await processor.process_pending() == 1
    card = await store.cards.get(GUILD, "dispatch", 311)
    assert card is not None
    await store.cards.shown(card.id, card.version, message_id=4242)
    await store.inbox.add([_note(311, "one"), _note(311, "two"), _note(311, "three")])

    assert await processor.process_pending() == 3
    changed = await store.cards.get(GUILD, "dispatch", 311)
    assert changed is not None
    assert [note.content for note in DispatchCardState.model_validate(changed.state).notes] == [
        "one",
        "two",
        "three",
    ]
    assert (changed.version, changed.rendered_version) == (card.version + 3, card.version)
    # An edit is owed, not a new post.
    assert [row.card_id for row in await store.outbox.rows()] == [card.id]
    assert [due.id for due in await store.cards.due_edits(DISPATCH_CHANNEL, time.time(), 10)] == [card.id]


async def test_a_failed_commit_leaves_the_whole_batch_for_the_next_try(
    storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    processor, store, _ = _processor(storage)
    await store.inbox.add([_new_call(311), _note(311, "Driver fled")])
    real_apply = store.apply_changes

    async def disk_full(changes: Any) -> None:
        async with store.atomic():
            await real_apply(changes)
            raise OSError("disk full")

    monkeypatch.setattr(store, "apply_changes", disk_full)
    with pytest.raises(OSError, match="disk full"):
        await processor.process_pending()
    assert await store.inbox.depth() == 2
    assert await store.outbox.rows() == []
    assert await store.cards.get(GUILD, "dispatch", 311) is None

    monkeypatch.undo()
    assert await processor.process_pending() == 2
    assert await store.inbox.depth() == 0
    assert len(await store.outbox.rows()) == 1


async def test_a_route_changed_between_batches_is_honoured(storage: Storage) -> None:
    processor, store, _ = _processor(storage)
    await store.inbox.add([_entry("EVENT_UNIT_STATUS", {"identIds": [1], "status": 2})])
    assert await processor.process_pending() == 1
    await storage.routes.set_channel(GUILD, Category.UNITS, 2_222)
    await store.inbox.add([_entry("EVENT_UNIT_STATUS", {"identIds": [2], "status": 2})])
    assert await processor.process_pending() == 1
    await storage.routes.set_enabled(GUILD, Category.UNITS, False)
    await store.inbox.add([_entry("EVENT_UNIT_STATUS", {"identIds": [3], "status": 2})])
    assert await processor.process_pending() == 1
    assert [row.channel_id for row in await store.outbox.rows()] == [UNITS_CHANNEL, 2_222]


async def test_while_the_listener_is_busy_a_stream_waits_for_a_quiet_moment(storage: Storage) -> None:
    processor, store, _ = _processor(storage, quiet_s=30.0, max_lag_s=30.0)
    await store.inbox.add([_entry("EVENT_UNIT_STATUS", {"identIds": [1], "status": 2})])
    # The first event after a quiet spell goes at once, however busy the listener just was.
    async with asyncio.timeout(10):
        assert await processor.process_pending() == 1

    await store.inbox.add([_entry("EVENT_UNIT_STATUS", {"identIds": [2], "status": 2})])
    waiting = asyncio.create_task(processor.process_pending())
    await asyncio.sleep(0.2)
    # An acknowledgement was committed moments ago: the next batch of the stream waits (up to quiet_s).
    assert not waiting.done()
    assert await store.inbox.depth() == 1
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting


async def test_an_event_older_than_max_lag_is_processed_however_busy_the_listener_is(
    storage: Storage,
) -> None:
    processor, store, _ = _processor(storage, quiet_s=30.0, max_lag_s=1.0)
    await store.inbox.add([_entry("EVENT_UNIT_STATUS", {"identIds": [1], "status": 2})])
    assert await processor.process_pending() == 1
    # Accepted long ago (as under a flood that kept the listener busy for longer than max_lag_s).
    await store.inbox.add([_entry("EVENT_UNIT_STATUS", {"identIds": [2], "status": 2}, received_at=0.0)])
    async with asyncio.timeout(10):
        assert await processor.process_pending() == 1
    assert await store.inbox.depth() == 0


def _status(ident: int) -> InboxEntry:
    return _entry("EVENT_UNIT_STATUS", {"identIds": [ident], "status": 2})


def _panic(ident: int = 57) -> InboxEntry:
    return _entry("EVENT_UNIT_PANIC", {"identIds": [ident], "isPanic": True})


async def test_a_panic_is_processed_ahead_of_a_routine_backlog_and_names_its_unit(storage: Storage) -> None:
    processor, store, _ = _processor(storage, batch_size=50)
    login = {"unit": {"id": 57, "data": {"unitNum": "1A-12", "name": "Jordan Reyes"}}}
    renamed = {"units": [{"id": 57, "status": 2, "data": {"unitNum": "2B-01", "name": "Jordan Reyes"}}]}
    await store.inbox.add(
        [
            _entry("EVENT_UNIT_LOGIN", login),
            *(_status(ident) for ident in range(1, 121)),
            _entry("EVENT_UNIT_UPDATE", renamed),
            _panic(57),
            _status(121),
        ]
    )

    # The first batch is the panic alone, ahead of 122 older events ...
    assert await processor.process_pending() == 1
    [alert] = await store.outbox.rows()
    assert alert.channel_id == PANIC_CHANNEL
    # ... and it names the unit as the events it overtook left it.
    assert alert.embed is not None and "2B-01 Jordan Reyes" in alert.embed["title"]
    assert await store.inbox.depth() == 123

    while await processor.process_pending():
        pass
    units = [row for row in await store.outbox.rows() if row.channel_id == UNITS_CHANNEL]
    # The backlog follows in its own order (the login, 121 status changes and the update).
    assert len(units) == 123
    assert [row.id for row in units] == sorted(row.id for row in units)
    assert units[-1].embed is not None and "#121" in units[-1].embed["title"]


async def test_an_urgent_event_cuts_short_a_routine_batch_waiting_for_the_listener(storage: Storage) -> None:
    processor, store, _ = _processor(storage, quiet_s=30.0, max_lag_s=30.0)
    await store.inbox.add([_status(1)])
    assert await processor.process_pending() == 1
    await store.inbox.add([_status(2)])
    waiting = asyncio.create_task(processor.process_pending())
    await asyncio.sleep(0.2)
    assert not waiting.done()  # a stream: it waits for the listener to go quiet (up to 30 s)

    await store.inbox.add([_panic()])
    async with asyncio.timeout(10):
        assert await waiting == 1
    # It stopped waiting and took the panic first; the routine event waits for the next batch.
    assert [row.channel_id for row in await store.outbox.rows()] == [UNITS_CHANNEL, PANIC_CHANNEL]
    assert await store.inbox.depth() == 1
