"""The push pipeline's storage: one object over its tables (inbox, outbox, live cards, unit names) for the
work that spans them: a processor batch, giving up on a channel, housekeeping, health checks.

Each table has its module and class (``inbox.Inbox``, ``outbox.Outbox``, ``cards.CardStore``,
``unit_names.UnitNames``), reached as ``store.inbox``, ``store.outbox``, ``store.cards``, ``store.unit_names``.
Every write is atomic on its own (one statement through :meth:`Database.write`, or a
:meth:`Database.transaction`), and a caller can wrap several calls in :meth:`PushStore.atomic` to have them
commit (or vanish) together. The processor writes everything a batch of inbox rows caused (outbox rows, card
changes, unit names, the rows marked processed) with :meth:`PushStore.apply_changes` in one transaction,
which is what makes a crash at any point safe. Writes use as few round trips to SQLite's thread as they can:
the connection is shared, and a push event's acknowledgement waits for its turn on it.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field

import aiosqlite

from bot.storage.cards import CardStore, CardUpdate, NewCard, StaleCardError, insert_cards, update_card_states
from bot.storage.db import Database
from bot.storage.inbox import MARK_PROCESSED, Inbox
from bot.storage.outbox import Outbox, OutboxDraft, insert_drafts
from bot.storage.unit_names import UnitNames, upsert_unit_names
from bot.timing import WallClock

_NONCE_PREFIX_KEY = "nonce_prefix"
_WRITE_PROBE_KEY = "write_probe"


@dataclass(slots=True)
class PushChanges:
    """Everything a batch of processed events changes, written together by :meth:`PushStore.apply_changes`.

    Order matters where it shows: outbox rows are written in list order (a channel's messages go out by id).
    """

    new_cards: list[NewCard] = field(default_factory=list)
    card_updates: list[CardUpdate] = field(default_factory=list)
    outbox: list[OutboxDraft] = field(default_factory=list)
    unit_names: dict[str, dict[int, str]] = field(default_factory=dict)
    processed: list[tuple[int, str]] = field(default_factory=list)


class PushStore:
    def __init__(self, db: Database, *, clock: WallClock = time.time) -> None:
        self._db = db
        self._clock = clock
        self.inbox = Inbox(db)
        self.outbox = Outbox(db, clock=clock)
        self.cards = CardStore(db)
        self.unit_names = UnitNames(db, clock=clock)

    def atomic(self) -> AbstractAsyncContextManager[aiosqlite.Connection]:
        """One transaction around several calls (nested calls become savepoints)."""
        return self._db.transaction()

    async def yield_to_inbox(
        self, max_wait_s: float, *, quiet_s: float = 0.0, interrupt: asyncio.Event | None = None
    ) -> bool:
        """Background work between steps: let inbox commits (acknowledgements) go first, for up to
        ``max_wait_s``; with ``quiet_s``, until none has happened for that long; not much longer once
        ``interrupt`` is set. True if it waited."""
        return await self._db.yield_to_urgent_writes(max_wait_s, quiet_s=quiet_s, interrupt=interrupt)

    async def ping(self) -> None:
        """Raise if the database cannot answer (health check)."""
        await self._db.fetch_all("SELECT 1")

    async def write_probe(self) -> None:
        """One small committed write (health check): raises, and is recorded as failing, while writes fail."""
        await self._db.write(
            "INSERT INTO push_meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (_WRITE_PROBE_KEY, repr(self._clock())),
        )

    async def nonce_prefix(self) -> str:
        """Random text unique to this database, so two databases behind one bot never share a nonce."""
        async with self._db.transaction() as conn:
            rows = list(
                await conn.execute_fetchall("SELECT value FROM push_meta WHERE key = ?", (_NONCE_PREFIX_KEY,))
            )
            if rows:
                return str(rows[0]["value"])
            prefix = secrets.token_hex(4)
            await conn.execute(
                "INSERT INTO push_meta (key, value) VALUES (?, ?)", (_NONCE_PREFIX_KEY, prefix)
            )
            return prefix

    async def fail_channel(self, channel_id: int, error: str) -> int:
        """Give up on everything owed to a channel Discord refuses us (deleted, or permissions lost).

        Returns how many queued messages were dropped; live cards keep their state but stop owing edits.
        """
        async with self._db.transaction():
            dropped = await self.outbox.fail_channel(channel_id, error)
            await self.cards.give_up_channel(channel_id, error)
            return dropped

    async def apply_changes(self, changes: PushChanges) -> None:
        """Write everything a batch of events changed, in one transaction (or the caller's), in few round trips:
        new cards, card states, outbox rows (in order), unit names, and the inbox rows marked processed.

        Raises :class:`StaleCardError` (rolling everything back) if a card to update no longer exists.
        """
        now = self._clock()
        async with self._db.transaction() as conn:
            new_card_ids = await insert_cards(conn, changes.new_cards, now)
            # The rest are independent of each other: sent together, they cost one round trip, not four.
            statements: list[Awaitable[aiosqlite.Cursor]] = []
            if changes.card_updates:
                statements.append(update_card_states(conn, changes.card_updates, now))
            if changes.outbox:
                statements.append(insert_drafts(conn, changes.outbox, new_card_ids, now))
            names = [
                (community_id, ident, label, now)
                for community_id, learnt in changes.unit_names.items()
                for ident, label in learnt.items()
            ]
            if names:
                statements.append(upsert_unit_names(conn, names))
            if changes.processed:
                statements.append(
                    conn.executemany(
                        MARK_PROCESSED, [(now, outcome, inbox_id) for inbox_id, outcome in changes.processed]
                    )
                )
            cursors = await asyncio.gather(*statements)
            if changes.card_updates and cursors[0].rowcount != len(changes.card_updates):
                # Housekeeping deleted a card between the caller's read and this write.
                raise StaleCardError("a live card changed by this batch no longer exists")

    async def prune(self, *, finished_before: float, cards_before: float) -> int:
        """Delete processed inbox rows and finished outbox rows older than ``finished_before``, and
        finished cards untouched since ``cards_before``; returns how many rows went."""
        async with self._db.transaction():
            removed = await self.inbox.prune(finished_before)
            removed += await self.outbox.prune(finished_before)
            removed += await self.cards.prune(cards_before)
            return removed
