"""The push tables on a real SQLite file: the inbox group commit, a processor batch's changes, card and outbox
reads, housekeeping."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bot.storage import Storage
from bot.storage.cards import CardUpdate, NewCard, StaleCardError
from bot.storage.db import MIGRATIONS_DIR, Database
from bot.storage.inbox import InboxEntry
from bot.storage.models import Category, Priority
from bot.storage.outbox import OutboxDraft
from bot.storage.push_store import PushChanges, PushStore

GUILD = 111
CHANNEL = 1_001


@pytest.fixture
async def store(storage: Storage) -> PushStore:
    # Routing a category creates the guild row that cards and outbox rows belong to.
    await storage.routes.set_channel(GUILD, Category.DISPATCH, CHANNEL)
    return PushStore(storage.db, clock=lambda: 1_000.0)


def _entry(number: int) -> InboxEntry:
    return InboxEntry(
        received_at=float(number),
        event_type="EVENT_UNIT_STATUS",
        community_id="4711",
        guild_ids=(GUILD, 222),
        body={"type": "EVENT_UNIT_STATUS", "data": {"identIds": [number], "status": 2}},
    )


def _card_state(call_id: int, title: str) -> dict[str, object]:
    return {"call_id": call_id, "title": title}


async def _new_card(
    store: PushStore,
    *,
    kind: str,
    call_id: int,
    state: dict[str, object],
    finished: bool = False,
    community_id: str | None = None,
) -> int:
    """A card as the processor creates one: through a batch of changes."""
    card = NewCard(
        guild_id=GUILD,
        kind=kind,
        call_id=call_id,
        community_id=community_id,
        channel_id=CHANNEL,
        state=state,
        finished=finished,
    )
    await store.apply_changes(PushChanges(new_cards=[card]))
    created = await store.cards.get(GUILD, kind, call_id)
    assert created is not None
    return created.id


async def _change_card(store: PushStore, card_id: int, state: dict[str, object]) -> None:
    """One visible change to a card, as a processor batch writes it (an edit becomes owed)."""
    update = CardUpdate(card_id=card_id, state=state, finished=False, version_increment=1)
    await store.apply_changes(PushChanges(card_updates=[update]))


async def test_a_group_commit_stores_every_event_and_returns_ids_in_order(store: PushStore) -> None:
    assert await store.inbox.add([]) == []
    ids = await store.inbox.add([_entry(number) for number in range(1, 31)])
    assert ids == sorted(ids) and len(set(ids)) == 30
    rows = await store.inbox.unprocessed(100)
    assert [row.id for row in rows] == ids
    assert [row.body["data"]["identIds"][0] for row in rows] == list(range(1, 31))
    assert rows[0].guild_ids == (GUILD, 222)
    assert "key" not in rows[0].body


async def test_a_batch_is_written_whole_new_cards_first_so_their_posts_can_point_at_them(
    store: PushStore,
) -> None:
    [first, second] = await store.inbox.add([_entry(1), _entry(2)])
    existing = await _new_card(
        store, kind="dispatch", call_id=7, community_id="4711", state=_card_state(7, "old")
    )
    changes = PushChanges(
        new_cards=[
            NewCard(
                guild_id=GUILD,
                kind="dispatch",
                call_id=8,
                community_id="4711",
                channel_id=CHANNEL,
                state=_card_state(8, "new"),
                finished=False,
            )
        ],
        card_updates=[
            CardUpdate(card_id=existing, state=_card_state(7, "changed"), finished=True, version_increment=3)
        ],
        outbox=[
            OutboxDraft(
                guild_id=GUILD, channel_id=CHANNEL, category="units", accepted_at=1.0, embed={"title": "A"}
            ),
            OutboxDraft(
                guild_id=GUILD,
                channel_id=CHANNEL,
                category="dispatch",
                accepted_at=2.0,
                new_card=(GUILD, "dispatch", 8),
            ),
            OutboxDraft(
                guild_id=GUILD, channel_id=CHANNEL, category="units", accepted_at=2.0, embed={"title": "B"}
            ),
        ],
        unit_names={"4711": {57: "1A-12 Jordan Reyes"}},
        processed=[(first, "posted"), (second, "no_route")],
    )
    await store.apply_changes(changes)

    created = await store.cards.get(GUILD, "dispatch", 8)
    assert created is not None and created.state["title"] == "new" and created.version == 1
    changed = await store.cards.get_by_id(existing)
    assert changed is not None
    assert (changed.state["title"], changed.finished, changed.version) == ("changed", True, 4)
    outbox = await store.outbox.rows()
    assert [(row.embed, row.card_id) for row in outbox] == [
        ({"title": "A"}, None),
        (None, created.id),
        ({"title": "B"}, None),
    ]
    assert await store.unit_names.get("4711") == {57: "1A-12 Jordan Reyes"}
    assert await store.inbox.unprocessed(10) == []


async def test_a_batch_that_updates_a_vanished_card_writes_nothing(
    store: PushStore, storage: Storage
) -> None:
    [inbox_id] = await store.inbox.add([_entry(1)])
    card_id = await _new_card(
        store, kind="dispatch", call_id=7, community_id="4711", state=_card_state(7, "old"), finished=True
    )
    # Housekeeping deletes the card after the processor read it.
    assert await store.prune(finished_before=0.0, cards_before=2_000.0) == 1
    changes = PushChanges(
        card_updates=[
            CardUpdate(card_id=card_id, state=_card_state(7, "new"), finished=False, version_increment=1)
        ],
        outbox=[
            OutboxDraft(guild_id=GUILD, channel_id=CHANNEL, category="units", accepted_at=1.0, embed={"t": 1})
        ],
        processed=[(inbox_id, "posted")],
    )
    with pytest.raises(StaleCardError):
        await store.apply_changes(changes)
    assert await store.outbox.rows() == []
    assert [row.id for row in await store.inbox.unprocessed(10)] == [inbox_id]
    assert not storage.db.conn.in_transaction


async def test_card_snapshots_say_whether_a_post_is_pending_and_skip_missing_cards(store: PushStore) -> None:
    posted = await _new_card(store, kind="dispatch", call_id=1, state=_card_state(1, "posted"))
    waiting = await _new_card(store, kind="911", call_id=2, state={"call_id": 2})
    await store.cards.shown(posted, 1, message_id=555)
    await store.outbox.add(
        guild_id=GUILD, channel_id=CHANNEL, category="911", accepted_at=1.0, card_id=waiting
    )

    snapshots = await store.cards.snapshots(
        [(GUILD, "dispatch", 1), (GUILD, "911", 2), (GUILD, "dispatch", 99)]
    )
    assert {(snapshot.card.id, snapshot.post_pending) for snapshot in snapshots} == {
        (posted, False),
        (waiting, True),
    }
    assert [snapshot.card.id for snapshot in await store.cards.unfinished_snapshots(GUILD, "dispatch")] == [
        posted
    ]


def test_an_outbox_draft_carries_exactly_one_thing() -> None:
    with pytest.raises(ValueError, match="either an embed or a card"):
        OutboxDraft(guild_id=GUILD, channel_id=CHANNEL, category="units", accepted_at=1.0)
    with pytest.raises(ValueError, match="either an embed or a card"):
        OutboxDraft(
            guild_id=GUILD, channel_id=CHANNEL, category="units", accepted_at=1.0, embed={}, card_id=1
        )


async def test_rows_queued_before_the_upgrade_get_their_categorys_priority(tmp_path: Path) -> None:
    """A database from before delivery priorities, with deliveries still owed, is upgraded in place."""
    before = tmp_path / "migrations-0003"
    before.mkdir()
    for migration in sorted(MIGRATIONS_DIR.glob("*.sql"))[:3]:
        shutil.copy(migration, before / migration.name)
    path = tmp_path / "old.sqlite3"
    async with await Database.open(path, migrations_dir=before) as old, old.transaction() as conn:
        await conn.execute("INSERT INTO guild_config (guild_id, updated_at) VALUES (?, 'then')", (GUILD,))
        for category, status in (
            ("units", "pending"),
            ("panic", "pending"),
            ("911", "pending"),
            ("panic", "sent"),
        ):
            await conn.execute(
                "INSERT INTO push_outbox (guild_id, channel_id, category, embed, accepted_at, created_at, status) "
                "VALUES (?, ?, ?, '{}', 1.0, 1.0, ?)",
                (GUILD, CHANNEL, category, status),
            )

    async with await Database.open(path) as db:
        store = PushStore(db)
        rows = await store.outbox.rows()
        assert [(row.category, row.priority) for row in rows if row.status == "pending"] == [
            ("units", Priority.ROUTINE),
            ("panic", Priority.PANIC),
            ("911", Priority.CALLS_911),
        ]
        head = await store.outbox.pending_head(CHANNEL, 10)
        assert [row.category for row in head.rows] == ["panic"]
        assert head.oldest_id == rows[0].id


async def test_card_edits_are_owed_panic_alerts_then_911_calls_first_then_longest_waiting(
    store: PushStore,
) -> None:
    cards = {}
    for kind, call_id in (("dispatch", 1), ("911", 2), ("dispatch", 3), ("panic", 4)):
        card_id = await _new_card(store, kind=kind, call_id=call_id, state={"call_id": call_id})
        await store.cards.shown(card_id, 1, message_id=500 + call_id)
        await _change_card(store, card_id, {"call_id": call_id, "changed": True})
        cards[call_id] = card_id

    due = await store.cards.due_edits(CHANNEL, 2_000.0, 10)
    # A /panic alert's edit (the CAD did not confirm it) is as urgent as the alert itself.
    assert [card.id for card in due] == [cards[4], cards[2], cards[1], cards[3]]
    assert [card.priority for card in due] == [
        Priority.PANIC,
        Priority.CALLS_911,
        Priority.DISPATCH,
        Priority.DISPATCH,
    ]
    lanes = await store.outbox.due_lanes()
    assert [(lane.channel_id, lane.lane, lane.priority) for lane in lanes] == [
        (CHANNEL, "edit", Priority.PANIC)
    ]


async def test_card_edits_owed_counts_cards_discord_shows_out_of_date(store: PushStore) -> None:
    card_id = await _new_card(store, kind="dispatch", call_id=7, state={"call_id": 7})
    assert await store.cards.edits_owed() == 0  # not posted yet: a post is owed, not an edit
    await store.cards.shown(card_id, 1, message_id=900)
    assert await store.cards.edits_owed() == 0
    await _change_card(store, card_id, {"call_id": 7, "changed": True})
    assert await store.cards.edits_owed() == 1
    await store.cards.shown(card_id, 2, message_id=900)
    assert await store.cards.edits_owed() == 0
