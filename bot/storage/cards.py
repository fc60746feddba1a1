"""Live-card rows (``push_card``): one per (guild, kind, call), the call's state as the card shows it, and
which version of that state Discord shows.

A card's state changes with every event about its call (``version``); Discord's message shows
``rendered_version``. An *edit is owed* while the message exists and the stored state is newer; the delivery
worker pays those debts from :meth:`CardStore.due_edits`. The first post of a card is an outbox row.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiosqlite

from bot.storage._sql import ROWS_PER_STATEMENT, StoredRow, clip, dumps, value_rows
from bot.storage.db import Database
from bot.storage.models import Priority, delivery_priority

# (guild_id, kind, call_id): a card's identity before it has an id.
StoredCardKey = tuple[int, str, int]

CARD_COLUMNS = (
    "id, guild_id, kind, call_id, community_id, channel_id, state, version, rendered_version, message_id, "
    "finished, attempts, next_attempt_at, last_error, created_at, updated_at"
)
# A card edit is owed while its message exists and the stored state is newer than what Discord shows.
EDIT_OWED = "message_id IS NOT NULL AND version > rendered_version"
# A card's priority in SQL, from the same function as everything else's (the kinds are push_card's CHECK list).
CARD_PRIORITY = (
    "CASE kind "
    + " ".join(f"WHEN '{kind}' THEN {int(delivery_priority(kind))}" for kind in ("panic", "911", "dispatch"))
    + f" ELSE {int(Priority.ROUTINE)} END"
)
_POST_PENDING = (
    "EXISTS (SELECT 1 FROM push_outbox AS o WHERE o.card_id = push_card.id AND o.status = 'pending')"
)
_INSERT_CARD = (
    "INSERT INTO push_card "
    "(guild_id, kind, call_id, community_id, channel_id, state, finished, created_at, updated_at)"
)
# The retry schedule is kept: a burst of changes during an outage must not become a burst of requests.
_UPDATE_CARD_STATE = (
    "UPDATE push_card SET state = ?, finished = ?, updated_at = ?, version = version + ? WHERE id = ?"
)


class StaleCardError(Exception):
    """A card the caller read is gone (deleted by housekeeping meanwhile); read again and redo the work."""


class CardRow(StoredRow):
    id: int
    guild_id: int
    kind: str
    call_id: int
    community_id: str | None
    channel_id: int
    state: dict[str, Any]
    version: int
    rendered_version: int
    message_id: int | None
    finished: bool
    attempts: int
    next_attempt_at: float
    last_error: str | None
    created_at: float
    updated_at: float

    @property
    def priority(self) -> Priority:
        """A card's posts and edits are as urgent as its call's category (a 911 call's card before dispatch)."""
        return delivery_priority(self.kind)


class CardSnapshot(StoredRow):
    """A card as the processor needs it: the row, and whether a post of it still waits in the outbox."""

    card: CardRow
    post_pending: bool


@dataclass(frozen=True, slots=True)
class NewCard:
    guild_id: int
    kind: str
    call_id: int
    community_id: str | None
    channel_id: int
    state: Mapping[str, Any]
    finished: bool


@dataclass(frozen=True, slots=True)
class CardUpdate:
    """A card's new state; ``version_increment`` counts the visible changes (each makes an edit owed)."""

    card_id: int
    state: Mapping[str, Any]
    finished: bool
    version_increment: int


def card_row(row: aiosqlite.Row) -> CardRow:
    return CardRow(
        id=row["id"],
        guild_id=row["guild_id"],
        kind=row["kind"],
        call_id=row["call_id"],
        community_id=row["community_id"],
        channel_id=row["channel_id"],
        state=json.loads(row["state"]),
        version=row["version"],
        rendered_version=row["rendered_version"],
        message_id=row["message_id"],
        finished=bool(row["finished"]),
        attempts=row["attempts"],
        next_attempt_at=row["next_attempt_at"],
        last_error=row["last_error"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


async def insert_cards(
    conn: aiosqlite.Connection, cards: Sequence[NewCard], now: float
) -> dict[StoredCardKey, int]:
    """Insert new cards inside the caller's transaction; their ids by key."""
    ids: dict[StoredCardKey, int] = {}
    for start in range(0, len(cards), ROWS_PER_STATEMENT):
        chunk = cards[start : start + ROWS_PER_STATEMENT]
        parameters: list[Any] = []
        for card in chunk:
            parameters += (
                card.guild_id,
                card.kind,
                card.call_id,
                card.community_id,
                card.channel_id,
                dumps(dict(card.state)),
                int(card.finished),
                now,
                now,
            )
        rows = await conn.execute_fetchall(
            f"{_INSERT_CARD} VALUES {value_rows(len(chunk), 9)} RETURNING id, guild_id, kind, call_id",
            parameters,
        )
        ids.update(
            ((int(row["guild_id"]), str(row["kind"]), int(row["call_id"])), int(row["id"])) for row in rows
        )
    return ids


def update_card_states(
    conn: aiosqlite.Connection, updates: Sequence[CardUpdate], now: float
) -> Awaitable[aiosqlite.Cursor]:
    """Store new card states inside the caller's transaction, to be awaited with the batch's other statements
    (the cursor's rowcount says how many of the cards still existed)."""
    return conn.executemany(
        _UPDATE_CARD_STATE,
        [
            (dumps(dict(update.state)), int(update.finished), now, update.version_increment, update.card_id)
            for update in updates
        ],
    )


class CardStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, guild_id: int, kind: str, call_id: int) -> CardRow | None:
        row = await self._db.fetch_one(
            f"SELECT {CARD_COLUMNS} FROM push_card WHERE guild_id = ? AND kind = ? AND call_id = ?",
            (guild_id, kind, call_id),
        )
        return None if row is None else card_row(row)

    async def get_by_id(self, card_id: int) -> CardRow | None:
        row = await self._db.fetch_one(f"SELECT {CARD_COLUMNS} FROM push_card WHERE id = ?", (card_id,))
        return None if row is None else card_row(row)

    async def unfinished(self, guild_id: int, kind: str) -> list[CardRow]:
        """A guild's cards of one kind whose call is still open, oldest first."""
        rows = await self._db.fetch_all(
            f"SELECT {CARD_COLUMNS} FROM push_card WHERE guild_id = ? AND kind = ? AND finished = 0 "
            "ORDER BY id",
            (guild_id, kind),
        )
        return [card_row(row) for row in rows]

    async def snapshots(self, keys: Collection[StoredCardKey]) -> list[CardSnapshot]:
        """The cards with these keys (missing ones are left out), each with whether its post is pending."""
        snapshots: list[CardSnapshot] = []
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), ROWS_PER_STATEMENT):
            chunk = unique[start : start + ROWS_PER_STATEMENT]
            rows = await self._db.fetch_all(
                # A join, not a row-value IN: SQLite scans the whole table for the latter.
                f"WITH wanted (guild_id, kind, call_id) AS (VALUES {value_rows(len(chunk), 3)}) "
                f"SELECT {CARD_COLUMNS}, {_POST_PENDING} AS post_pending "
                "FROM wanted JOIN push_card USING (guild_id, kind, call_id)",
                [value for key in chunk for value in key],
            )
            snapshots += (
                CardSnapshot(card=card_row(row), post_pending=bool(row["post_pending"])) for row in rows
            )
        return snapshots

    async def unfinished_snapshots(self, guild_id: int, kind: str) -> list[CardSnapshot]:
        """A guild's unfinished cards of one kind, oldest first, each with whether its post is pending."""
        rows = await self._db.fetch_all(
            f"SELECT {CARD_COLUMNS}, {_POST_PENDING} AS post_pending FROM push_card "
            "WHERE guild_id = ? AND kind = ? AND finished = 0 ORDER BY id",
            (guild_id, kind),
        )
        return [CardSnapshot(card=card_row(row), post_pending=bool(row["post_pending"])) for row in rows]

    async def edits_owed(self) -> int:
        """Live cards whose latest state Discord does not show yet (an edit is owed, now or after a back-off)."""
        row = await self._db.fetch_one(f"SELECT COUNT(*) FROM push_card WHERE {EDIT_OWED}")
        return 0 if row is None else int(row[0])

    async def due_edits(self, channel_id: int, now: float, limit: int) -> list[CardRow]:
        """Cards of the channel owing an edit now, most urgent kind first (panic alerts, 911 calls, dispatch), then
        longest waiting first."""
        rows = await self._db.fetch_all(
            f"SELECT {CARD_COLUMNS} FROM push_card WHERE channel_id = ? AND {EDIT_OWED} "
            f"AND next_attempt_at <= ? ORDER BY {CARD_PRIORITY}, updated_at, id LIMIT ?",
            (channel_id, now, limit),
        )
        return [card_row(row) for row in rows]

    async def shown(self, card_id: int, rendered_version: int, message_id: int) -> None:
        """Discord now shows ``rendered_version`` of the card in ``message_id``."""
        await self._db.write(
            "UPDATE push_card SET message_id = ?, rendered_version = MAX(rendered_version, ?), "
            "attempts = 0, next_attempt_at = 0, last_error = NULL WHERE id = ?",
            (message_id, rendered_version, card_id),
        )

    async def retry(
        self, card_id: int, error: str, next_attempt_at: float, *, failed_attempt: bool = True
    ) -> None:
        """Edit the card again at ``next_attempt_at``; ``failed_attempt`` False for a wait the server asked for
        (a rate limit), which does not lengthen later back-offs."""
        await self._db.write(
            "UPDATE push_card SET attempts = attempts + ?, last_error = ?, next_attempt_at = ? WHERE id = ?",
            (int(failed_attempt), clip(error), next_attempt_at, card_id),
        )

    async def give_up(self, card_id: int, error: str) -> None:
        """Stop owing edits for the card's current version (a later change will try again)."""
        await self._db.write(
            "UPDATE push_card SET rendered_version = version, last_error = ?, attempts = 0, "
            "next_attempt_at = 0 WHERE id = ?",
            (clip(error), card_id),
        )

    async def message_lost(self, card_id: int) -> None:
        """The card's message was deleted: forget it, so the next post makes a new one."""
        await self._db.write(
            "UPDATE push_card SET message_id = NULL, rendered_version = 0, attempts = 0, "
            "next_attempt_at = 0 WHERE id = ?",
            (card_id,),
        )

    async def give_up_channel(self, channel_id: int, error: str) -> None:
        """Stop owing edits to every card of a channel Discord refuses us; the cards keep their state."""
        await self._db.write(
            f"UPDATE push_card SET rendered_version = version, last_error = ? WHERE channel_id = ? AND {EDIT_OWED}",
            (clip(error), channel_id),
        )

    async def prune(self, finished_before: float) -> int:
        """Delete cards of finished calls untouched since ``finished_before`` that owe nothing (no edit, no
        pending post); how many went."""
        cursor = await self._db.write(
            f"DELETE FROM push_card WHERE finished = 1 AND updated_at < ? AND NOT ({EDIT_OWED}) "
            "AND id NOT IN (SELECT card_id FROM push_outbox WHERE status = 'pending' AND card_id IS NOT NULL)",
            (finished_before,),
        )
        return cursor.rowcount
